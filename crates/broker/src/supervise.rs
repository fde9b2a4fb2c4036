//! Runs a command in its own process group and stops the whole group when told to.
//!
//! The child leads a new process group (`process_group(0)`), so its children inherit the group
//! and one `killpg(SIGKILL)` ends them all. A waiter thread learns of the leader's exit with
//! `waitid(WEXITED | WNOWAIT)`, which leaves it a zombie: while the leader is not reaped its
//! pid, which is the group id, cannot be reused, so the group signal can never reach an
//! unrelated process. The group is signalled once more after the leader exits (background
//! processes do not outlive the command's watch) and only then is the leader reaped.
//!
//! A process that leaves the group (`setsid`, `setpgid`) is out of reach of the group signal.
//! [`Supervised::spawn_contained`] closes that gap for the broker, whose child is the sandbox
//! helper (it starts a session of its own, so its process group is its pid): the broker
//! becomes a child subreaper (`PR_SET_CHILD_SUBREAPER`), and every stop (and the command's
//! own end) kills every descendant of the helper found through `/proc`, and, for a broker that
//! supervises one command only (`sole`), every other child of its own too (orphans reparented
//! to it). Under the `nono` sandbox the command is init of its own PID namespace, so killing it
//! ends every process it started at once, however fast they fork.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Instant;

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

use crate::error::BrokerError;

/// Why the broker stopped a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The capability was revoked (the control plane answered 410 `revoked`).
    Revoked {
        /// What the control plane said (e.g. when).
        detail: String,
    },
    /// The capability expired (410 `expired`, or its `not_after` passed locally).
    Expired {
        /// When.
        detail: String,
    },
    /// No successful answer from the control plane in time: fail closed.
    LostContact {
        /// The last error.
        detail: String,
    },
}

impl StopReason {
    /// `revoked`, `expired` or `lost_contact` (the evidence's `stopped.reason`, named by
    /// `zt_core::capability::report::StopKind`).
    pub fn as_str(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The detail.
    pub fn detail(&self) -> &str {
        match self {
            Self::Revoked { detail } | Self::Expired { detail } | Self::LostContact { detail } => {
                detail
            }
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self {
            Self::Revoked { .. } => "the capability was revoked",
            Self::Expired { .. } => "the capability expired",
            Self::LostContact { .. } => "lost contact with the control plane",
        };
        write!(f, "{what} ({}): {}", self.as_str(), self.detail())
    }
}

/// How a supervised command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// From start to reaped.
    pub duration_ms: u64,
    /// Set when the broker stopped it.
    pub stopped: Option<StopReason>,
    /// Set when the helper refused to start the command (exit 126 and a reason written).
    pub refused: Option<String>,
}

impl Outcome {
    /// A command whose end the broker could not observe.
    pub fn lost(detail: String) -> Self {
        Self {
            exit_code: None,
            signal: None,
            duration_ms: 0,
            stopped: Some(StopReason::LostContact { detail }),
            refused: None,
        }
    }
}

/// Exit status when the broker stopped the command (128 + SIGKILL).
pub const EXIT_STOPPED: u8 = 137;
/// Exit status when the command was never started (refused).
pub const EXIT_REFUSED: u8 = 126;

impl Outcome {
    /// The broker's exit status: the command's own when it ran to completion (128 + signal if
    /// a signal ended it without the broker), [`EXIT_STOPPED`] when the broker stopped it.
    pub fn exit_status(&self) -> u8 {
        if self.stopped.is_some() {
            return EXIT_STOPPED;
        }
        match (self.exit_code, self.signal) {
            (Some(c), _) => (c & 0xff) as u8,
            (None, Some(s)) => 128u8.saturating_add((s & 0x7f) as u8),
            (None, None) => 1,
        }
    }
}

enum Event {
    Exited,
    Stop(StopReason),
}

/// Stops a supervised command (cloneable, usable from any thread).
#[derive(Debug, Clone)]
pub struct Stopper(mpsc::Sender<Event>);

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Exited => f.write_str("Exited"),
            Event::Stop(r) => write!(f, "Stop({r})"),
        }
    }
}

impl Stopper {
    /// Asks the supervisor to kill the command's process group. The first reason wins; after
    /// the command has ended this does nothing.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.0.send(Event::Stop(reason));
    }
}

/// A running command.
#[derive(Debug)]
pub struct Supervised {
    child: Child,
    group: Pid,
    events: mpsc::Receiver<Event>,
    stopper: Stopper,
    started: Instant,
    /// Every descendant is ended, not only the group (this process is a subreaper).
    contained: bool,
    /// Every other child of this process is the command's too.
    sole: bool,
    /// Where the helper says why it refused.
    refusal: Option<crate::refusal::RefusalFile>,
}

/// The helpers this process is supervising: its only legitimate children in `broker serve`.
static LIVE: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<i32>> {
    LIVE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Kills and reaps every child of this process that is not a helper it supervises: in
/// `broker serve`, a command whose helper died (it was reparented here, a subreaper) must not
/// run on unsupervised. The command is init of its PID namespace, so its end ends the rest.
pub fn sweep_orphans() {
    let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    let live = live();
    for (pid, ppid, zombie) in processes() {
        if ppid != me || live.contains(&pid) {
            continue;
        }
        if !zombie {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
    }
}

/// (pid, parent pid, zombie) of every process `/proc` shows.
fn processes() -> Vec<(i32, i32, bool)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
            let state = rest.next()?;
            let ppid = rest.next()?.parse().ok()?;
            Some((pid, ppid, state == "Z"))
        })
        .collect()
}

/// The descendants of `roots` (not the roots themselves), from one snapshot of `/proc`.
fn descendants(procs: &[(i32, i32, bool)], roots: &[i32]) -> Vec<i32> {
    let mut found: Vec<i32> = Vec::new();
    let mut frontier: Vec<i32> = roots.to_vec();
    while let Some(p) = frontier.pop() {
        for &(pid, ppid, _) in procs {
            if ppid == p && !found.contains(&pid) && !roots.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

impl Supervised {
    /// Starts `cmd` (stdio as configured, inherited by default) leading its own process group.
    pub fn spawn(mut cmd: Command) -> Result<Self, BrokerError> {
        cmd.process_group(0);
        Self::start(cmd, false, false, None)
    }

    /// Starts the sandbox helper `cmd`, which leads a session of its own (so its process
    /// group is its pid), and makes this process a child subreaper so that a stop (and the
    /// command's end) kills every process the helper started, including those that left its
    /// process group. With `sole`, every other child of this process is taken for one of the
    /// command's too (`broker run`); without, only the helper's descendants (`broker serve`,
    /// which runs several). `refusal` is where the helper writes why it refused, if it does.
    pub fn spawn_contained(
        cmd: Command,
        sole: bool,
        refusal: Option<crate::refusal::RefusalFile>,
    ) -> Result<Self, BrokerError> {
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| BrokerError::Spawn {
            command: PathBuf::from(cmd.get_program()),
            source: std::io::Error::from(e),
        })?;
        Self::start(cmd, true, sole, refusal)
    }

    fn start(
        mut cmd: Command,
        contained: bool,
        sole: bool,
        refusal: Option<crate::refusal::RefusalFile>,
    ) -> Result<Self, BrokerError> {
        let started = Instant::now();
        // Spawned and registered under one lock: the orphan sweep never sees it unregistered.
        let mut registered = live();
        let child = cmd.spawn().map_err(|source| BrokerError::Spawn {
            command: PathBuf::from(cmd.get_program()),
            source,
        })?;
        let group = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        registered.push(group.as_raw());
        drop(registered);
        let (tx, events) = mpsc::channel();
        let exited = tx.clone();
        std::thread::spawn(move || {
            // Leaves the leader unreaped (WNOWAIT), see the module docs. Whatever the result
            // (an error means there is nothing left to wait for), the supervisor goes on to
            // reap with Child::wait.
            while let Err(nix::errno::Errno::EINTR) =
                waitid(Id::Pid(group), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
            {}
            let _ = exited.send(Event::Exited);
        });
        Ok(Self {
            child,
            group,
            events,
            stopper: Stopper(tx),
            started,
            contained,
            sole,
            refusal,
        })
    }

    /// The process group id (the leader's pid).
    pub fn group(&self) -> i32 {
        self.group.as_raw()
    }

    /// A handle that stops this command.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    fn kill_group(&self) {
        // ESRCH (nobody left in the group) is the expected case after a normal exit.
        let _ = killpg(self.group, Signal::SIGKILL);
        if self.contained {
            self.kill_descendants();
        }
    }

    /// Kills every descendant of the command, and every other child of this process (orphans
    /// of the command reparented here), until none is left; reaps those that were this
    /// process's own (never the leader: its pid is the group id until it is reaped).
    fn kill_descendants(&self) {
        let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
        let leader = self.group.as_raw();
        let roots: &[i32] = if self.sole { &[leader, me] } else { &[leader] };
        // A command forking as fast as it can needs a few rounds; each round kills what it saw.
        for _ in 0..50 {
            let procs = processes();
            let mut targets = descendants(&procs, roots);
            targets.retain(|p| *p != leader);
            let mut alive = 0;
            for &pid in &targets {
                let zombie = procs.iter().any(|&(p, _, z)| p == pid && z);
                if !zombie {
                    alive += 1;
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                let mine = procs.iter().any(|&(p, pp, _)| p == pid && pp == me);
                if mine {
                    let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
                }
            }
            if alive == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Waits until the command ends, or kills its group on the first stop and waits for that.
    pub fn wait(mut self) -> Result<Outcome, BrokerError> {
        let mut stopped = None;
        // The supervisor holds a sender itself, so the channel never disconnects.
        while let Ok(ev) = self.events.recv() {
            match ev {
                Event::Exited => break,
                Event::Stop(reason) => {
                    if stopped.is_none() {
                        self.kill_group();
                        stopped = Some(reason);
                    }
                }
            }
        }
        // The leader is a zombie here, so its group id is still its own: end what is left of
        // the group before reaping.
        self.kill_group();
        let status = self.child.wait();
        live().retain(|p| *p != self.group.as_raw());
        let status = status.map_err(BrokerError::Wait)?;
        let refused = match (&stopped, status.code(), &self.refusal) {
            (None, Some(c), Some(f)) if c == i32::from(EXIT_REFUSED) => f.read(),
            _ => None,
        };
        Ok(Outcome {
            exit_code: status.code(),
            signal: status.signal(),
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            stopped,
            refused,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_follow_the_shell_convention() {
        let o = |exit_code, signal, stopped: Option<StopReason>| Outcome {
            exit_code,
            signal,
            duration_ms: 0,
            stopped,
            refused: None,
        };
        assert_eq!(o(Some(0), None, None).exit_status(), 0);
        assert_eq!(o(Some(3), None, None).exit_status(), 3);
        assert_eq!(o(None, Some(15), None).exit_status(), 143);
        let revoked = StopReason::Revoked {
            detail: "at t".into(),
        };
        assert_eq!(o(None, Some(9), Some(revoked.clone())).exit_status(), 137);
        assert_eq!(
            revoked.to_string(),
            "the capability was revoked (revoked): at t"
        );
    }

    #[test]
    fn a_command_that_ends_on_its_own_reports_its_exit_code() {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", "exit 7"]);
        let out = Supervised::spawn(c).unwrap().wait().unwrap();
        assert_eq!(
            (out.exit_code, out.signal, out.stopped),
            (Some(7), None, None)
        );
    }
}
