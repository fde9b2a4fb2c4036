//! The sandbox a command runs in: its grants as the kernel enforces them.
//!
//! The broker starts a helper (this binary's hidden `broker sandbox-exec`), a single-threaded
//! process that builds the sandbox around itself and then starts the command as its child:
//!
//! 1. **A session of its own** (`setsid`): no controlling terminal; standard input is whatever
//!    the broker gave (`/dev/null` unless the caller asked for its own), no other descriptor
//!    (every descriptor above standard error is marked close-on-exec, whoever opened it), the
//!    working directory `/`, and only the environment the caller listed.
//! 2. **Its own user, mount and PID namespaces** (`unshare`): the command runs as the same
//!    user id, with no capability in the host's namespaces, and is **init of its own PID
//!    namespace**: when it ends, the kernel ends every process it started, and no process of
//!    it can name (let alone signal) the broker or anything outside.
//! 3. **Grants opened as files** ([`crate::paths`]): every grant root, the loader and the
//!    system paths below, opened with `RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`. A link
//!    anywhere refuses the run (126), naming the path.
//! 4. **Nothing written or read as data runs as code**: every read and write grant is
//!    bind-mounted onto itself `noexec,nosuid,nodev` from its descriptor (`open_tree` +
//!    `move_mount`, then a remount of the new mount and the mounts below it), which stops
//!    `execve`, the dynamic loader (`ld.so FILE`) and `mmap(PROT_EXEC)` alike. What must stay
//!    executable below such a grant (an exec grant, the system library folders, the loader)
//!    is bind-mounted back from its original mount. A write grant that covers an exec grant,
//!    the loader or a system library folder is refused.
//! 5. **Landlock** (the ABI nono detects, capped where nono caps it; rules made from the
//!    descriptors of step 3 through the `landlock` crate nono is built on, since nono's own
//!    rule set reopens paths by name): read grants read, write grants write, exec grants and
//!    the loader read and execute, the system paths read, `/dev/null` read and write; TCP
//!    bind and connect denied unless `net`; from ABI 6 signals and abstract unix sockets
//!    scoped to the sandbox. Below ABI 6 the run is refused unless the operator allowed it
//!    (`unscoped`), and that is recorded on the execution record.
//! 6. The command starts (`execve` checked by Landlock: it must be exec-granted), the helper
//!    waits and leaves with the command's status (its exit code, or the signal that ended it).
//!
//! Under [`SandboxKind::Process`] only step 1 and 6 happen: no namespaces, no Landlock.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, Ruleset, RulesetAttr,
    RulesetCreatedAttr, Scope, ABI,
};
use rustix::mount::{MountFlags, MoveMountFlags, OpenTreeFlags};
use zt_core::capability::{covers, Grants, SandboxKind};

use crate::error::BrokerError;
use crate::paths::{self, GrantPathError};

/// Readable, and mappable as code, in every sandbox: where the shared libraries of every
/// dynamically linked program live. Not executable (`execve`) unless an exec grant says so,
/// but the loader can start an ELF program found here (see `docs/capabilities.md`).
pub const SYSTEM_LIBS: &[&str] = &["/lib", "/lib64", "/usr/lib", "/usr/lib64"];

/// Readable in every sandbox: how the loader finds libraries, and `/dev/urandom`, which C and
/// language runtimes open at start. `/proc` is not in the list.
pub const SYSTEM_READ: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/dev/urandom",
];

/// Readable and writable in every sandbox: `/dev/null` (shells redirect to it).
pub const SYSTEM_READ_WRITE: &[&str] = &["/dev/null"];

/// The standard ELF interpreter of the architecture this binary was built for.
pub const STANDARD_LOADER: Option<&str> = if cfg!(target_arch = "x86_64") {
    Some("/lib64/ld-linux-x86-64.so.2")
} else if cfg!(target_arch = "aarch64") {
    Some("/lib/ld-linux-aarch64.so.1")
} else if cfg!(target_arch = "riscv64") {
    Some("/lib/ld-linux-riscv64-lp64d.so.1")
} else {
    None
};

/// At most this Landlock ABI (`u32::MAX`: no cap), see [`cap_abi`].
static ABI_CAP: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);

/// Lowers the Landlock ABI this process uses to at most `n`, never raising it: how a broker
/// behaves on an older kernel, shown on this one (`ZT_BROKER_LANDLOCK_ABI_CAP`, for tests).
/// The ABI used is what every report records.
pub fn cap_abi(n: u32) {
    ABI_CAP.store(n, std::sync::atomic::Ordering::Relaxed);
}

/// The cap set with [`cap_abi`], if any.
pub fn abi_cap() -> Option<u32> {
    Some(ABI_CAP.load(std::sync::atomic::Ordering::Relaxed)).filter(|n| *n != u32::MAX)
}

/// The Landlock ABI this kernel offers, as nono detects it and capped where nono enforces
/// (and by [`cap_abi`]).
pub fn landlock_abi() -> Result<ABI, BrokerError> {
    let detected = nono::Sandbox::detect_abi().map_err(|e| BrokerError::LandlockUnavailable {
        details: format!("{e}; {}", nono::Sandbox::support_info().details),
    })?;
    let abi = detected.enforced_abi();
    Ok(match abi_cap() {
        Some(cap) if cap < abi_number(abi) => ABI::from(i32::try_from(cap).unwrap_or(0)),
        _ => abi,
    })
}

/// The ABI's number (`V6` is 6).
pub fn abi_number(abi: ABI) -> u32 {
    abi as u32
}

/// Checks that Landlock can enforce these grants: ABI 3 (truncation, and execution for every
/// program), 4 to block TCP (unless `net` is granted), 6 for the signal and socket scopes
/// unless the operator allowed running without (`unscoped`). Refuses otherwise: a command is
/// never run with less confinement than its grants and the operator say.
pub fn check_landlock(net: bool, unscoped: bool) -> Result<ABI, BrokerError> {
    let abi = landlock_abi()?;
    let n = abi_number(abi);
    let need = |needed: u8, what: &'static str| {
        if n < u32::from(needed) {
            Err(BrokerError::LandlockTooOld {
                found: n,
                needed,
                what,
            })
        } else {
            Ok(())
        }
    };
    if n == 0 {
        return Err(BrokerError::LandlockUnavailable {
            details: "no Landlock ABI is usable".into(),
        });
    }
    need(3, "restrict truncation and execution")?;
    if !net {
        need(4, "block the network")?;
    }
    if !unscoped {
        need(
            6,
            "keep signals and abstract sockets inside the sandbox (an operator may allow an older kernel with --allow-unscoped-landlock, and the execution record says so)",
        )?;
    }
    Ok(abi)
}

/// What one opened path is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Uses {
    read: bool,
    write: bool,
    /// `execve`-able (exec grants, the loader).
    exec: bool,
    /// Mappable as code: exec grants, the loader, the system library folders.
    code: bool,
    /// A read or write grant: mounted `noexec` unless it is also code.
    data: bool,
}

/// One path of the sandbox, opened.
#[derive(Debug)]
struct Opened {
    path: PathBuf,
    fd: OwnedFd,
    dir: bool,
    dev_ino: (u64, u64),
    uses: Uses,
}

/// The sandbox's paths, opened without links, and what each is for.
#[derive(Debug)]
pub struct Plan {
    opened: Vec<Opened>,
    net: bool,
}

fn dev_ino(fd: impl AsFd) -> Result<(u64, u64, bool), std::io::Error> {
    let st = rustix::fs::fstat(fd)?;
    let dir = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory;
    Ok((st.st_dev, st.st_ino, dir))
}

fn io_step(step: &'static str) -> impl FnOnce(std::io::Error) -> BrokerError {
    move |source| BrokerError::Isolate { step, source }
}

fn errno_step(step: &'static str) -> impl FnOnce(rustix::io::Errno) -> BrokerError {
    move |e| BrokerError::Isolate {
        step,
        source: std::io::Error::from(e),
    }
}

impl Plan {
    /// Opens every grant (refusing links), the command's loader and the system paths (their
    /// canonical form: the broker's own layout, e.g. Debian's `/lib -> usr/lib`), and checks
    /// that no write grant covers code.
    pub fn open(grants: &Grants, command: &Path) -> Result<Self, BrokerError> {
        let mut paths: BTreeMap<PathBuf, (Uses, &'static str)> = BTreeMap::new();
        let mut add = |p: PathBuf, f: &dyn Fn(&mut Uses), what: &'static str| {
            let e = paths.entry(p).or_insert((Uses::default(), what));
            f(&mut e.0);
        };
        for p in &grants.read {
            add(
                p.into(),
                &|u| {
                    u.read = true;
                    u.data = true;
                },
                "read",
            );
        }
        for p in &grants.write {
            add(
                p.into(),
                &|u| {
                    u.write = true;
                    u.data = true;
                },
                "write",
            );
        }
        for p in &grants.exec {
            add(
                p.into(),
                &|u| {
                    u.read = true;
                    u.exec = true;
                    u.code = true;
                },
                "exec",
            );
        }
        let system = |list: &[&str]| -> Vec<PathBuf> {
            list.iter()
                .filter_map(|p| std::fs::canonicalize(p).ok())
                .collect()
        };
        for p in system(SYSTEM_LIBS) {
            add(
                p,
                &|u| {
                    u.read = true;
                    u.code = true;
                },
                "system",
            );
        }
        for p in loaders(command) {
            add(
                p,
                &|u| {
                    u.read = true;
                    u.exec = true;
                    u.code = true;
                },
                "system",
            );
        }
        for p in system(SYSTEM_READ) {
            add(p, &|u| u.read = true, "system");
        }
        for p in system(SYSTEM_READ_WRITE) {
            add(
                p,
                &|u| {
                    u.read = true;
                    u.write = true;
                },
                "system",
            );
        }
        // Whatever can be mapped as code is never below (or at) a write grant.
        for (code, _) in paths.iter().filter(|(_, (u, _))| u.code) {
            for w in &grants.write {
                let (c, w) = (code.display().to_string(), w.as_str());
                if covers(w, &c) || covers(&c, w) {
                    return Err(BrokerError::WriteCoversCode {
                        write: w.to_owned(),
                        code: c,
                    });
                }
            }
        }
        let mut opened = Vec::with_capacity(paths.len());
        for (path, (uses, what)) in paths {
            let text = path.display().to_string();
            let fd = paths::open_grant(what, &text).map_err(BrokerError::GrantPath)?;
            let (dev, ino, dir) = dev_ino(&fd).map_err(|e| {
                BrokerError::GrantPath(GrantPathError {
                    access: what,
                    path: text.clone(),
                    problem: paths::PathProblem::Io(e),
                })
            })?;
            opened.push(Opened {
                path,
                fd,
                dir,
                dev_ino: (dev, ino),
                uses,
            });
        }
        Ok(Self {
            opened,
            net: grants.net,
        })
    }

    /// Bind-mounts every data grant onto itself `noexec,nosuid,nodev`, and what is code below
    /// one back from its original mount, shallowest first. Needs a private mount namespace.
    pub fn mount_noexec(&self) -> Result<(), BrokerError> {
        let data: Vec<&Opened> = self
            .opened
            .iter()
            .filter(|o| o.uses.data && !o.uses.code)
            .collect();
        let under_data = |o: &Opened| {
            let p = o.path.display().to_string();
            data.iter()
                .any(|d| d.path != o.path && covers(&d.path.display().to_string(), &p))
        };
        let mut todo: Vec<&Opened> = self
            .opened
            .iter()
            .filter(|o| (o.uses.data && !o.uses.code) || (o.uses.code && under_data(o)))
            .collect();
        todo.sort_by_key(|o| o.path.components().count());
        for o in todo {
            let tree = rustix::mount::open_tree(
                &o.fd,
                "",
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::AT_RECURSIVE
                    | OpenTreeFlags::AT_EMPTY_PATH
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC,
            )
            .map_err(errno_step("cloning a grant's mount"))?;
            // The target as the mounts so far show it, and still the same file.
            let target = paths::open_no_links(&o.path).map_err(|problem| {
                BrokerError::GrantPath(GrantPathError {
                    access: "mount",
                    path: o.path.display().to_string(),
                    problem,
                })
            })?;
            let (dev, ino, _) = dev_ino(&target).map_err(io_step("checking a mount target"))?;
            if (dev, ino) != o.dev_ino {
                return Err(BrokerError::Swapped {
                    path: o.path.display().to_string(),
                });
            }
            rustix::mount::move_mount(
                &tree,
                "",
                &target,
                "",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .map_err(errno_step("mounting a grant"))?;
            if o.uses.data && !o.uses.code {
                remount_noexec(&tree, &o.path)?;
            }
        }
        // What the command will reach at each data grant is a noexec mount, whatever the
        // mounts above did (a mount over `/` is not where lookups start, say): checked, not
        // assumed.
        for o in &data {
            let now = paths::open_no_links(&o.path).map_err(|problem| {
                BrokerError::GrantPath(GrantPathError {
                    access: "mount",
                    path: o.path.display().to_string(),
                    problem,
                })
            })?;
            let st = rustix::fs::fstatvfs(&now).map_err(errno_step("checking a grant's mount"))?;
            if !st.f_flag.contains(rustix::fs::StatVfsMountFlags::NOEXEC) {
                return Err(BrokerError::NotNoexec {
                    path: o.path.display().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Confines the calling thread (and what it starts) with Landlock.
    pub fn landlock(&self, abi: ABI) -> Result<(), BrokerError> {
        let err = |step: &'static str| {
            move |e: landlock::RulesetError| BrokerError::Landlock {
                step,
                details: e.to_string(),
            }
        };
        let all = AccessFs::from_all(abi);
        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(all)
            .map_err(err("handling file access"))?;
        if !self.net {
            ruleset = ruleset
                .handle_access(AccessNet::from_all(abi))
                .map_err(err("handling TCP"))?;
        }
        if abi_number(abi) >= 6 {
            ruleset = ruleset
                .scope(Scope::from_all(abi))
                .map_err(err("scoping signals and sockets"))?;
        }
        let mut created = ruleset.create().map_err(err("creating the ruleset"))?;
        let write = AccessFs::WriteFile
            | AccessFs::RemoveDir
            | AccessFs::RemoveFile
            | AccessFs::MakeDir
            | AccessFs::MakeReg
            | AccessFs::MakeSock
            | AccessFs::MakeFifo
            | AccessFs::MakeSym
            | AccessFs::Refer
            | AccessFs::Truncate;
        for o in &self.opened {
            let mut access = landlock::BitFlags::<AccessFs>::empty();
            if o.uses.read {
                access |= AccessFs::ReadFile | AccessFs::ReadDir;
            }
            if o.uses.write {
                access |= write;
            }
            if o.uses.exec {
                access |= AccessFs::Execute;
            }
            access &= all;
            if !o.dir {
                access &= AccessFs::from_file(abi);
            }
            if access.is_empty() {
                continue;
            }
            created = created
                .add_rule(PathBeneath::new(o.fd.as_fd(), access))
                .map_err(err("adding a rule"))?;
        }
        created.restrict_self().map_err(err("restricting"))?;
        Ok(())
    }
}

/// Remounts the mount `tree` (at `path`) and every mount below it `noexec,nosuid,nodev`,
/// keeping the flags they have (a user namespace may not clear a locked one).
fn remount_noexec(tree: &OwnedFd, path: &Path) -> Result<(), BrokerError> {
    use std::os::fd::AsRawFd;
    let top = PathBuf::from(format!("/proc/self/fd/{}", tree.as_raw_fd()));
    let mut targets = vec![top];
    let below = submounts(path).map_err(io_step("reading /proc/self/mountinfo"))?;
    targets.extend(below);
    for t in targets {
        let st = rustix::fs::statvfs(&t).map_err(errno_step("reading a mount's flags"))?;
        let have = st.f_flag;
        use rustix::fs::StatVfsMountFlags as F;
        let mut flags =
            MountFlags::BIND | MountFlags::NOEXEC | MountFlags::NOSUID | MountFlags::NODEV;
        for (f, m) in [
            (F::RDONLY, MountFlags::RDONLY),
            (F::NOATIME, MountFlags::NOATIME),
            (F::NODIRATIME, MountFlags::NODIRATIME),
            (F::RELATIME, MountFlags::RELATIME),
        ] {
            if have.contains(f) {
                flags |= m;
            }
        }
        rustix::mount::mount_remount(&t, flags, "").map_err(errno_step("remounting noexec"))?;
    }
    Ok(())
}

/// Mount points strictly below `path` in this mount namespace.
fn submounts(path: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let prefix = path.display().to_string();
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| *m != prefix && covers(&prefix, m))
        .map(PathBuf::from)
        .collect())
}

/// `\040` and friends back to bytes.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let n = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
            out.push(u8::try_from(n).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Private user, mount and PID namespaces for the calling (single-threaded) process: the same
/// user and group ids inside as outside, every mount private. The next child this process
/// starts is init of the new PID namespace.
pub fn isolate() -> Result<(), BrokerError> {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    use nix::sched::CloneFlags;
    nix::sched::unshare(
        CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID,
    )
    .map_err(|e| BrokerError::Isolate {
        step: "unsharing user, mount and PID namespaces (unprivileged user namespaces disabled?)",
        source: std::io::Error::from(e),
    })?;
    std::fs::write("/proc/self/setgroups", "deny").map_err(io_step("writing setgroups"))?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))
        .map_err(io_step("writing uid_map"))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))
        .map_err(io_step("writing gid_map"))?;
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .map_err(errno_step("making mounts private"))?;
    Ok(())
}

/// Finds the command: a name with a `/` as a path, anything else in `PATH` (as a shell
/// would; `PATH` of the command's environment, else `/usr/local/bin:/usr/bin:/bin`), then
/// canonical.
pub fn resolve_command(argv0: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, BrokerError> {
    let not_found = || BrokerError::CommandNotFound {
        command: argv0.to_string_lossy().into_owned(),
    };
    if argv0.is_empty() {
        return Err(BrokerError::EmptyCommand);
    }
    let as_path = Path::new(argv0);
    let found = if argv0.as_encoded_bytes().contains(&b'/') {
        Some(as_path.to_path_buf())
    } else {
        let path = path_var.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
        std::env::split_paths(path)
            .map(|d| d.join(as_path))
            .find(|c| {
                std::fs::metadata(c)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    };
    std::fs::canonicalize(found.ok_or_else(not_found)?).map_err(|_| not_found())
}

/// The ELF interpreter an executable names (`PT_INTERP`), if it is an ELF file that names
/// one. Reads at most the headers and the interpreter string.
pub fn elf_interpreter(path: &Path) -> Option<PathBuf> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = [0u8; 64];
    f.read_exact(&mut head).ok()?;
    if head[..4] != *b"\x7fELF" {
        return None;
    }
    let is64 = match head[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let le = match head[5] {
        1 => true,
        2 => false,
        _ => return None,
    };
    let uint = |b: &[u8]| -> u64 {
        let mut v = 0u64;
        for (i, byte) in b.iter().enumerate() {
            let shift = if le { i } else { b.len() - 1 - i } * 8;
            v |= u64::from(*byte) << shift;
        }
        v
    };
    let (phoff, phentsize, phnum) = if is64 {
        (
            uint(&head[32..40]),
            uint(&head[54..56]),
            uint(&head[56..58]),
        )
    } else {
        (
            uint(&head[28..32]),
            uint(&head[42..44]),
            uint(&head[44..46]),
        )
    };
    if phnum > 256 || phentsize < if is64 { 56 } else { 32 } || phentsize > 256 {
        return None;
    }
    let mut table = vec![0u8; usize::try_from(phentsize * phnum).ok()?];
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(phoff)).ok()?;
    f.read_exact(&mut table).ok()?;
    let entry_size = usize::try_from(phentsize).ok()?;
    for ph in table.chunks_exact(entry_size) {
        const PT_INTERP: u64 = 3;
        if uint(&ph[0..4]) != PT_INTERP {
            continue;
        }
        let (offset, size) = if is64 {
            (uint(&ph[8..16]), uint(&ph[32..40]))
        } else {
            (uint(&ph[4..8]), uint(&ph[16..20]))
        };
        if size == 0 || size > 4096 {
            return None;
        }
        let mut name = vec![0u8; usize::try_from(size).ok()?];
        f.seek(std::io::SeekFrom::Start(offset)).ok()?;
        f.read_exact(&mut name).ok()?;
        let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
        name.truncate(end);
        return Some(PathBuf::from(OsString::from(String::from_utf8(name).ok()?)));
    }
    None
}

/// What execution needs besides the `exec` grants: the architecture's standard loader (for
/// every dynamically linked program the command starts) and the command's own ELF interpreter
/// when it names one inside the system library folders, canonical, those that exist. An
/// interpreter anywhere else (a `PT_INTERP` the command's author chose) is not trusted: it
/// must be exec-granted like any other program.
pub fn loaders(command: &Path) -> Vec<PathBuf> {
    let libs: Vec<PathBuf> = SYSTEM_LIBS
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    let mut out: Vec<PathBuf> = elf_interpreter(command)
        .into_iter()
        .chain(STANDARD_LOADER.map(PathBuf::from))
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .filter(|p| libs.iter().any(|l| p.starts_with(l)))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The checks before anything starts: Landlock is usable (for [`SandboxKind::Nono`]), the
/// command is exec-granted. The resolved command back.
pub fn prepare(
    grants: &Grants,
    argv: &[OsString],
    path_var: Option<&OsStr>,
    unscoped: bool,
) -> Result<(Option<ABI>, PathBuf), BrokerError> {
    let abi = match grants.sandbox {
        SandboxKind::Nono => Some(check_landlock(grants.net, unscoped)?),
        SandboxKind::Process => None,
    };
    let argv0 = argv.first().ok_or(BrokerError::EmptyCommand)?;
    let command = resolve_command(argv0, path_var)?;
    let text = command.display().to_string();
    if !grants.exec.iter().any(|g| covers(g, &text)) {
        return Err(BrokerError::NotExecGranted {
            command,
            grants: if grants.exec.is_empty() {
                "none".into()
            } else {
                grants.exec.join(", ")
            },
        });
    }
    Ok((abi, command))
}

/// Marks every descriptor this process holds above standard error close-on-exec: whatever the
/// broker was started with (a launcher's pipe, a jobserver) never reaches the command.
pub fn close_inherited() -> Result<(), BrokerError> {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(io_step("listing /proc/self/fd"))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        use nix_rawfd::fcntl::{fcntl, FcntlArg, FdFlag};
        // EBADF: the listing's own descriptor, closed since.
        if let Err(e) = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)) {
            if e != nix_rawfd::errno::Errno::EBADF {
                return Err(BrokerError::Isolate {
                    step: "marking inherited descriptors close-on-exec",
                    source: std::io::Error::from_raw_os_error(e as i32),
                });
            }
        }
    }
    Ok(())
}

/// The helper's work (see the module docs): confine, start the command as init of its own PID
/// namespace, wait. The command's status back; `Err` when it never started.
pub fn run_sandboxed(
    grants: &Grants,
    argv: &[OsString],
    unscoped: bool,
) -> Result<std::process::ExitStatus, BrokerError> {
    close_inherited()?;
    let path_var = std::env::var_os("PATH");
    let (abi, command) = prepare(grants, argv, path_var.as_deref(), unscoped)?;
    nix::unistd::setsid().map_err(|e| BrokerError::Isolate {
        step: "starting a session of its own",
        source: std::io::Error::from(e),
    })?;
    if let Some(abi) = abi {
        isolate()?;
        let plan = Plan::open(grants, &command)?;
        plan.mount_noexec()?;
        plan.landlock(abi)?;
    }
    let mut cmd = std::process::Command::new(&command);
    if let Some(argv0) = argv.first() {
        cmd.arg0(argv0);
    }
    // Not the broker's working directory: nothing of where it was started.
    cmd.args(&argv[1..]).current_dir("/");
    let mut child = cmd.spawn().map_err(|source| BrokerError::Exec {
        command: command.clone(),
        source,
    })?;
    child.wait().map_err(BrokerError::Wait)
}

/// Leaves the process with `status`: its exit code, or the signal that ended it raised on
/// this process (no core file).
pub fn exit_like(status: std::process::ExitStatus) -> ! {
    if let Some(sig) = status.signal() {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
        // The helper changed no disposition (Rust's runtime ignores SIGPIPE: that one falls
        // through to the exit code below).
        if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
            let _ = nix::sys::signal::raise(s);
        }
        std::process::exit(128 + (sig & 0x7f));
    }
    std::process::exit(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_resolve_through_path_and_symlinks_and_must_be_exec_granted() {
        let sh = Path::new("/bin/sh").canonicalize().unwrap();
        assert_eq!(resolve_command(OsStr::new("/bin/sh"), None).unwrap(), sh);
        assert!(resolve_command(OsStr::new("sh"), None).is_ok());
        assert!(matches!(
            resolve_command(OsStr::new("zt-no-such-command"), None),
            Err(BrokerError::CommandNotFound { .. })
        ));
        let g = Grants {
            exec: vec![sh.display().to_string()],
            sandbox: SandboxKind::Process,
            ..Grants::default()
        };
        assert!(prepare(&g, &["/bin/sh".into()], None, false).is_ok());
        let e = prepare(&g, &["/bin/cat".into()], None, false).err();
        assert!(
            matches!(&e, Some(BrokerError::NotExecGranted { command, .. }) if command.ends_with("cat")),
            "{e:?}"
        );
        assert!(matches!(
            prepare(&g, &[], None, false),
            Err(BrokerError::EmptyCommand)
        ));
    }

    #[test]
    fn the_loader_of_a_dynamic_executable_is_found_and_a_script_has_none() {
        let sh = Path::new("/bin/sh").canonicalize().unwrap();
        let interp = elf_interpreter(&sh);
        if let Some(std) = STANDARD_LOADER {
            assert_eq!(interp.as_deref(), Some(Path::new(std)));
            assert!(loaders(&sh).contains(&Path::new(std).canonicalize().unwrap()));
        }
        let d = tempfile::tempdir().unwrap();
        let script = d.path().join("s");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(elf_interpreter(&script), None);
    }

    #[test]
    fn a_write_grant_over_code_is_refused_before_anything_is_opened() {
        let g = Grants {
            write: vec!["/usr".into()],
            ..Grants::default()
        };
        let e = Plan::open(&g, Path::new("/usr/bin/true")).err();
        assert!(
            matches!(&e, Some(BrokerError::WriteCoversCode { write, .. }) if write == "/usr"),
            "{e:?}"
        );
    }

    #[test]
    fn mountinfo_escapes_are_read_back() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
