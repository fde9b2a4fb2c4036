//! The processes a benchmark runs beside itself, and what it reads from them: `zt-audit serve`
//! (the binary beside this one, or `ZT_AUDIT_BIN`), the attacker senders (this binary's own
//! hidden subcommands), a receiver's `/metrics`, a process's peak memory and CPU time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

/// The `zt-audit` binary the benchmarks measure: `ZT_AUDIT_BIN`, else the `zt-audit` beside
/// this binary (`cargo build -p zt-audit -p zt-bench` puts both in the same folder).
pub fn zt_audit() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ZT_AUDIT_BIN") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("ZT_AUDIT_BIN names {}, which is not a file", p.display());
        }
        return Ok(p);
    }
    let me = std::env::current_exe().context("finding this binary")?;
    let p = me.with_file_name("zt-audit");
    if !p.is_file() {
        bail!(
            "zt-bench runs zt-audit as its own process and found none at {}: build it \
             (`cargo build --release -p zt-audit`, or scripts/bench.sh, which builds both) \
             or name one with ZT_AUDIT_BIN",
            p.display()
        );
    }
    Ok(p)
}

/// A running `zt-audit serve` on a free loopback port; killed on drop. Shared
/// with the plain ingest bench.
pub(crate) struct Serve {
    child: Child,
    /// `host:port`.
    pub(crate) addr: String,
}

impl Serve {
    pub(crate) fn start(db: &Path, ring: &Path, extra: &[&str]) -> Result<Self> {
        Self::start_at(db.as_os_str(), ring, extra)
    }

    /// As [`Serve::start`], on any store `--db` takes (a PostgreSQL URL too).
    pub(crate) fn start_at(
        db: impl AsRef<std::ffi::OsStr>,
        ring: &Path,
        extra: &[&str],
    ) -> Result<Self> {
        let mut child = Command::new(zt_audit()?)
            .args(["serve", "--db"])
            .arg(db)
            .args(["--listen", "127.0.0.1:0", "--keyring"])
            .arg(ring)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting zt-audit serve")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("serve stdout")?).read_line(&mut line)?;
        let addr = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .trim_start_matches("http://")
            .trim_end_matches("/v1/logs")
            .to_owned();
        Ok(Self { child, addr })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User and system CPU seconds the server used so far.
    pub(crate) fn cpu_secs(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the command name (which may hold spaces) end with `)`.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some(ticks / clock_ticks())
    }

    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `CLK_TCK`, the unit of `/proc/PID/stat`'s CPU times (100 on Linux unless told otherwise).
pub(crate) fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A counter from a receiver's `/metrics` (0 when it cannot be read).
pub(crate) fn metric(addr: &str, name: &str) -> u64 {
    let read = || -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect(addr)?;
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text)
    };
    read().ok().map_or(0, |text| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    })
}

pub(crate) fn peak_rss_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// An attacker process: `zt-bench flood-sender` or `zt-bench slow-sender`, optionally
/// under `nice -n 19`. It says `ready` on its first line once its attack is on, and its
/// counts as JSON when its standard input closes.
pub(crate) struct Sender {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Sender {
    pub(crate) fn start(addr: SocketAddr, connections: usize, niced: bool) -> Result<Self> {
        Self::spawn(
            &[
                "flood-sender".into(),
                "--addr".into(),
                addr.to_string(),
                "--connections".into(),
                connections.to_string(),
            ],
            niced,
        )
    }

    /// `zt-bench ARGS` (this binary), and waits for its `ready`.
    pub(crate) fn spawn(args: &[String], niced: bool) -> Result<Self> {
        let exe = std::env::current_exe()?;
        let mut cmd = if niced {
            let mut c = std::process::Command::new("nice");
            c.args(["-n", "19"]).arg(exe);
            c
        } else {
            std::process::Command::new(exe)
        };
        let mut child = cmd
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("starting bench {} (needs `nice` on PATH)", args[0]))?;
        let mut out = BufReader::new(child.stdout.take().context("sender stdout")?);
        let mut ready = String::new();
        out.read_line(&mut ready)?;
        if ready.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            bail!("bench {} did not start: {ready:?}", args[0]);
        }
        Ok(Self { child, out })
    }

    /// Closes the sender's stdin (its signal to stop) and reads its counts.
    pub(crate) fn finish<T: serde::de::DeserializeOwned>(mut self) -> Result<T> {
        drop(self.child.stdin.take());
        let mut out = String::new();
        self.out.read_to_string(&mut out)?;
        let status = self.child.wait()?;
        if !status.success() {
            bail!("the attacker process failed: {status}");
        }
        serde_json::from_str(out.trim()).context("the attacker's counts")
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a holder reports.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Held {
    /// Connections opened (the first N, and each one opened again after the server closed
    /// it).
    pub opened: u64,
    /// Connections the server closed.
    pub closed_by_server: u64,
    /// Connection attempts that failed.
    pub connect_failed: u64,
}

/// Starts a niced `bench slow-sender` holding `connections` against `addr`; returns once they
/// are open.
pub(crate) fn holder(addr: SocketAddr, connections: usize) -> Result<Sender> {
    Sender::spawn(
        &[
            "slow-sender".into(),
            "--addr".into(),
            addr.to_string(),
            "--connections".into(),
            connections.to_string(),
        ],
        true,
    )
}

/// The server's `zt_connections_open`.
pub(crate) fn open_connections(addr: &str) -> u64 {
    metric(addr, "zt_connections_open")
}
