//! Processes: killed on drop, signalled, found by marker or command line; waiting for a
//! condition.

use std::io::Read;
use std::process::Child;
use std::time::{Duration, Instant};

/// A child process killed (and reaped) when dropped.
#[derive(Debug)]
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `sig` (`-TERM`, `-INT`, `-KILL`, ...) to process `pid` with kill(1); asserts it was
/// delivered.
pub fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig} {pid}");
}

/// Sends `sig` to `child` and waits up to 20 s for it to exit: (exit code, its stderr when it
/// was piped).
pub fn signal_and_wait(child: &mut Child, sig: &str) -> (Option<i32>, String) {
    signal(child.id(), sig);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut err).unwrap();
            }
            return (st.code(), err);
        }
        assert!(
            Instant::now() < deadline,
            "the process did not stop after {sig}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `ok` every 20 ms until it holds; panics naming `what` after `within`.
pub fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` lives (a zombie does not: it runs nothing).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| !r.trim().starts_with('Z')))
        .unwrap_or(false)
}

/// The pids (as this process sees them) of live processes whose command line is exactly
/// `argv`.
pub fn pids_running(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .filter(|pid| alive(*pid))
        .collect()
}

/// Waits up to 10 s until a process runs `argv`: its pid.
pub fn wait_running(argv: &[&str]) -> i32 {
    let mut pid = None;
    wait_until(
        &format!("{argv:?} to start"),
        Duration::from_secs(10),
        || {
            pid = pids_running(argv).first().copied();
            pid.is_some()
        },
    );
    pid.unwrap()
}

/// The processes alive now whose environment holds `ZT_TEST_MARKER=marker` (a process started
/// with that marker, and everything it started): `(pid, command line)`.
pub fn marked_processes(marker: &str) -> Vec<(u32, String)> {
    let want = format!("ZT_TEST_MARKER={marker}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // Gone, or not ours to read: not one of ours either way.
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|v| v == want.as_bytes()) {
            let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")));
        }
    }
    found
}

/// The peak resident memory (`VmHWM`) of process `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}
