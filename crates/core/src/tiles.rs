//! Tiles of an RFC 6962 tree (`c2sp.org/tlog-tiles`): how a log serves its tree so that
//! mirrors, monitors and witnesses compute any proof themselves from immutable files.
//!
//! A tile is up to 256 consecutive hashes at one level of height-8 subtrees: at level 0 the
//! leaf hashes, above that the root of each full tile below. The `n`-th tile at level `l`
//! holds `MTH(D[(n*256 + i) * 256^l .. (n*256 + i + 1) * 256^l])` for `i` in `0..256`; the
//! rightmost tiles of a tree are partial (1 to 255 hashes) and never hashed into the level
//! above. Paths are `tile/<L>/<N>[.p/<W>]`, with `N` in zero-padded groups of three digits,
//! all but the last prefixed by `x` (`1234067` is `x001/x234/067`); entry bundles are
//! `tile/entries/<N>[.p/<W>]`.

use crate::hash::Hash32;
use crate::merkle;

/// Hashes in a full tile.
pub const FULL: u64 = 256;
/// The highest level a path may name.
pub const MAX_LEVEL: u8 = 63;

/// Why a tile path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tile path {path:?}: {why}")]
pub struct TilePathError {
    /// The path.
    pub path: String,
    /// What is wrong.
    pub why: &'static str,
}

/// One tile: hashes of the tree (`Some(level)`), or an entry bundle (`level: None`, the
/// entries of level-0 tile `index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tile {
    /// The level, or `None` for an entry bundle.
    pub level: Option<u8>,
    /// The tile's index within its level.
    pub index: u64,
    /// Hashes (or entries) in it: 256 when full, 1 to 255 when partial.
    pub width: u16,
}

impl Tile {
    /// Whether it holds all 256.
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == FULL
    }

    /// `tile/<L>/<N>[.p/<W>]`, or `tile/entries/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        let level = self
            .level
            .map_or_else(|| "entries".to_owned(), |l| l.to_string());
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        let last = groups.len() - 1;
        let index: Vec<String> = groups
            .iter()
            .rev()
            .enumerate()
            .map(|(i, g)| {
                if i == last {
                    format!("{g:03}")
                } else {
                    format!("x{g:03}")
                }
            })
            .collect();
        let mut out = format!("tile/{level}/{}", index.join("/"));
        if !self.is_full() {
            out.push_str(&format!(".p/{}", self.width));
        }
        out
    }

    /// Reads a path [`Tile::path`] writes, and only such a path: no leading zeroes, levels up
    /// to [`MAX_LEVEL`], widths 1 to 255 after `.p/`.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(path: &str) -> Result<Tile, TilePathError> {
        let bad = |why| TilePathError {
            path: path.to_owned(),
            why,
        };
        let rest = path.strip_prefix("tile/").ok_or(bad("not under tile/"))?;
        let (level, rest) = rest.split_once('/').ok_or(bad("no index"))?;
        let level = if level == "entries" {
            None
        } else {
            let l =
                decimal(level).ok_or(bad("the level is not a decimal without leading zeroes"))?;
            Some(
                u8::try_from(l)
                    .ok()
                    .filter(|l| *l <= MAX_LEVEL)
                    .ok_or(bad("the level is over 63"))?,
            )
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((index, w)) => {
                let w =
                    decimal(w).ok_or(bad("the width is not a decimal without leading zeroes"))?;
                let w = u16::try_from(w)
                    .ok()
                    .filter(|w| (1..256).contains(w))
                    .ok_or(bad("a partial width is 1 to 255"))?;
                (index, w)
            }
            None => (rest, 256),
        };
        let groups: Vec<&str> = index.split('/').collect();
        let last = groups.len() - 1;
        let mut n: u64 = 0;
        for (i, g) in groups.iter().enumerate() {
            let digits = if i == last {
                *g
            } else {
                g.strip_prefix('x')
                    .ok_or(bad("every group but the last starts with x"))?
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("index groups are three digits"));
            }
            if i == 0 && digits == "000" && last > 0 {
                return Err(bad("the index has a leading zero group"));
            }
            let g: u64 = digits
                .parse()
                .map_err(|_| bad("index groups are three digits"))?;
            n = n
                .checked_mul(1000)
                .and_then(|n| n.checked_add(g))
                .ok_or(bad("the index does not fit 64 bits"))?;
        }
        Ok(Tile {
            level,
            index: n,
            width,
        })
    }
}

fn decimal(s: &str) -> Option<u64> {
    let ok =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if ok {
        s.parse().ok()
    } else {
        None
    }
}

/// Every hash tile of a tree of `size` leaves, full and partial, level by level (entry bundles
/// are the level-0 tiles' indexes and widths).
pub fn tiles(size: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    let mut span = size; // leaves' worth of full tiles' roots at this level
    let mut level = 0u8;
    while span > 0 {
        let (full, partial) = (span / FULL, span % FULL);
        out.extend((0..full).map(|index| Tile {
            level: Some(level),
            index,
            width: 256,
        }));
        if partial > 0 {
            out.push(Tile {
                level: Some(level),
                index: full,
                width: u16::try_from(partial).unwrap_or(255),
            });
        }
        span = full;
        level += 1;
    }
    out
}

/// The hashes of `tile` in the tree over `leaves` (leaf hashes), concatenated as a log serves
/// them. `None` for an entry bundle or a tile the tree does not hold.
pub fn tile_data(leaves: &[Hash32], tile: &Tile) -> Option<Vec<u8>> {
    let level = u32::from(tile.level?);
    let span = FULL.checked_pow(level)?;
    let mut out = Vec::with_capacity(usize::from(tile.width) * 32);
    for i in 0..u64::from(tile.width) {
        let start = usize::try_from((tile.index * FULL + i).checked_mul(span)?).ok()?;
        let end = usize::try_from((tile.index * FULL + i + 1).checked_mul(span)?).ok()?;
        let range = leaves.get(start..end)?;
        out.extend_from_slice(merkle::root(range).as_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_the_specifications() {
        let t = |level, index, width| Tile {
            level,
            index,
            width,
        };
        for (tile, path) in [
            (t(Some(0), 1_234_067, 256), "tile/0/x001/x234/067"),
            (t(Some(0), 0, 256), "tile/0/000"),
            (t(Some(2), 5, 17), "tile/2/005.p/17"),
            (t(None, 1000, 256), "tile/entries/x001/000"),
            (t(None, 273, 112), "tile/entries/273.p/112"),
            (
                t(Some(63), u64::MAX, 1),
                "tile/63/x018/x446/x744/x073/x709/x551/615.p/1",
            ),
        ] {
            assert_eq!(tile.path(), path);
            assert_eq!(Tile::parse(path), Ok(tile), "{path}");
        }
        for bad in [
            "tile/0/1234067",
            "tile/0/x001/234/067",
            "tile/0/x001/x234/67",
            "tile/00/000",
            "tile/64/000",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/017",
            "tile/0/x000/001",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
            "tiles/0/000",
            "tile/0",
        ] {
            assert!(Tile::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_tree_of_70000_is_the_specifications_example() {
        let all = tiles(70_000);
        let count = |level, full: bool| {
            all.iter()
                .filter(|t| t.level == Some(level) && t.is_full() == full)
                .count()
        };
        assert_eq!((count(0, true), count(0, false)), (273, 1));
        assert_eq!((count(1, true), count(1, false)), (1, 1));
        assert_eq!((count(2, true), count(2, false)), (0, 1));
        let widths: Vec<u16> = all
            .iter()
            .filter(|t| !t.is_full())
            .map(|t| t.width)
            .collect();
        assert_eq!(widths, [112, 17, 1]);
        // 256 leaves: one full level-0 tile and a partial level-1 tile of width 1.
        assert_eq!(
            tiles(256),
            [
                Tile {
                    level: Some(0),
                    index: 0,
                    width: 256
                },
                Tile {
                    level: Some(1),
                    index: 0,
                    width: 1
                }
            ]
        );
        assert!(tiles(0).is_empty());
    }

    #[test]
    fn a_level_one_hash_is_the_root_of_the_full_tile_below() {
        let leaves: Vec<Hash32> = (0..600u32)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect();
        let one = tile_data(
            &leaves,
            &Tile {
                level: Some(1),
                index: 0,
                width: 2,
            },
        )
        .expect("held");
        assert_eq!(&one[..32], merkle::root(&leaves[..256]).as_bytes());
        assert_eq!(&one[32..], merkle::root(&leaves[256..512]).as_bytes());
        let zero = tile_data(
            &leaves,
            &Tile {
                level: Some(0),
                index: 2,
                width: 88,
            },
        )
        .expect("held");
        assert_eq!(zero.len(), 88 * 32);
        assert_eq!(&zero[..32], leaves[512].as_bytes());
        // Past the tree, or an entry bundle: nothing.
        assert!(tile_data(
            &leaves,
            &Tile {
                level: Some(0),
                index: 2,
                width: 89
            }
        )
        .is_none());
        assert!(tile_data(
            &leaves,
            &Tile {
                level: None,
                index: 0,
                width: 1
            }
        )
        .is_none());
    }
}
