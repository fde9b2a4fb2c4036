//! Why a broker did not start a command, or could not supervise it ([`BrokerError`]; every
//! variant before the command starts means the same for it: it did not run, exit status 126),
//! and why an exchange over the broker's socket failed ([`ExchangeError`]: a line that cannot
//! be read, a connection that broke; no verdict on any command).

use std::path::PathBuf;

use zt_core::error::JsonError;

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
    #[error("Landlock ABI {found} cannot {what}: ABI {needed} or later is needed (the command was not started)")]
    LandlockTooOld {
        /// The ABI enforced on this kernel.
        found: u32,
        /// The ABI needed.
        needed: u8,
        /// What for.
        what: &'static str,
    },
    /// A granted path is not what its text says (a link on the way, missing, unreadable).
    #[error(transparent)]
    GrantPath(#[from] crate::paths::GrantPathError),
    /// A write grant covers (or lies below) what can run as code.
    #[error("write grant {write} covers {code}, which the sandbox leaves executable: what a command may write it may never run")]
    WriteCoversCode {
        /// The write grant.
        write: String,
        /// The code path (an exec grant, the loader, a system library folder).
        code: String,
    },
    /// A grant covers one of the broker's own files (its report key).
    #[error("grant {grant} covers {file}, the broker's own: a command run as the broker's user would read it")]
    CoversBrokerFile {
        /// The grant.
        grant: String,
        /// The broker's file.
        file: String,
    },
    /// A grant was replaced while the sandbox was being built.
    #[error("granted path {path} changed while the sandbox was built (another file is there now)")]
    Swapped {
        /// The path.
        path: String,
    },
    /// A read or write grant could not be made `noexec` where the command reaches it.
    #[error("granted path {path} could not be mounted noexec (grant a folder below it)")]
    NotNoexec {
        /// The path.
        path: String,
    },
    /// Building the namespaces or mounts failed.
    #[error("sandbox: {step}")]
    Isolate {
        /// Which step.
        step: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Landlock refused the rules.
    #[error("Landlock ({step}): {details}")]
    Landlock {
        /// Which step.
        step: &'static str,
        /// What the landlock crate said.
        details: String,
    },
    /// The caller asked for an environment variable the command may not get.
    #[error("environment variable {name:?} is not passed to a sandboxed command: {why}")]
    Env {
        /// The name.
        name: String,
        /// Why.
        why: &'static str,
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
    /// The helper refused to start the command (after the broker's own checks passed).
    #[error("the sandbox was not built: {why}")]
    HelperRefused {
        /// What the helper wrote.
        why: String,
    },
    /// A verified allow that seals no capability (a control plane that ignored it).
    #[error("the allow {decision} seals no capability: nothing says what the command may touch")]
    NoSignedCapability {
        /// The decision's hash.
        decision: String,
    },
}

/// Why a request or answer line on the broker's socket cannot be read, or an exchange over it
/// failed (`zt-audit broker ask`, `broker serve`).
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The line is not I-JSON.
    #[error("{what} is not JSON: {source}")]
    NotJson {
        /// `request` or `answer`.
        what: &'static str,
        /// Why.
        #[source]
        source: JsonError,
    },
    /// The line is JSON, but not an object.
    #[error("{what} is not a JSON object")]
    NotObject {
        /// `request` or `answer`.
        what: &'static str,
    },
    /// A request member nobody defined (its name shortened).
    #[error("unknown member `{name}`")]
    UnknownMember {
        /// The member's name, shortened.
        name: String,
    },
    /// A request without its capability token.
    #[error("`capability` (a token) is required")]
    NoCapability,
    /// A request without a command.
    #[error("`command` (a non-empty list of strings) is required")]
    NoCommand,
    /// A command with something other than a string in it.
    #[error("`command` must hold strings only")]
    CommandNotStrings,
    /// `env` is not an object.
    #[error("`env` must be an object of strings")]
    EnvNotObject,
    /// An `env` value is not a string.
    #[error("`env` values must be strings")]
    EnvNotStrings,
    /// An answer without the exit status.
    #[error("answer has no `status`")]
    NoStatus,
    /// The request line is longer than the broker reads.
    #[error("request longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The connection closed before the request line ended.
    #[error("the connection closed before a whole request line")]
    Truncated,
    /// More descriptors were attached than any request carries.
    #[error("more than {max} descriptors sent")]
    TooManyDescriptors {
        /// The most a request carries.
        max: usize,
    },
    /// Not the descriptors the request says it carries.
    #[error("expected {want} descriptors ({}stdout, stderr), got {got}", if *.stdin { "stdin, " } else { "" })]
    Descriptors {
        /// How many the request needs.
        want: usize,
        /// How many came.
        got: usize,
        /// Whether the request passes its standard input.
        stdin: bool,
    },
    /// The broker's socket cannot be reached.
    #[error("cannot reach the broker at {}: {source}", .socket.display())]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The descriptors do not fit the message.
    #[error("cannot attach the descriptors")]
    Attach,
    /// Sending, or reading, failed.
    #[error("{step}: {source}")]
    Io {
        /// `sending the request`, `reading the request`, `reading the broker's answer`.
        step: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
