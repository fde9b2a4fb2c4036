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
    let mut level: Vec<Hash32> = hashes.to_vec();
    if level.is_empty() {
        return None;
    }
    while level.len() > 1 {
        if level.len() % 2 == 1 {
            if let Some(last) = level.last().copied() {
                level.push(last);
            }
        }
        level = level
            .chunks(2)
            .map(|p| {
                let mut b = Vec::with_capacity(64);
                b.extend_from_slice(p[0].as_bytes());
                b.extend_from_slice(p[1].as_bytes());
                Hash32::digest(&b)
            })
            .collect();
    }
    level.first().copied()
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
}
