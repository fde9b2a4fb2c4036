//! The exporter: sends the control plane's committed records (both chains: decisions and the
//! control plane's own records, see [`crate::chain::Lane`]) to an OTLP/HTTP logs endpoint
//! (`zt-audit serve`, or a Collector) with `zt-export`.
//!
//! The chains themselves are the outbox: a cursor per chain in `state.db` remembers the last
//! position the endpoint acknowledged; the exporter reads what follows from the store in pages,
//! sends each page as one request and moves the cursor on a 2xx. A failure waits (exponential
//! backoff, up to 30 s) and sends the same page again; ingest is idempotent, so a page sent
//! twice lands once. Nothing here can change a decision: decisions are answered before they
//! are exported, and exporting only reads.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use zt_export::{Backoff, EnvelopeExporter, ExportConfig};
use zt_store::Store;

use crate::chain::Lane;
use crate::db::State;
use crate::error::ControlPlaneError;

/// Most envelopes per OTLP request.
const PAGE: usize = 512;

#[derive(Debug, Default)]
struct Progress {
    /// Last committed position of each lane (-1: none), by lane index.
    committed: [i64; 2],
    /// Last exported position of each lane (-1: none).
    exported: [i64; 2],
    /// Last error, if the endpoint is failing.
    last_error: Option<String>,
    /// Stop after a last attempt.
    stopping: bool,
}

/// Shared between the writer (which reports commits), the exporter thread, and whoever waits
/// for the export to catch up (the demo, tests).
#[derive(Debug, Default)]
pub struct ExportWatch {
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Progress {
    /// The first lane with something committed and not exported.
    fn behind(&self) -> Option<Lane> {
        Lane::ALL
            .into_iter()
            .find(|l| self.exported[l.index()] < self.committed[l.index()])
    }
}

impl ExportWatch {
    fn new(committed: [i64; 2], exported: [i64; 2]) -> Self {
        Self {
            progress: Mutex::new(Progress {
                committed,
                exported,
                ..Progress::default()
            }),
            changed: Condvar::new(),
        }
    }

    /// The writer committed `lane` up to `position`.
    pub fn committed(&self, lane: Lane, position: u64) {
        let mut p = self.lock();
        p.committed[lane.index()] = i64::try_from(position).unwrap_or(i64::MAX);
        self.changed.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The endpoint's last error while it is failing.
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// Waits until everything committed so far is exported; false on timeout.
    pub fn wait_caught_up(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut p = self.lock();
        let target = p.committed;
        while (0..2).any(|i| p.exported[i] < target[i]) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            p = self
                .changed
                .wait_timeout(p, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Asks the exporter to make a last attempt and stop.
    pub fn stop(&self) {
        self.lock().stopping = true;
        self.changed.notify_all();
    }
}

/// What the exporter thread needs.
#[derive(Debug)]
pub struct Exporter {
    pub(crate) config: ExportConfig,
    pub(crate) decisions: zt_store::Location,
    pub(crate) state: PathBuf,
    /// The decision chain's id (the other lane's follows from it).
    pub(crate) chain: String,
}

/// The cursor's key in `state.db`: the endpoint for the decision chain (as before the admin
/// chain existed), the endpoint and `#admin` for the other.
fn cursor_key(endpoint: &str, lane: Lane) -> String {
    match lane {
        Lane::Decisions => endpoint.to_owned(),
        Lane::Admin => format!("{endpoint}#admin"),
    }
}

/// A started exporter: its watch and its thread.
pub type Running = (Arc<ExportWatch>, std::thread::JoinHandle<()>);

/// Starts the exporter thread; its watch starts from the stored cursor and head.
pub fn spawn(ex: Exporter) -> Result<Running, ControlPlaneError> {
    let exporter = EnvelopeExporter::new(&ex.config)?;
    let store = Store::connect(&ex.decisions)?;
    let state = State::open(&ex.state)?;
    let mut exported = [-1; 2];
    let mut committed = [-1; 2];
    for lane in Lane::ALL {
        exported[lane.index()] = state.export_cursor(&cursor_key(&ex.config.endpoint, lane))?;
        committed[lane.index()] = store
            .head(&lane.chain_id(&ex.chain))?
            .map_or(-1, |(p, _)| p);
    }
    let watch = Arc::new(ExportWatch::new(committed, exported));
    let w = Arc::clone(&watch);
    let join = std::thread::Builder::new()
        .name("zt-cp-export".into())
        .spawn(move || run(&exporter, &store, &state, &ex.chain, &w))
        .map_err(|source| ControlPlaneError::Io {
            what: "exporter thread",
            path: "-".into(),
            source,
        })?;
    Ok((watch, join))
}

fn run(
    exporter: &EnvelopeExporter,
    store: &Store,
    state: &State,
    chain: &str,
    watch: &ExportWatch,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    loop {
        let (behind, stopping) = {
            let p = watch.lock();
            (p.behind().map(|l| (l, p.exported[l.index()])), p.stopping)
        };
        if let Some((lane, exported)) = behind {
            match export_page(exporter, store, state, chain, lane, exported) {
                Ok(upto) => {
                    backoff.reset();
                    let mut p = watch.lock();
                    p.exported[lane.index()] = upto;
                    p.last_error = None;
                    watch.changed.notify_all();
                    continue;
                }
                Err(e) => {
                    let e = e.to_string();
                    watch.lock().last_error = Some(e.clone());
                    // The receiver's answer is quoted in `e`: escaped for the terminal.
                    let shown = zt_core::text::escape(&e);
                    if stopping {
                        eprintln!("zt-control-plane: export stopped with decisions after position {exported} not exported ({shown}); they are sent on the next start");
                        return;
                    }
                    let delay = backoff.next_delay();
                    eprintln!("zt-control-plane: export failed, retrying in {delay:?}: {shown}");
                    let p = watch.lock();
                    let _ = watch.changed.wait_timeout_while(p, delay, |p| !p.stopping);
                    continue;
                }
            }
        }
        if stopping {
            return;
        }
        let p = watch.lock();
        // Woken by a commit or a stop; the timeout is only a safety net.
        let _ = watch
            .changed
            .wait_timeout_while(p, Duration::from_secs(5), |p| {
                p.behind().is_none() && !p.stopping
            });
    }
}

/// Why a page was not exported (the exporter waits and sends it again).
#[derive(Debug, thiserror::Error)]
enum PageError {
    /// The store could not be read.
    #[error("{0}")]
    Store(#[from] zt_store::StoreError),
    /// The store holds nothing after the cursor although the writer committed more.
    #[error("no decision after position {0} in the store")]
    Missing(i64),
    /// The endpoint refused the page or could not be reached.
    #[error("{0}")]
    Export(#[from] zt_export::ExportError),
    /// The cursor could not be moved.
    #[error("{0}")]
    Cursor(#[from] ControlPlaneError),
}

/// Sends the page of `lane` after `exported`; returns the last position sent.
fn export_page(
    exporter: &EnvelopeExporter,
    store: &Store,
    state: &State,
    chain: &str,
    lane: Lane,
    exported: i64,
) -> Result<i64, PageError> {
    let rows = store.page_chain(
        &lane.chain_id(chain),
        Some(zt_store::ChainCursor::main_line_after(exported)),
        PAGE,
    )?;
    let rows: Vec<_> = rows.into_iter().filter(zt_store::RawRow::is_main).collect();
    let Some(last) = rows.last().and_then(|r| r.position) else {
        return Err(PageError::Missing(exported));
    };
    let texts: Vec<&str> = rows
        .iter()
        .filter_map(|r| std::str::from_utf8(&r.raw).ok())
        .collect();
    exporter.export(&texts)?;
    state.set_export_cursor(&cursor_key(exporter.endpoint(), lane), last)?;
    Ok(last)
}
