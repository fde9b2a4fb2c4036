//! Grants to a Landlock sandbox (through nono), applied to the current process, which then
//! executes the command.
//!
//! Two Landlock layers, stacked (the effective right is what every layer allows):
//!
//! 1. nono's ruleset: the `read` grants (`AccessMode::Read`), the `write` grants
//!    (`AccessMode::Write`; a path in both gets `ReadWrite`), the `exec` grants readable, and
//!    [`SYSTEM_READ`] / [`SYSTEM_READ_WRITE`]; TCP bind and connect denied unless `net`.
//!    nono's `Read` includes Landlock's `Execute`, so this layer alone would let the command
//!    execute anything it can read;
//! 2. [`nono::Sandbox::restrict_execute`]: `Execute` only on the `exec` grants and the ELF
//!    loader ([`loaders`]).
//!
//! Landlock only (`apply_landlock`, never `apply_auto`): [`check_landlock`] refuses a kernel
//! where nono would fall back to seccomp for the network (ABI < 4), so the same grants are
//! enforced by one mechanism, the one `docs/capabilities.md` describes, on every kernel that
//! runs them at all.
//!
//! Landlock binds the thread that calls `landlock_restrict_self` and what it executes or
//! starts afterwards. [`exec_sandboxed`] is meant for a process whose only thread does the
//! work (the CLI's hidden `broker sandbox-exec`, which starts no runtime); `execve` ends every
//! other thread anyway.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use nono::{AccessMode, CapabilitySet};
use zt_core::capability::{Access, Grants};

use crate::error::BrokerError;

/// How a command is confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sandbox {
    /// Landlock through nono: the grants, and nothing else but [`SYSTEM_READ`].
    Nono,
    /// No sandbox: the command runs as a plain child process (the grants are recorded and its
    /// command must still be exec-granted, but nothing in the kernel holds it to them).
    Process,
}

impl Sandbox {
    /// `nono` or `process` (the evidence's `sandbox` member).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nono => "nono",
            Self::Process => "process",
        }
    }
}

impl std::str::FromStr for Sandbox {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "nono" => Ok(Self::Nono),
            "process" => Ok(Self::Process),
            other => Err(format!("unknown sandbox {other:?} (nono or process)")),
        }
    }
}

/// Readable in every sandbox besides the grants, when they exist: the dynamic loader's
/// libraries and configuration, so that a dynamically linked command can start, and
/// `/dev/urandom`, which C and language runtimes open at start. Nothing here is executable
/// unless an `exec` grant says so (the loader itself is made executable, see [`loaders`]).
/// `/proc` is not in the list: a command that needs `/proc/self` must be granted it.
pub const SYSTEM_READ: &[&str] = &[
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
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

/// Checks that Landlock can enforce these grants: ABI 3 to restrict execution (always), 4
/// to block TCP (unless `net` is granted). Refuses otherwise: a command is never run with
/// less confinement than its grants say.
pub fn check_landlock(net: bool) -> Result<nono::sandbox::DetectedAbi, BrokerError> {
    let abi = nono::Sandbox::detect_abi().map_err(|e| BrokerError::LandlockUnavailable {
        details: format!("{e}; {}", nono::Sandbox::support_info().details),
    })?;
    if !abi.has_execute() {
        return Err(BrokerError::LandlockTooOld {
            found: abi.version_string(),
            needed: 3,
            what: "restrict execution",
        });
    }
    if !net && !abi.has_network() {
        return Err(BrokerError::LandlockTooOld {
            found: abi.version_string(),
            needed: 4,
            what: "block the network",
        });
    }
    Ok(abi)
}

/// What one path may be used for, in the first layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read (and, in this layer, execute).
    Read,
    /// Write.
    Write,
    /// Both.
    ReadWrite,
}

impl Mode {
    fn with(self, other: Mode) -> Mode {
        if self == other {
            self
        } else {
            Mode::ReadWrite
        }
    }

    fn nono(self) -> AccessMode {
        match self {
            Mode::Read => AccessMode::Read,
            Mode::Write => AccessMode::Write,
            Mode::ReadWrite => AccessMode::ReadWrite,
        }
    }
}

/// The grants resolved: canonical paths (symlinks followed), each with its mode, the
/// executable paths, and the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// First layer: path, whether it is a folder, mode.
    pub paths: BTreeMap<PathBuf, (bool, Mode)>,
    /// Second layer: `exec` grants (canonical).
    pub exec: Vec<PathBuf>,
    /// TCP allowed.
    pub net: bool,
}

fn resolve_grant(access: Access, path: &str) -> Result<PathBuf, BrokerError> {
    std::fs::canonicalize(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            BrokerError::GrantPathMissing {
                access,
                path: path.to_owned(),
            }
        } else {
            BrokerError::GrantPath {
                access,
                path: path.to_owned(),
                source,
            }
        }
    })
}

impl Plan {
    /// Resolves `grants`. A granted path that does not exist is an error naming it; a system
    /// path that does not exist is skipped.
    pub fn new(grants: &Grants) -> Result<Self, BrokerError> {
        let mut paths: BTreeMap<PathBuf, (bool, Mode)> = BTreeMap::new();
        let mut add = |p: PathBuf, mode: Mode| {
            let dir = p.is_dir();
            paths
                .entry(p)
                .and_modify(|(_, m)| *m = m.with(mode))
                .or_insert((dir, mode));
        };
        for (access, mode) in [
            (Access::Read, Mode::Read),
            (Access::Write, Mode::Write),
            (Access::Exec, Mode::Read),
        ] {
            for p in grants.paths(access) {
                add(resolve_grant(access, p)?, mode);
            }
        }
        for (list, mode) in [
            (SYSTEM_READ, Mode::Read),
            (SYSTEM_READ_WRITE, Mode::ReadWrite),
        ] {
            for p in list {
                if let Ok(c) = std::fs::canonicalize(p) {
                    add(c, mode);
                }
            }
        }
        let mut exec = grants
            .exec
            .iter()
            .map(|p| resolve_grant(Access::Exec, p))
            .collect::<Result<Vec<_>, _>>()?;
        exec.sort();
        exec.dedup();
        Ok(Self {
            paths,
            exec,
            net: grants.net,
        })
    }

    /// Whether an `exec` grant covers `command` (canonical), component-wise.
    pub fn allows_exec(&self, command: &Path) -> bool {
        self.exec.iter().any(|g| command.starts_with(g))
    }

    /// nono's first layer.
    pub fn capability_set(&self) -> Result<CapabilitySet, BrokerError> {
        let mut caps = CapabilitySet::new();
        for (p, (dir, mode)) in &self.paths {
            let r = if *dir {
                caps.allow_path(p, mode.nono())
            } else {
                caps.allow_file(p, mode.nono())
            };
            caps = r.map_err(|source| BrokerError::Sandbox {
                step: "building the ruleset",
                source,
            })?;
        }
        Ok(if self.net { caps } else { caps.block_network() })
    }
}

/// Finds the command: a name with a `/` as a path, anything else in `PATH` (as a shell
/// would), then canonical.
pub fn resolve_command(argv0: &OsStr) -> Result<PathBuf, BrokerError> {
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
        let path =
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        std::env::split_paths(&path)
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

/// What execution needs besides the `exec` grants: the command's ELF interpreter and the
/// architecture's standard loader (for the programs the command starts), canonical, those
/// that exist. The kernel opens the interpreter for execution, so without it no dynamically
/// linked program starts; its libraries are only mapped, which needs read, not execute.
pub fn loaders(command: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = elf_interpreter(command)
        .into_iter()
        .chain(STANDARD_LOADER.map(PathBuf::from))
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Everything checked before a command starts: Landlock is usable (for [`Sandbox::Nono`]),
/// every granted path exists, the command is exec-granted. The resolved command back.
pub fn prepare(
    sandbox: Sandbox,
    grants: &Grants,
    argv: &[OsString],
) -> Result<(Plan, PathBuf), BrokerError> {
    if sandbox == Sandbox::Nono {
        check_landlock(grants.net)?;
    }
    let plan = Plan::new(grants)?;
    let argv0 = argv.first().ok_or(BrokerError::EmptyCommand)?;
    let command = resolve_command(argv0)?;
    if !plan.allows_exec(&command) {
        return Err(BrokerError::NotExecGranted {
            command,
            grants: if grants.exec.is_empty() {
                "none".into()
            } else {
                grants.exec.join(", ")
            },
        });
    }
    Ok((plan, command))
}

/// Confines the current process to `grants` (both layers) and executes `argv` in it. Returns
/// only on failure; the command is never started unconfined.
pub fn exec_sandboxed(grants: &Grants, argv: &[OsString]) -> Result<Infallible, BrokerError> {
    let (plan, command) = prepare(Sandbox::Nono, grants, argv)?;
    let caps = plan.capability_set()?;
    let mut executable = plan.exec.clone();
    executable.extend(loaders(&command));
    nono::Sandbox::apply_landlock(&caps).map_err(|source| BrokerError::Sandbox {
        step: "applying the ruleset",
        source,
    })?;
    nono::Sandbox::restrict_execute(&executable).map_err(|source| BrokerError::Sandbox {
        step: "restricting execution",
        source,
    })?;
    let mut cmd = std::process::Command::new(&command);
    if let Some(argv0) = argv.first() {
        cmd.arg0(argv0);
    }
    let source = cmd.args(&argv[1..]).exec();
    Err(BrokerError::Exec { command, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(read: &[&Path], write: &[&Path], exec: &[&str], net: bool) -> Grants {
        let s = |l: &[&Path]| l.iter().map(|p| p.display().to_string()).collect();
        Grants {
            read: s(read),
            write: s(write),
            exec: exec.iter().map(|p| (*p).to_owned()).collect(),
            net,
        }
    }

    #[test]
    fn read_and_write_on_one_path_make_read_write_and_exec_grants_are_readable() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::write(&b, "x").unwrap();
        let plan = Plan::new(&grants(&[&a, &b], &[&a], &["/bin/sh"], false)).unwrap();
        let a = a.canonicalize().unwrap();
        let b = b.canonicalize().unwrap();
        assert_eq!(plan.paths.get(&a), Some(&(true, Mode::ReadWrite)));
        assert_eq!(plan.paths.get(&b), Some(&(false, Mode::Read)));
        let sh = Path::new("/bin/sh").canonicalize().unwrap();
        assert_eq!(plan.paths.get(&sh), Some(&(false, Mode::Read)));
        assert_eq!(plan.exec, vec![sh.clone()]);
        assert!(plan.allows_exec(&sh));
        assert!(!plan.allows_exec(Path::new("/usr/bin/env")));
        assert!(!plan.net);
        // the system list is there, canonical, /dev/null writable
        let null = Path::new("/dev/null");
        assert_eq!(plan.paths.get(null), Some(&(false, Mode::ReadWrite)));
        let lib = Path::new("/usr/lib").canonicalize().unwrap();
        assert_eq!(plan.paths.get(&lib), Some(&(true, Mode::Read)));
    }

    #[test]
    fn a_granted_path_that_does_not_exist_is_an_error_naming_it() {
        let e = Plan::new(&grants(&[Path::new("/nonexistent/zt-x")], &[], &[], false));
        let e = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.contains("`read` path /nonexistent/zt-x does not exist"),
            "{e}"
        );
        let e = Plan::new(&grants(&[], &[], &["/nonexistent/bin"], false));
        assert!(matches!(
            e,
            Err(BrokerError::GrantPathMissing {
                access: Access::Exec,
                ..
            })
        ));
    }

    #[test]
    fn a_folder_grant_covers_below_it_component_wise() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::create_dir(d.path().join("bin2")).unwrap();
        let plan = Plan::new(&grants(&[], &[], &[bin.to_str().unwrap()], false)).unwrap();
        let bin = bin.canonicalize().unwrap();
        assert!(plan.allows_exec(&bin.join("tool")));
        let bin2 = d.path().canonicalize().unwrap().join("bin2/tool");
        assert!(!plan.allows_exec(&bin2));
    }

    #[test]
    fn commands_resolve_through_path_and_symlinks_and_must_be_exec_granted() {
        let sh = Path::new("/bin/sh").canonicalize().unwrap();
        assert_eq!(resolve_command(OsStr::new("/bin/sh")).unwrap(), sh);
        assert!(resolve_command(OsStr::new("sh")).is_ok());
        assert!(matches!(
            resolve_command(OsStr::new("zt-no-such-command")),
            Err(BrokerError::CommandNotFound { .. })
        ));
        let g = grants(&[], &[], &["/bin/sh"], true);
        assert!(prepare(Sandbox::Process, &g, &["/bin/sh".into()]).is_ok());
        let e = prepare(Sandbox::Process, &g, &["/bin/cat".into()]).err();
        assert!(
            matches!(&e, Some(BrokerError::NotExecGranted { command, .. }) if command.ends_with("cat")),
            "{e:?}"
        );
        assert!(matches!(
            prepare(Sandbox::Process, &g, &[]),
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
    fn sandbox_names_round_trip() {
        for s in [Sandbox::Nono, Sandbox::Process] {
            assert_eq!(s.as_str().parse::<Sandbox>(), Ok(s));
        }
        assert!("seccomp".parse::<Sandbox>().is_err());
    }
}
