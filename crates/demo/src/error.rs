//! Why a demo could not run to its end (checks that ran and failed are events instead).

use std::path::PathBuf;

/// A step that could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Local I/O: a port, a file.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The control plane would not open.
    #[error("opening the control plane in {}: {source}", dir.display())]
    ControlPlane {
        /// Its folder.
        dir: PathBuf,
        /// Why.
        #[source]
        source: zt_control_plane::ControlPlaneError,
    },
    /// The control plane stopped with an error.
    #[error("control plane: {0}")]
    Serve(#[from] zt_control_plane::ControlPlaneError),
    /// A request got no answer.
    #[error("{request}: {source}")]
    Http {
        /// The request.
        request: &'static str,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// A request got an answer the demo did not expect.
    #[error("{request} answered {status}: {body}")]
    Answer {
        /// The request.
        request: &'static str,
        /// The status.
        status: u16,
        /// The body.
        body: String,
    },
    /// The dangerous action was not denied as expected.
    #[error("the dangerous action was not denied as expected: {0}")]
    NotDenied(String),
    /// The harmless action was refused.
    #[error("the hello action was refused: {0}")]
    Refused(String),
    /// The control plane's export did not reach the ingest.
    #[error("the control plane's export did not reach {url} within 30 s: {error}")]
    ExportBehind {
        /// The ingest.
        url: String,
        /// The exporter's last error.
        error: String,
    },
    /// A store could not be verified at all.
    #[error("verifying {}: {source}", db.display())]
    Verify {
        /// The store.
        db: PathBuf,
        /// Why.
        #[source]
        source: zt_ingest::VerifyError,
    },
    /// A task of the demo panicked or was cancelled.
    #[error("a demo task ended abnormally: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// The keyring.
    #[error("the control plane's keyring: {0}")]
    Keyring(#[from] zt_core::error::KeyringError),
    /// The guarded client.
    #[error("the guarded client: {0}")]
    Client(#[from] zt_client::ClientError),
    /// The envelope handed back.
    #[error("the verified envelope: {0}")]
    Json(#[from] zt_core::error::JsonError),
    /// A store.
    #[error("store: {0}")]
    Store(#[from] zt_store::StoreError),
    /// Anchoring.
    #[error("anchoring: {0}")]
    Anchor(#[from] zt_anchor::AnchorError),
    /// The local node.
    #[error("the local node: {0}")]
    Anvil(#[from] zt_anchor::anvil::AnvilError),
    /// The proof.
    #[error("the proof: {0}")]
    Proof(#[from] zt_anchor::proof::ProofError),
    /// The anchor did not land.
    #[error("the anchor did not land: {0}")]
    NotAnchored(String),
}

impl DemoError {
    pub(crate) fn io(what: &'static str, source: std::io::Error) -> Self {
        Self::Io { what, source }
    }

    pub(crate) fn http(request: &'static str, source: reqwest::Error) -> Self {
        Self::Http { request, source }
    }

    pub(crate) fn task(e: tokio::task::JoinError) -> Self {
        Self::Task(e)
    }
}
