//! Servers in this process, each on a runtime thread of its own, stopped on drop: the control
//! plane (`zt_control_plane`) and an ingest receiver (`zt_ingest`); and what their stores hold
//! by the real verifier.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;
use zt_control_plane::export::ExportWatch;
use zt_control_plane::signer::Signer;
use zt_control_plane::{ControlPlane, ControlPlaneError, Options, Summary};

/// A multi-threaded runtime of `workers` threads.
fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// A control plane serving on 127.0.0.1; stopped on drop.
#[derive(Debug)]
pub struct Running {
    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` over TLS (the name the test
    /// certificates carry).
    pub base: String,
    pub dir: PathBuf,
    /// The admin token (none in open mode).
    pub admin_token: Option<String>,
    /// Its store of decisions, when a file.
    pub db: Option<PathBuf>,
    /// The export's progress, when it exports.
    pub watch: Option<Arc<ExportWatch>>,
    shutdown: Option<oneshot::Sender<()>>,
    join: Option<JoinHandle<Result<Summary, ControlPlaneError>>>,
}

/// Options of open mode (no tokens).
pub fn open_opts() -> Options {
    Options {
        open: true,
        ..Options::default()
    }
}

/// A control plane on `dir` with `opts`, signing with its own key.
pub fn start(dir: &Path, opts: Options) -> Running {
    start_with(dir, opts, None)
}

/// A control plane on `dir` with `opts`, signing with `signer` when given.
pub fn start_with(dir: &Path, opts: Options, signer: Option<Arc<dyn Signer>>) -> Running {
    let tls = opts.tls.is_some();
    let cp = match signer {
        Some(s) => ControlPlane::with_signer(dir, opts, s).unwrap(),
        None => ControlPlane::open(dir, opts).unwrap(),
    };
    let admin_token = cp
        .admin_token_file()
        .map(|p| std::fs::read_to_string(p).unwrap().trim().to_owned());
    let db = cp.decisions_db().as_path().map(Path::to_path_buf);
    let (tx, rx) = oneshot::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let join = std::thread::spawn(move || {
        runtime(2).block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr: SocketAddr = listener.local_addr().unwrap();
            let shutdown = async {
                let _ = rx.await;
            };
            cp.serve_with(listener, shutdown, move |w| {
                ready_tx.send((addr, w)).unwrap();
            })
            .await
        })
    });
    let (addr, watch) = ready_rx.recv().unwrap();
    Running {
        base: if tls {
            format!("https://localhost:{}", addr.port())
        } else {
            format!("http://{addr}")
        },
        dir: dir.to_owned(),
        admin_token,
        db,
        watch,
        shutdown: Some(tx),
        join: Some(join),
    }
}

impl Running {
    /// Stops, drains, and returns the run's summary.
    pub fn stop(mut self) -> Summary {
        self.stop_inner().unwrap().unwrap().unwrap()
    }

    fn stop_inner(&mut self) -> Option<std::thread::Result<Result<Summary, ControlPlaneError>>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.join.take().map(JoinHandle::join)
    }

    /// Its keyring (`keyring.json`), as bytes.
    pub fn keyring(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("keyring.json")).unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// An ingest receiver serving on `listener`; stopped on drop.
#[derive(Debug)]
pub struct Ingest {
    stop: Option<oneshot::Sender<()>>,
    join: Option<JoinHandle<std::io::Result<zt_ingest::server::Summary>>>,
}

impl Ingest {
    /// A receiver on `listener` into the store at `db`, trusting `keyring` (JSON bytes).
    pub fn start(
        listener: std::net::TcpListener,
        db: &Path,
        keyring: &[u8],
        config: zt_ingest::server::Config,
    ) -> Ingest {
        let store = zt_store::Store::open(db).unwrap();
        let ring = zt_core::keyring::Keyring::from_json(keyring).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let join = std::thread::spawn(move || {
            runtime(1).block_on(async move {
                listener.set_nonblocking(true).unwrap();
                let l = tokio::net::TcpListener::from_std(listener).unwrap();
                zt_ingest::server::serve(l, store, ring, config, async {
                    let _ = rx.await;
                })
                .await
            })
        });
        Ingest {
            stop: Some(tx),
            join: Some(join),
        }
    }

    /// Stops, drains, and returns the run's summary.
    pub fn stop(mut self) -> zt_ingest::server::Summary {
        self.stop_inner().unwrap().unwrap().unwrap()
    }

    fn stop_inner(
        &mut self,
    ) -> Option<std::thread::Result<std::io::Result<zt_ingest::server::Summary>>> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.join.take().map(JoinHandle::join)
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Verifies the store at `db` with the real verifier under `keyring` (JSON bytes).
pub fn verify_store(db: &Path, keyring: &[u8]) -> zt_verifier::Report {
    let ring = zt_core::keyring::Keyring::from_json(keyring).unwrap();
    zt_ingest::verify_db(db, &ring).unwrap()
}
