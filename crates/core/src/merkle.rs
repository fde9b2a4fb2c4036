//! RFC 6962 (and RFC 9162 §2.1) Merkle trees over SHA-256: leaf hash `SHA-256(0x00 || leaf)`,
//! node hash `SHA-256(0x01 || left || right)`; an `n`-leaf tree splits at the largest power of
//! two below `n`. The empty tree's root is `SHA-256("")`. Inclusion proofs and their check
//! follow RFC 9162 §2.1.3.

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

    proptest::proptest! {
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
