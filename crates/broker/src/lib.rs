//! Execution brokers: run one command after a verified allow, confined to exactly the grants
//! the control plane signed into that allow, watched for revocation, and reported as
//! evidence signed by the broker itself.
//!
//! - [`paths`]: grants are files, not text (opened without following any link);
//! - [`sandbox`]: the sandbox the helper builds around itself (a session of its own; user,
//!   mount and PID namespaces; read and write grants mounted `noexec`; Landlock rules from
//!   the opened descriptors), then the command as init of its PID namespace;
//! - [`supervise`]: the helper and everything it started, killed on a stop;
//! - [`run`]: ask (`POST /actions` with the capability, as the agent), start, watch
//!   (`GET /capabilities/{id}`), stop on revocation, expiry or lost contact, report
//!   (`POST /executions`, signed with the broker's key when it has an identity of its own);
//! - [`serve`]: `zt-audit broker serve`, the broker as a principal of its own that agents ask
//!   over a unix socket.
//!
//! Fail closed: any refusal, deny or verification failure and the command never starts
//! (exit status 126); a stop by the broker is 137; otherwise the command's own status. See
//! `docs/capabilities.md` for what each grant lets a command do and what it does not stop.
//!
//! ```no_run
//! use zt_broker::run::{run, Launcher, RunConfig};
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
//! let finished = run(RunConfig::new(client, token.trim(), launcher, command)).await;
//! std::process::exit(i32::from(finished.exit_status()));
//! # }
//! ```

mod error;
pub mod paths;
mod refusal;
pub mod report_key;
pub mod run;
pub mod sandbox;
pub mod serve;
pub mod supervise;

pub use error::{BrokerError, ExchangeError};
