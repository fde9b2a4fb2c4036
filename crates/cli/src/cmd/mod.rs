//! One module per subcommand, each with its `Args` and `run`.

pub mod anchor;
pub mod anvil;
pub mod bench;
pub mod bench_anchor;
pub mod bench_cp;
pub mod bench_ingest;
pub mod bench_tui;
pub mod control_plane;
pub mod demo;
pub mod import;
pub mod keygen;
pub mod prove;
pub mod reconcile;
pub mod serve;
pub mod tui;
pub mod verify;

/// The async runtime the network subcommands run on (multi-threaded, I/O and timers).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}
