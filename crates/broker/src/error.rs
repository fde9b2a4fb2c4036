//! Why a broker did not start a command, or could not supervise it. Every variant before the
//! command starts means the same for it: it did not run (exit status 126).

use std::path::PathBuf;

use zt_core::capability::Access;

/// A broker failure.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The kernel has no usable Landlock (disabled, or not in the LSM list).
    #[error("Landlock is not available on this kernel: {details}")]
    LandlockUnavailable {
        /// What nono found.
        details: String,
    },
    /// Landlock is there, but too old for what these grants need.
    #[error(
        "Landlock {found} cannot {what}: ABI {needed} or later is needed (the command was not started)"
    )]
    LandlockTooOld {
        /// The kernel's ABI, e.g. `V2`.
        found: &'static str,
        /// The ABI needed.
        needed: u8,
        /// What for (`restrict execution`, `block the network`).
        what: &'static str,
    },
    /// A granted path does not exist (a grant is never silently dropped).
    #[error("granted `{access}` path {path} does not exist")]
    GrantPathMissing {
        /// The grant list.
        access: Access,
        /// The path as granted.
        path: String,
    },
    /// A granted path cannot be resolved.
    #[error("granted `{access}` path {path} cannot be resolved")]
    GrantPath {
        /// The grant list.
        access: Access,
        /// The path as granted.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No command was given.
    #[error("no command given")]
    EmptyCommand,
    /// The command is not a path and is not found in `PATH`, or the path does not exist.
    #[error("command {command:?} not found")]
    CommandNotFound {
        /// As given.
        command: String,
    },
    /// The command (resolved, symlinks followed) is not covered by any `exec` grant.
    #[error("command {} is not covered by an `exec` grant ({grants})", .command.display())]
    NotExecGranted {
        /// The resolved command.
        command: PathBuf,
        /// The `exec` grants, for the message.
        grants: String,
    },
    /// nono refused to build or apply the sandbox.
    #[error("sandbox ({step})")]
    Sandbox {
        /// Which step.
        step: &'static str,
        /// nono's error.
        #[source]
        source: nono::NonoError,
    },
    /// `exec` failed after the sandbox was applied.
    #[error("cannot execute {}", .command.display())]
    Exec {
        /// The resolved command.
        command: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The child could not be started.
    #[error("cannot start {}", .command.display())]
    Spawn {
        /// What was started.
        command: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the child failed.
    #[error("cannot wait for the command")]
    Wait(#[source] std::io::Error),
    /// The capability token cannot be read (to name its actor, action and resource).
    #[error("capability token")]
    Token(#[from] zt_core::capability::CapabilityError),
    /// The guarded client could not be set up (pinned key, TLS).
    #[error("client set-up")]
    Client(#[from] zt_client::ClientError),
    /// The control plane did not give a verified allow.
    #[error("refused")]
    Refused(#[from] zt_client::Refusal),
    /// A verified allow that seals no capability (a control plane that ignored it).
    #[error("the allow {decision} seals no capability: nothing says what the command may touch")]
    NoSignedCapability {
        /// The decision's hash.
        decision: String,
    },
}
