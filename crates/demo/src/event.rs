//! What the demo reports: typed facts, in the order they happen. Text the control plane, the
//! stores or the file system hand back is passed on as it came; whoever shows it to people
//! escapes it (`zt_core::text::escape`).

use std::path::PathBuf;

/// How many steps a run announces.
pub const STEPS: u32 = 9;

/// A step beginning (the CLI numbers them `[n/STEPS]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// 1: a control plane and an ingest on loopback.
    Start,
    /// 2: the agent registered.
    Register,
    /// 3: the agent asks for the dangerous action.
    AskDangerous,
    /// 4: a narrow policy.
    Policy,
    /// 5: the agent asks for the harmless action.
    AskHello,
    /// 6: the signed envelope of that decision.
    Envelope {
        /// Its chain.
        chain_id: String,
        /// Its place on the chain.
        seq: u64,
    },
    /// 7: the ingest store verified.
    Verify,
    /// 8: the heads anchored on a local node.
    Anchor,
    /// 9: reconcile and prove.
    ReconcileProve,
    /// 9, without a node.
    ReconcileSkipped,
}

/// A fact of the run.
#[derive(Debug, Clone)]
pub enum Event {
    /// A step begins.
    Step(Step),
    /// Both services listen.
    Started {
        /// The control plane's base URL.
        control_plane: String,
        /// Its signing key's id.
        key_id: String,
        /// Its decision chain.
        chain_id: String,
        /// The ingest's OTLP/HTTP URL.
        ingest_url: String,
        /// The ingest's store.
        ingest_db: PathBuf,
    },
    /// `POST /agents` answered 201: the registration is a record on the control plane's chain.
    Registered {
        /// That chain.
        chain_id: String,
        /// The record's seq, when the answer gave one.
        seq: Option<u64>,
    },
    /// `POST /agents` answered 409: an earlier run in this folder registered the agent.
    AlreadyRegistered,
    /// The dangerous action was denied.
    Denied {
        /// The HTTP status of the answer.
        status: u16,
        /// The policy's reason.
        reason: String,
    },
    /// The client refused for another reason than a deny.
    Refused {
        /// Why.
        error: String,
    },
    /// An action ran, and this is what it printed.
    ActionRan {
        /// Its output.
        output: &'static str,
    },
    /// The dangerous action did not run.
    ActionDidNotRun,
    /// `POST /policies` answered 201.
    PolicyApplied {
        /// The policy set's version.
        version: String,
    },
    /// `POST /policies` answered 409: applied by an earlier run.
    PolicyAlreadyApplied,
    /// The harmless action was allowed (and its allow verified).
    Allowed {
        /// The policy's reason.
        reason: String,
    },
    /// The verified envelope, pretty-printed JSON.
    Envelope {
        /// The text.
        pretty: String,
    },
    /// Both stores verified and hold the same records.
    StoresVerified {
        /// The ingest's store.
        db: PathBuf,
        /// Its records.
        records: u64,
        /// Its chains.
        chains: usize,
    },
    /// A store did not verify, or the two differ.
    StoresFailed {
        /// Records in the ingest's store.
        ingest_records: u64,
        /// Its findings.
        ingest_findings: usize,
        /// Records in the control plane's store.
        control_plane_records: u64,
        /// Its findings.
        control_plane_findings: usize,
        /// The first errors of both.
        errors: Vec<String>,
    },
    /// The guarded client's own re-export had not finished (the control plane's had).
    ClientExportPending,
    /// The local node runs.
    AnvilStarted {
        /// Its binary.
        binary: PathBuf,
        /// Where it was found.
        source: String,
        /// Its process.
        pid: u32,
    },
    /// No local node: anchoring skipped.
    AnchorSkipped {
        /// Why.
        reason: String,
    },
    /// The anchoring contract is deployed.
    Deployed {
        /// Its address.
        contract: String,
        /// Gas used.
        gas: u64,
        /// The node's URL.
        url: String,
    },
    /// An epoch landed.
    Anchored {
        /// The epoch number.
        epoch: u64,
        /// The log's name.
        log: String,
        /// The epoch's root.
        root: String,
        /// Chain heads under it.
        leaves: u64,
        /// Its transaction.
        tx: Option<String>,
        /// Its block.
        block: Option<u64>,
        /// Its state.
        state: String,
    },
    /// Reconcile found something.
    ReconcileFailed {
        /// How many findings.
        findings: usize,
    },
    /// Reconcile confirmed every epoch.
    Reconciled {
        /// Epochs confirmed on chain.
        epochs: u64,
        /// Records checked against the anchored heads.
        records: u64,
    },
    /// The allowed decision's proof verified offline and on chain, and was written.
    Proven {
        /// The record, short.
        record: String,
        /// Links from it to its chain's head.
        links: usize,
        /// The anchor's block.
        block: u64,
        /// Signatures verified under the keyring.
        signatures: usize,
        /// Where the proof was written.
        path: PathBuf,
    },
}
