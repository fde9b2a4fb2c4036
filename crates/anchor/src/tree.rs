//! The anchored tree: an RFC 6962 Merkle tree (SHA-256, `0x00` leaf and `0x01` node prefixes,
//! via `zt_core::merkle`) over the heads of the chains that moved in an epoch.
//!
//! A leaf's bytes are `u32 BE length || chain name (UTF-8) || u64 BE position || 32-byte head
//! hash`; leaves are sorted by chain name, so the same heads always give the same root.
//!
//! A log on the contract is an owner's: its id is `keccak256(abi.encode(owner, keccak256(name)))`
//! ([`LogRef::id`]), the same the contract computes (`ZtAnchor.logIdOf`), so nobody else can
//! write it or take its name first.

use alloy::primitives::{keccak256, Address, B256};
use zt_core::{merkle, Hash32};
use zt_store::LeafRow;

/// The bytes of one leaf.
pub fn leaf_bytes(leaf: &LeafRow) -> Vec<u8> {
    merkle::head_leaf_bytes(&leaf.chain, leaf.position, &leaf.head)
}

/// `SHA-256(0x00 || leaf bytes)`.
pub fn leaf_hash(leaf: &LeafRow) -> Hash32 {
    merkle::leaf_hash(&leaf_bytes(leaf))
}

/// An epoch's tree.
#[derive(Debug, Clone)]
pub struct Tree {
    leaves: Vec<LeafRow>,
    hashes: Vec<Hash32>,
}

impl Tree {
    /// The tree over `leaves`, sorted by chain name.
    pub fn new(mut leaves: Vec<LeafRow>) -> Self {
        leaves.sort_by(|a, b| a.chain.cmp(&b.chain));
        Self::in_order(leaves)
    }

    /// The tree over `leaves` in the order given (as stored).
    pub fn in_order(leaves: Vec<LeafRow>) -> Self {
        let hashes = leaves.iter().map(leaf_hash).collect();
        Self { leaves, hashes }
    }

    /// The root.
    pub fn root(&self) -> Hash32 {
        merkle::root(&self.hashes)
    }

    /// The leaves, in tree order.
    pub fn leaves(&self) -> &[LeafRow] {
        &self.leaves
    }

    /// The inclusion proof of leaf `index`.
    pub fn proof(&self, index: usize) -> Option<Vec<Hash32>> {
        merkle::inclusion_proof(&self.hashes, index)
    }
}

/// A log on the contract: whose, and its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogRef {
    /// The owner: the address that anchors it (or authorizes writers for it).
    pub owner: Address,
    /// The log's name (`--log`).
    pub name: String,
}

impl LogRef {
    /// `owner`'s log `name`.
    pub fn new(owner: Address, name: impl Into<String>) -> Self {
        Self {
            owner,
            name: name.into(),
        }
    }

    /// The 32-byte name the contract takes: `keccak256(UTF-8 name)`.
    pub fn name_hash(&self) -> B256 {
        log_name_hash(&self.name)
    }

    /// The id the contract indexes by.
    pub fn id(&self) -> B256 {
        log_id(self.owner, &self.name)
    }
}

/// The 32-byte name of a log: `keccak256(UTF-8 name)`.
pub fn log_name_hash(name: &str) -> B256 {
    keccak256(name.as_bytes())
}

/// The contract's key for `owner`'s log `name`: `keccak256(abi.encode(owner, keccak256(name)))`
/// (an address is ABI-encoded left-padded to 32 bytes).
pub fn log_id(owner: Address, name: &str) -> B256 {
    let mut buf = [0u8; 64];
    buf[12..32].copy_from_slice(owner.as_slice());
    buf[32..].copy_from_slice(log_name_hash(name).as_slice());
    keccak256(buf)
}

/// The lineage's batch root (`DAALog.logBatch`): SHA-256 over pairs of hashes, no prefixes,
/// the last node of an odd level paired with itself.
pub fn lineage_batch_root(hashes: &[Hash32]) -> Option<Hash32> {
    lineage_batch_root_counted(hashes, &mut 0)
}

/// SHA-256 over the concatenation of two hashes: the lineage's pair node.
fn lineage_pair(a: &Hash32, b: &Hash32, work: &mut u64) -> Hash32 {
    *work += 1;
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(a.as_bytes());
    buf[32..].copy_from_slice(b.as_bytes());
    Hash32::digest(&buf)
}

/// [`lineage_batch_root`], adding the pair hashes it computes to `work`.
pub fn lineage_batch_root_counted(hashes: &[Hash32], work: &mut u64) -> Option<Hash32> {
    let mut level: Vec<Hash32> = hashes.to_vec();
    if level.is_empty() {
        return None;
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| lineage_pair(&p[0], p.get(1).unwrap_or(&p[0]), work))
            .collect();
    }
    level.first().copied()
}

/// The lineage batch root of every run of `size` consecutive `hashes` (index = the run's
/// start), adding the pair hashes computed to `work`.
///
/// Computing each run's root alone costs about `size` pair hashes per run, `n * size` in all.
/// Here the runs share their subtrees: at each level of width `w`, the perfect subtrees (`w`
/// real leaves, no duplicated node) are the same for every run that contains them, so one
/// table of them over all offsets serves all runs (`n` hashes a level); what differs between
/// runs is only the one right-edge node a level, built from the level below (one hash a run a
/// level). In all at most `2 n ceil(log2 size)` pair hashes. Empty when `size` is 0 or larger
/// than `hashes`.
pub fn lineage_window_roots(hashes: &[Hash32], size: usize, work: &mut u64) -> Vec<Hash32> {
    let n = hashes.len();
    if size == 0 || size > n {
        return Vec::new();
    }
    let runs = n - size + 1;
    // `perfect[i]`: the perfect subtree of width `w` starting at leaf `i`.
    let mut perfect: Vec<Hash32> = hashes.to_vec();
    // `edge[s]`: run `s`'s right-edge (not perfect) node at this level, when the level has one
    // (it has one exactly when `w` does not divide `size`, the same for every run).
    let mut edge: Vec<Hash32> = Vec::new();
    let mut w = 1usize;
    loop {
        let full = size / w; // perfect nodes of each run at this level
        let nodes = size.div_ceil(w);
        if nodes == 1 {
            return if full == 1 {
                perfect.truncate(runs);
                perfect
            } else {
                edge
            };
        }
        // The next level's right-edge node, if it has one: its children are the node at
        // index 2 * (size / 2w) and the one after it, or that node twice when it is the last.
        let next_full = size / (2 * w);
        if next_full < nodes.div_ceil(2) {
            let a = 2 * next_full;
            edge = (0..runs)
                .map(|s| {
                    let left = if a < full {
                        perfect[s + a * w]
                    } else {
                        edge[s]
                    };
                    let right = if a + 1 < nodes {
                        // The node after a perfect one is the edge node (a perfect one would
                        // make this pair perfect).
                        edge[s]
                    } else {
                        left
                    };
                    lineage_pair(&left, &right, work)
                })
                .collect();
        } else {
            edge = Vec::new();
        }
        // The next level's perfect subtrees, wherever a run can hold one.
        if 2 * w <= size {
            let len = n + 1 - 2 * w;
            perfect = (0..len)
                .map(|i| lineage_pair(&perfect[i], &perfect[i + w], work))
                .collect();
        }
        w *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(c: &str, p: u64) -> LeafRow {
        LeafRow {
            chain: c.into(),
            position: p,
            head: Hash32::digest(format!("{c}{p}").as_bytes()),
        }
    }

    #[test]
    fn order_does_not_change_the_root_and_every_proof_checks() {
        let a = Tree::new(vec![leaf("b", 1), leaf("a", 7), leaf("c", 0)]);
        let b = Tree::new(vec![leaf("c", 0), leaf("b", 1), leaf("a", 7)]);
        assert_eq!(a.root(), b.root());
        for (i, l) in a.leaves().iter().enumerate() {
            let p = a.proof(i).unwrap();
            assert!(merkle::verify_inclusion(
                i as u64,
                3,
                &leaf_hash(l),
                &p,
                &a.root()
            ));
        }
        // a moved head changes the root
        let c = Tree::new(vec![leaf("b", 2), leaf("a", 7), leaf("c", 0)]);
        assert_ne!(a.root(), c.root());
    }

    #[test]
    fn leaf_bytes_cannot_be_confused_across_name_and_position() {
        let x = LeafRow {
            chain: "ab".into(),
            position: 1,
            head: Hash32::ZERO,
        };
        let y = LeafRow {
            chain: "a".into(),
            position: 1,
            head: Hash32::ZERO,
        };
        assert_ne!(leaf_bytes(&x), leaf_bytes(&y));
        assert_eq!(leaf_bytes(&x).len(), 4 + 2 + 8 + 32);
    }

    #[test]
    fn a_log_id_is_bound_to_its_owner() {
        use alloy::sol_types::SolValue;
        let (a, b) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xbb));
        assert_ne!(log_id(a, "prod-audit"), log_id(b, "prod-audit"));
        assert_ne!(log_id(a, "prod-audit"), log_id(a, "prod-audit2"));
        // The contract's abi.encode(owner, name).
        let encoded = (a, log_name_hash("prod-audit")).abi_encode();
        assert_eq!(log_id(a, "prod-audit"), keccak256(encoded));
        assert_eq!(LogRef::new(a, "prod-audit").id(), log_id(a, "prod-audit"));
    }

    #[test]
    fn lineage_batch_root_duplicates_the_odd_node() {
        let h: Vec<Hash32> = (0..3u8).map(|i| Hash32::digest(&[i])).collect();
        let pair = |a: &Hash32, b: &Hash32| {
            let mut v = a.as_bytes().to_vec();
            v.extend_from_slice(b.as_bytes());
            Hash32::digest(&v)
        };
        let want = pair(&pair(&h[0], &h[1]), &pair(&h[2], &h[2]));
        assert_eq!(lineage_batch_root(&h), Some(want));
        assert_eq!(lineage_batch_root(&h[..1]), Some(h[0]));
        assert_eq!(lineage_batch_root(&[]), None);
    }

    #[test]
    fn window_roots_are_each_runs_batch_root_at_n_log_n_cost() {
        for n in 0..40u32 {
            let h: Vec<Hash32> = (0..n).map(|i| Hash32::digest(&i.to_be_bytes())).collect();
            for size in 0..=n as usize + 1 {
                let mut work = 0;
                let roots = lineage_window_roots(&h, size, &mut work);
                let want: Vec<Hash32> = if size == 0 || size > h.len() {
                    Vec::new()
                } else {
                    h.windows(size)
                        .map(|w| lineage_batch_root(w).unwrap())
                        .collect()
                };
                assert_eq!(roots, want, "n {n} size {size}");
                let levels = u64::from(usize::BITS - size.saturating_sub(1).leading_zeros());
                assert!(
                    work <= 2 * u64::from(n) * levels,
                    "n {n} size {size}: {work}"
                );
            }
        }
    }
}
