//! The harness every test binary of the workspace shares, so none writes its own: the
//! `zt-audit` under test ([`Bin`]) and its servers as processes ([`Server`],
//! [`ControlPlane`]), raw HTTP/1.1 ([`http`]), processes and waiting ([`process`]), the
//! repository's fixtures and test-only keys ([`paths`], [`keys`]), certificates ([`pki`]), the
//! Python and Go peers ([`tools`]); with features, a local chain node (`anvil`), the store and
//! PostgreSQL scratch databases (`store`), and a control plane or an ingest receiver
//! in-process (`services`).
//!
//! `CARGO_BIN_EXE_zt-audit` exists only in the `zt-audit` package, so what needs the binary
//! takes a [`Bin`] the test binary makes from it:
//!
//! ```no_run
//! // A test binary of the zt-audit package passes env!("CARGO_BIN_EXE_zt-audit").
//! let zt = zt_testkit::Bin::under_test("target/debug/zt-audit");
//! let dir = tempfile::tempdir().unwrap();
//! let cp = zt_testkit::ControlPlane::start(zt, &dir.path().join("cp"), &["--open"]);
//! let (status, _) = cp.call("GET", "/healthz", None, None);
//! assert_eq!(status, 200);
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test harness: a failed unwrap is a failed test, with its place"
)]

pub mod bin;
pub mod http;
pub mod keys;
pub mod paths;
pub mod pki;
pub mod process;
pub mod report;
pub mod servers;
pub mod text;
pub mod tools;

#[cfg(feature = "anvil")]
pub mod anvil;
#[cfg(feature = "services")]
pub mod inproc;
#[cfg(feature = "store")]
pub mod postgres;
#[cfg(feature = "store")]
pub mod store;

pub use bin::{both, stderr, stdout, Bin};
pub use paths::{fixture, fixtures, repo, s};
pub use process::{wait_until, Proc};
pub use servers::{ControlPlane, Server};
