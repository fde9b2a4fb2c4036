//! Execution brokers: run one command after a verified allow, confined to exactly the grants
//! the control plane signed into that allow, watched for revocation, reported as evidence.
//!
//! - [`sandbox`]: grants to Landlock through nono (two layers: paths, then execution), applied
//!   to the current process, which then executes the command ([`sandbox::exec_sandboxed`]);
//! - [`supervise`]: the command in its own process group, killed as a group on a stop;
//! - [`run`]: ask (`POST /actions` with the capability), start, watch
//!   (`GET /capabilities/{id}`), stop on revocation, expiry or lost contact, report
//!   (`POST /executions`).
//!
//! Fail closed: any refusal, deny or verification failure and the command never starts
//! (exit status 126); a stop by the broker is 137; otherwise the command's own status. See
//! `docs/capabilities.md` for the grant mapping and what Landlock does not cover.
//!
//! ```no_run
//! use zt_broker::run::{run, Launcher, RunConfig};
//! use zt_broker::sandbox::Sandbox;
//! use zt_client::{ClientConfig, PinnedKey};
//! # async fn go() -> Result<(), Box<dyn std::error::Error>> {
//! let pinned = PinnedKey::from_keyring_json(&std::fs::read("cp-data/keyring.json")?)?;
//! let client = ClientConfig::new("http://127.0.0.1:8080", pinned);
//! let launcher = Launcher {
//!     exe: std::env::current_exe()?,
//!     args: vec!["broker".into(), "sandbox-exec".into()],
//! };
//! let token = std::fs::read_to_string("capability.txt")?;
//! let command = vec!["/usr/bin/cat".into(), "/data/report.txt".into()];
//! let finished = run(RunConfig::new(client, token.trim(), Sandbox::Nono, launcher, command)).await;
//! std::process::exit(i32::from(finished.exit_status()));
//! # }
//! ```

mod error;
pub mod run;
pub mod sandbox;
pub mod supervise;

pub use error::BrokerError;
