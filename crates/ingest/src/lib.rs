//! Ingest: received bytes in, stored evidence out.
//!
//! [`Pipeline`] is the one validation path of `zt-audit import` ([`import`]) and the OTLP/HTTP
//! receiver ([`server`]): the chain model's per-record check ([`zt_core::chain::inspect`]),
//! then
//! - unreadable, or `current_hash` does not recompute: **rejected**, kept in quarantine with
//!   the reason;
//! - otherwise **accepted** whatever the signature says: an unknown key, a bad or missing
//!   signature is stored and flagged in `status`, never dropped. It is evidence, and the
//!   store's chain model keeps it off every main line.
//!
//! Checks run in parallel; each batch is one store transaction.
//!
//! The way back out is here too: [`verify_store`] streams a store's chains, waiting records
//! and quarantine into the verifier (an adapter above both, so the verifier builds no
//! SQLite).
//!
//! ```no_run
//! use zt_core::keyring::Keyring;
//! use zt_ingest::Pipeline;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ring = Keyring::new();
//! let mut store = zt_store::Store::open(std::path::Path::new("audit.db"))?;
//! let p = Pipeline::new(&ring);
//! let out = p.ingest(&mut store, &[br#"{"actor":"a"}"#.to_vec()], "import:example")?;
//! println!("{} stored, {} quarantined", out.inserted, out.quarantined);
//! # Ok(()) }
//! ```

pub mod import;
pub mod otlp;
mod pipeline;
pub mod scan;
pub mod server;
mod verify;

pub use import::import_file;
pub use pipeline::{Pipeline, Verdict};
pub use verify::{verify_db, verify_store, VerifyError};
