//! RFC 6962 (and RFC 9162 §2.1) Merkle trees over SHA-256: leaf hash `SHA-256(0x00 || leaf)`,
//! node hash `SHA-256(0x01 || left || right)`; an `n`-leaf tree splits at the largest power of
//! two below `n`. The empty tree's root is `SHA-256("")`. Inclusion proofs and their check
//! follow RFC 9162 §2.1.3; consistency proofs (that a tree of `m` leaves is a prefix of one of
//! `n`: what a witness asks of a log before it cosigns) and their check, §2.1.4.

use sha2::{Digest, Sha256};

use crate::hash::Hash32;

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    Hash32(h.finalize().into())
}

/// The bytes of an anchored leaf, a chain's head: `u32 BE length || chain name (UTF-8) || u64 BE
/// position || 32-byte head hash`. Lengths first, so no two (name, position) pairs share bytes.
pub fn head_leaf_bytes(chain: &str, position: u64, head: &Hash32) -> Vec<u8> {
    let name = chain.as_bytes();
    let mut out = Vec::with_capacity(4 + name.len() + 8 + 32);
    out.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&position.to_be_bytes());
    out.extend_from_slice(head.as_bytes());
    out
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash32(h.finalize().into())
}

fn split(n: usize) -> usize {
    // largest power of two strictly below n (n >= 2)
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The root over already-hashed leaves.
pub fn root(leaves: &[Hash32]) -> Hash32 {
    match leaves.len() {
        0 => Hash32::digest(b""),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index`, bottom-up. `None` when `index` is out of range.
pub fn inclusion_proof(leaves: &[Hash32], index: usize) -> Option<Vec<Hash32>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    fn walk(leaves: &[Hash32], m: usize, path: &mut Vec<Hash32>) {
        let n = leaves.len();
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            walk(&leaves[..k], m, path);
            path.push(root(&leaves[k..]));
        } else {
            walk(&leaves[k..], m - k, path);
            path.push(root(&leaves[..k]));
        }
    }
    walk(leaves, index, &mut path);
    Some(path)
}

/// Checks that `leaf` is at `index` of a `size`-leaf tree with root `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash32,
    proof: &[Hash32],
    root: &Hash32,
) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// The consistency proof from the first `m` leaves to all of them (RFC 9162 §2.1.4.1,
/// `PROOF(m, D[n])`). `None` unless `0 < m <= n`.
pub fn consistency_proof(leaves: &[Hash32], m: usize) -> Option<Vec<Hash32>> {
    if m == 0 || m > leaves.len() {
        return None;
    }
    fn subproof(m: usize, leaves: &[Hash32], whole: bool, out: &mut Vec<Hash32>) {
        let n = leaves.len();
        if m == n {
            if !whole {
                out.push(root(leaves));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            subproof(m, &leaves[..k], whole, out);
            out.push(root(&leaves[k..]));
        } else {
            subproof(m - k, &leaves[k..], false, out);
            out.push(root(&leaves[..k]));
        }
    }
    let mut out = Vec::new();
    subproof(m, leaves, true, &mut out);
    Some(out)
}

/// Checks that the `m`-leaf tree with root `old` is a prefix of the `n`-leaf tree with root
/// `new` (RFC 9162 §2.1.4.2). Equal sizes need an empty proof and equal roots; `m == 0` (the
/// empty tree) is a prefix of everything and needs an empty proof.
pub fn verify_consistency(m: u64, n: u64, old: &Hash32, new: &Hash32, proof: &[Hash32]) -> bool {
    if m > n {
        return false;
    }
    if m == n {
        return proof.is_empty() && old == new;
    }
    if m == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash32> = Vec::with_capacity(proof.len() + 1);
    if m.is_power_of_two() {
        path.push(*old);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fn_, mut sn) = (m - 1, n - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == *old && sr == *new && sn == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash32> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    /// RFC 6962 reference roots (certificate-transparency-go `merkle` test data) for the
    /// eight-leaf tree of its test inputs.
    #[test]
    fn rfc6962_reference_roots() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let hs: Vec<Hash32> = inputs.iter().map(|d| leaf_hash(d)).collect();
        assert_eq!(
            root(&hs[..1]).to_hex(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            root(&hs[..2]).to_hex(),
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
        );
        assert_eq!(
            root(&hs[..3]).to_hex(),
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"
        );
        assert_eq!(
            root(&hs).to_hex(),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
        assert_eq!(
            root(&[]).to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// RFC 6962's reference consistency proofs (certificate-transparency-go's `merkle` test
    /// data, over the eight inputs above): 1 to 1, 1 to 8, 6 to 8, 2 to 5.
    #[test]
    fn rfc6962_reference_consistency_proofs() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let hs: Vec<Hash32> = inputs.iter().map(|d| leaf_hash(d)).collect();
        let hex = |p: Vec<Hash32>| p.iter().map(Hash32::to_hex).collect::<Vec<_>>();
        assert!(consistency_proof(&hs[..1], 1).expect("1 to 1").is_empty());
        assert_eq!(
            hex(consistency_proof(&hs, 1).expect("1 to 8")),
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        assert_eq!(
            hex(consistency_proof(&hs, 6).expect("6 to 8")),
            [
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        assert_eq!(
            hex(consistency_proof(&hs[..5], 2).expect("2 to 5")),
            [
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn consistency_round_trip(n in 1usize..70, pick in 0usize..70) {
            let ls = leaves(n);
            let m = pick % n + 1;
            let (old, new) = (root(&ls[..m]), root(&ls));
            let proof = consistency_proof(&ls, m).unwrap();
            proptest::prop_assert!(verify_consistency(m as u64, n as u64, &old, &new, &proof));
            // another old root, another new root, or a proof cut short fails (the sizes are
            // bound by the signed checkpoints the roots come from, not by the proof alone)
            proptest::prop_assert!(!verify_consistency(m as u64, n as u64, &leaf_hash(b"x"), &new, &proof));
            proptest::prop_assert!(!verify_consistency(m as u64, n as u64, &old, &leaf_hash(b"x"), &proof));
            if m < n {
                let mut cut = proof.clone();
                cut.pop();
                proptest::prop_assert!(!verify_consistency(m as u64, n as u64, &old, &new, &cut));
            }
        }

        #[test]
        fn proof_round_trip(n in 1usize..70, pick in 0usize..70) {
            let ls = leaves(n);
            let i = pick % n;
            let r = root(&ls);
            let proof = inclusion_proof(&ls, i).unwrap();
            proptest::prop_assert!(verify_inclusion(i as u64, n as u64, &ls[i], &proof, &r));
            // a wrong leaf, index or root fails
            proptest::prop_assert!(!verify_inclusion(i as u64, n as u64, &leaf_hash(b"x"), &proof, &r));
            if n > 1 {
                proptest::prop_assert!(!verify_inclusion(((i + 1) % n) as u64, n as u64, &ls[i], &proof, &r));
            }
            proptest::prop_assert!(!verify_inclusion(i as u64, n as u64, &ls[i], &proof, &Hash32::ZERO));
        }
    }
}
