//! The zt-audit contract core: what an audit envelope is and how it is proven.
//!
//! - [`chain`]: the chain model, the one home of chain rules: signature status, trust, genesis,
//!   links, forks, sequence numbers, one profile per chain, chain naming.
//! - [`envelope`]: the envelope, its four profiles (zt-infra-full, legacy, hello-world, v1) and
//!   their hash inputs; v1 producers.
//! - [`json`]: I-JSON parsing (duplicate members refused) and RFC 8785 canonical JSON.
//! - [`hash`]: SHA-256 chain hashes.
//! - [`crypto`]: ECDSA P-256 over a 32-byte digest, base64 DER, high-S accepted.
//! - [`keyring`]: keys and their validity windows.
//! - [`merkle`]: RFC 6962 Merkle trees and inclusion proofs.
//! - [`secret`]: tokens held so that no `Debug` print or log can show them.
//! - [`text`]: text from evidence made safe to show on a terminal (controls, bidi and
//!   invisible characters written as `\u{…}` escapes).
//!
//! The crate is pure: no file, network, database or chain access. Everything that touches
//! those sits above it (see `ARCHITECTURE.md`).
//!
//! ```no_run
//! use zt_core::{envelope::Envelope, keyring::Keyring, crypto};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ring = Keyring::from_json(br#"{"keys":[]}"#)?;
//! let line = br#"{"actor":"a","action":"b","resource":"","decision":"deny","reason":"r","timestamp":"2026-10-01T00:00:00Z","previous_hash":"...","current_hash":"..."}"#;
//! let env = Envelope::from_json(line)?;
//! let profile = env.detect_profile().ok_or("hash does not recompute")?;
//! let key = ring.get(&env.signature.key_id).ok_or("unknown key")?;
//! key.public_key.verify_digest(&env.current_hash, &crypto::decode_signature(&env.signature.signature)?)?;
//! println!("{profile}: verified");
//! # Ok(()) }
//! ```

pub mod capability;
pub mod chain;
pub mod crypto;
pub mod envelope;
pub mod error;
pub mod hash;
pub mod json;
pub mod keyring;
pub mod merkle;
pub mod note;
pub mod secret;
pub mod text;
pub mod tiles;
pub mod time;

pub use envelope::{Envelope, Profile};
pub use hash::Hash32;
