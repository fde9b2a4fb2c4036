//! The decision writer: one thread owns the control plane's chains and their store.
//!
//! Two chains, one writer: agents' decisions on the control plane's chain (`chain_id`), so the
//! answers an agent saves form a chain of their own from seq 0 and verify as a file; the
//! control plane's own records (agent registration, rotation, revocation, rate-limit
//! summaries) on `chain_id.admin`. One writer stamps and commits both in one order, so their
//! signed timestamps order them: a revocation is never earlier than a decision made with the
//! token it retired (timestamps have millisecond resolution, so both may carry the same one;
//! the order of commits is the order of the writer).
//!
//! Requests hand their decision to a bounded queue. The writer takes everything queued (up to
//! a group size), gives each decision the next `seq` and the previous `current_hash`, seals
//! and signs it, checks the signature under the control plane's own public key, and commits
//! the group in one SQLite transaction (`synchronous=FULL`). Only then is any request
//! answered. One writer means concurrent requests can never fork the chain (the lineage
//! appends without a lock); group commit means one fsync covers many decisions.
//!
//! Failure is closed: a decision whose signing fails, or a group whose commit fails, is
//! answered with an error (HTTP 503) and nothing is allowed; the chain head only moves after
//! a successful commit.

use std::sync::Arc;

use rayon::prelude::*;
use tokio::sync::{mpsc, oneshot};
use zt_core::crypto;
use zt_core::envelope::{Sealed, V1Draft};
use zt_core::json::Map;
use zt_core::time::Timestamp;
use zt_core::{Envelope, Hash32, Profile};
use zt_store::{NewRecord, Store};

use crate::error::{ControlPlaneError, SealError};
use crate::signer::Signer;

/// Which of the control plane's two chains a record goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Decisions on `/actions`: the chain agents' saved answers form, from seq 0.
    Decisions,
    /// The control plane's own records: agent registration, token rotation, revocation,
    /// rate-limit summaries.
    Admin,
}

impl Lane {
    /// Both, in their index order.
    pub const ALL: [Lane; 2] = [Lane::Decisions, Lane::Admin];

    /// Its place in per-lane arrays.
    pub(crate) fn index(self) -> usize {
        match self {
            Lane::Decisions => 0,
            Lane::Admin => 1,
        }
    }

    /// The chain id of this lane for a control plane whose decision chain is `chain_id`.
    pub fn chain_id(self, chain_id: &str) -> String {
        match self {
            Lane::Decisions => chain_id.to_owned(),
            Lane::Admin => format!("{chain_id}.admin"),
        }
    }
}

/// A decision made, waiting for its place in the chain.
#[derive(Debug, Clone)]
pub struct Decided {
    /// Which chain: an agent's decision, or the control plane's own record.
    pub lane: Lane,
    /// Who asked.
    pub actor: String,
    /// What for.
    pub action: String,
    /// On what.
    pub resource: String,
    /// Allowed or not.
    pub allow: bool,
    /// Why.
    pub reason: String,
    /// The envelope's `context` (request id, identity, policy id and version, ...).
    pub context: Map,
}

/// A decision sealed into the chain and committed.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The envelope, one line of JSON.
    pub json: String,
    /// Its hash.
    pub current_hash: Hash32,
    /// Its position.
    pub seq: u64,
    /// Its chain.
    pub lane: Lane,
}

struct Job {
    decided: Decided,
    reply: oneshot::Sender<Result<Committed, SealError>>,
}

/// Hands decisions to the writer.
#[derive(Debug, Clone)]
pub struct ChainHandle {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("decided", &self.decided)
            .finish()
    }
}

/// A decision in the writer's queue: its place in the chain is fixed (the queue is FIFO),
/// its commit is awaited with [`Pending::committed`].
#[derive(Debug)]
pub struct Pending(oneshot::Receiver<Result<Committed, SealError>>);

impl Pending {
    /// Waits until the decision is committed (or failed).
    pub async fn committed(self) -> Result<Committed, SealError> {
        self.0.await.map_err(|_| SealError::WriterGone)?
    }
}

impl ChainHandle {
    /// Seals `decided` into the chain; returns once it is committed. `Busy` when the queue
    /// is full (the caller answers 503 with Retry-After).
    pub async fn append(&self, decided: Decided) -> Result<Committed, SealError> {
        self.enqueue(decided)?.committed().await
    }

    /// Whether fewer than half the queue's places are taken: refusals of unauthenticated
    /// requests are queued only then, so a flood within the unauthenticated rate limit
    /// still cannot take the places of agents' decisions.
    pub fn half_free(&self) -> bool {
        self.tx.capacity() * 2 > self.tx.max_capacity()
    }

    /// Queues `decided` without waiting: what is queued before and after it is sealed
    /// before and after it. A caller holding a lock across this call (not across the wait)
    /// orders its decision against everything else that takes the lock.
    pub fn enqueue(&self, decided: Decided) -> Result<Pending, SealError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Job { decided, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => SealError::Busy,
                mpsc::error::TrySendError::Closed(_) => SealError::WriterGone,
            })?;
        Ok(Pending(rx))
    }
}

/// The writer's configuration.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// The chain's id.
    pub chain_id: String,
    /// Decisions waiting before 503.
    pub queue: usize,
    /// Most decisions per commit.
    pub max_group: usize,
}

/// Hears, after each commit, a lane's last committed position and how many records of it the
/// group held (the exporter's wake-up).
pub type OnCommit = Box<dyn Fn(Lane, u64, u64) + Send>;

/// Where a chain goes next: (next seq, previous hash).
type Head = (u64, Hash32);

/// The writer thread's state.
struct Writer {
    store: Store,
    signer: Arc<dyn Signer>,
    /// The chain ids of the lanes, by [`Lane::index`].
    chain_ids: [String; 2],
    heads: [Head; 2],
    last_ts: i128,
    on_commit: OnCommit,
}

fn stored_head(store: &Store, chain: &str) -> Result<Head, ControlPlaneError> {
    match store.head(chain)? {
        None => Ok((0, Hash32::ZERO)),
        Some((pos, hash)) => {
            let pos = u64::try_from(pos).map_err(|_| ControlPlaneError::Chain {
                chain: chain.to_owned(),
                reason: format!("head position {pos} is negative"),
            })?;
            Ok((pos + 1, hash))
        }
    }
}

/// Reads the chains' heads from `store` and starts the writer.
pub fn spawn(
    store: Store,
    signer: Arc<dyn Signer>,
    config: &WriterConfig,
    on_commit: OnCommit,
) -> Result<(ChainHandle, std::thread::JoinHandle<()>), ControlPlaneError> {
    let chain_ids = Lane::ALL.map(|l| l.chain_id(&config.chain_id));
    let heads = [
        stored_head(&store, &chain_ids[0])?,
        stored_head(&store, &chain_ids[1])?,
    ];
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    let mut writer = Writer {
        store,
        signer,
        chain_ids,
        heads,
        last_ts: 0,
        on_commit,
    };
    let max_group = config.max_group.max(1);
    let join = std::thread::Builder::new()
        .name("zt-cp-writer".into())
        .spawn(move || writer.run(rx, max_group))
        .map_err(|source| ControlPlaneError::Io {
            what: "decision writer thread",
            path: "-".into(),
            source,
        })?;
    Ok((ChainHandle { tx }, join))
}

impl Writer {
    fn run(&mut self, mut rx: mpsc::Receiver<Job>, max_group: usize) {
        let mut jobs = Vec::with_capacity(max_group);
        // Ends when every handle is dropped and the queue is empty: a drain on shutdown.
        while let Some(first) = rx.blocking_recv() {
            jobs.push(first);
            while jobs.len() < max_group {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            self.commit_group(std::mem::take(&mut jobs));
        }
    }

    fn timestamp(&mut self) -> String {
        // Never earlier than the previous decision's, even if the wall clock steps back.
        let now = Timestamp::now().unix_nanos().max(self.last_ts);
        self.last_ts = now;
        Timestamp::from_unix_nanos(now).to_rfc3339_millis()
    }

    /// Seals the group: drafts are chained first (hashing is cheap and sequential), then
    /// signed and self-checked in parallel (the expensive part). If any signature fails, the
    /// group is sealed again one by one, so the failed decision leaves no hole in its chain.
    fn seal_group(&self, jobs: &[Job], ts: &str) -> Vec<Result<(Sealed, Envelope), SealError>> {
        let (alg, key_id) = (crypto::ALGORITHM, self.signer.key_id());
        let mut drafts = Vec::with_capacity(jobs.len());
        let mut heads = self.heads;
        for job in jobs {
            let i = job.decided.lane.index();
            let (seq, prev) = heads[i];
            let d = draft(&self.chain_ids[i], &job.decided, seq, prev, ts);
            heads[i] = (seq + 1, d.current_hash(alg, key_id));
            drafts.push(d);
        }
        let signer = self.signer.as_ref();
        let sealed: Vec<_> = drafts.par_iter().map(|d| seal(signer, d)).collect();
        if sealed.iter().all(Result::is_ok) {
            return sealed;
        }
        let mut heads = self.heads;
        jobs.iter()
            .map(|job| {
                let i = job.decided.lane.index();
                let (seq, prev) = heads[i];
                let r = seal(
                    signer,
                    &draft(&self.chain_ids[i], &job.decided, seq, prev, ts),
                );
                if let Ok((s, _)) = &r {
                    heads[i] = (seq + 1, s.current_hash);
                }
                r
            })
            .collect()
    }

    fn commit_group(&mut self, jobs: Vec<Job>) {
        let ts = self.timestamp();
        let sealed = self.seal_group(&jobs, &ts);
        let mut heads = self.heads;
        let mut ready: Vec<(Job, Sealed, Envelope, u64)> = Vec::with_capacity(jobs.len());
        for (job, result) in jobs.into_iter().zip(sealed) {
            match result {
                Ok((sealed, env)) => {
                    let i = job.decided.lane.index();
                    let seq = heads[i].0;
                    heads[i] = (seq + 1, sealed.current_hash);
                    ready.push((job, sealed, env, seq));
                }
                // This decision is not sealed; its chain does not move for it.
                Err(e) => {
                    let _ = job.reply.send(Err(e));
                }
            }
        }
        if ready.is_empty() {
            return;
        }
        let received = zt_store::now_ms();
        let records: Vec<NewRecord<'_>> = ready
            .iter()
            .map(|(_, s, e, _)| NewRecord {
                raw: s.json.as_bytes(),
                envelope: e,
                profile: Profile::V1,
                status: zt_core::chain::SigStatus::Verified,
                source: "control-plane",
                sender: None,
                received_at_ms: received,
            })
            .collect();
        let n = records.len() as u64;
        let result = self.store.insert_batch(&records, &[]);
        drop(records);
        let failure = match result {
            Ok(out) if out.inserted == n && out.forks == 0 && out.waiting == 0 => None,
            Ok(out) => Some(SealError::NotAppended {
                chain: self.chain_ids.join(", "),
                outcome: format!("{out:?}"),
            }),
            Err(e) => Some(SealError::Store(e)),
        };
        match failure {
            None => {
                for lane in Lane::ALL {
                    let i = lane.index();
                    let moved = heads[i].0 - self.heads[i].0;
                    if moved > 0 {
                        (self.on_commit)(lane, heads[i].0 - 1, moved);
                    }
                }
                self.heads = heads;
                for (job, sealed, _, seq) in ready {
                    let _ = job.reply.send(Ok(Committed {
                        seq,
                        lane: job.decided.lane,
                        json: sealed.json,
                        current_hash: sealed.current_hash,
                    }));
                }
            }
            Some(err) => self.fail_group(err, ready),
        }
    }

    /// The group's commit failed: every decision in it is answered with `err`.
    fn fail_group(&mut self, err: SealError, ready: Vec<(Job, Sealed, Envelope, u64)>) {
        // The error may quote the chain id or the store: escaped for the terminal.
        eprintln!(
            "zt-control-plane: {}; {} decision(s) answered 503",
            zt_core::text::escape(&err.to_string()),
            ready.len()
        );
        // Something else wrote these chains, or the commit failed: resume from what the store
        // holds, never from what we hoped it holds.
        for i in 0..2 {
            if let Ok(head) = stored_head(&self.store, &self.chain_ids[i]) {
                self.heads[i] = head;
            }
        }
        let err = Arc::new(err);
        for (job, ..) in ready {
            let _ = job.reply.send(Err(SealError::Commit(Arc::clone(&err))));
        }
    }
}

fn draft(chain_id: &str, d: &Decided, seq: u64, prev: Hash32, ts: &str) -> V1Draft {
    V1Draft {
        chain_id: chain_id.to_owned(),
        seq,
        actor: d.actor.clone(),
        action: d.action.clone(),
        resource: d.resource.clone(),
        decision: if d.allow { "allow" } else { "deny" }.into(),
        reason: d.reason.clone(),
        timestamp: ts.to_owned(),
        previous_hash: prev,
        context: Some(d.context.clone()),
    }
}

/// Seals one draft: hash, sign, check the signature under the signer's own public key.
fn seal(signer: &dyn Signer, draft: &V1Draft) -> Result<(Sealed, Envelope), SealError> {
    let key_id = signer.key_id();
    let sealed = draft.seal_with(crypto::ALGORITHM, key_id, |digest| {
        let der = signer.sign(digest)?;
        // A faulty signer (or a fault attack) must not put an unverifiable decision on
        // record, least of all an allow.
        signer
            .public_key()
            .verify_digest(digest, &der)
            .map_err(|_| SealError::SelfCheck {
                key_id: key_id.to_owned(),
            })?;
        Ok::<_, SealError>(der)
    })?;
    let envelope = Envelope::from_json(sealed.json.as_bytes()).map_err(SealError::Reread)?;
    Ok((sealed, envelope))
}
