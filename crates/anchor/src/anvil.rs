//! A local chain node for the demo, the benchmarks and the chain tests: `anvil` (Foundry), on
//! 127.0.0.1 with Base Sepolia's chain id (84532) and a free port.
//!
//! Finding it: an explicit path, else `ZT_ANVIL`, else `anvil` on `PATH`, else a
//! `node_modules/.bin/anvil` in the places the caller names (a project's pinned copy, from
//! `scripts/npm-tools.sh`).
//!
//! Running it: the npm package's `anvil` (`@foundry-rs/anvil`) is a Node launcher that starts
//! the platform's native binary as its child; stopping the launcher orphans the node. So a
//! launcher is resolved to the native binary it would start (the `@foundry-rs/anvil-<os>-<arch>`
//! package beside it) and that binary is what runs, so dropping [`Anvil`] ends the node itself.
//!
//! ```no_run
//! # fn main() -> Result<(), zt_anchor::anvil::AnvilError> {
//! let bin = zt_anchor::anvil::find(None, &[std::path::PathBuf::from(".")])?;
//! let node = zt_anchor::anvil::Anvil::start(&bin.path)?;
//! println!("{} ({})", node.url, bin.source);
//! # Ok(()) }
//! ```

use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// How to get anvil, in every "not found" message.
const INSTALL_HINT: &str = "install it with `npm install -g @foundry-rs/anvil@1.7.1` or Foundry's \
foundryup (or scripts/npm-tools.sh in a clone), or pass --anvil PATH / set ZT_ANVIL";

/// The npm package whose launcher is recognised, and whose platform packages hold the binary.
const NPM_SCOPE_PACKAGE: &str = "anvil";

/// Why no node could be found or started.
#[derive(Debug, thiserror::Error)]
pub enum AnvilError {
    /// No anvil anywhere the search looked.
    #[error("no anvil found (looked at {}); {INSTALL_HINT}", .looked.join(", "))]
    NotFound {
        /// Every place looked at, in order.
        looked: Vec<String>,
    },
    /// A path was named (flag or `ZT_ANVIL`) and holds no executable.
    #[error("{source_name}: no executable at {}; {INSTALL_HINT}", .path.display())]
    Missing {
        /// The path.
        path: PathBuf,
        /// Where the path came from.
        source_name: AnvilSource,
    },
    /// The npm launcher was found but not the native binary it starts.
    #[error("{} is the npm package's Node launcher, and its native binary for this platform ({package}) is not installed beside it; reinstall the package (scripts/npm-tools.sh in a clone)", .launcher.display())]
    NoNativeBinary {
        /// The launcher.
        launcher: PathBuf,
        /// The platform package looked for.
        package: String,
    },
    /// Starting or talking to the process failed.
    #[error("starting {}: {source}", .path.display())]
    Io {
        /// The executable.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// It exited before it printed its address.
    #[error("{} exited before listening", .path.display())]
    NotListening {
        /// The executable.
        path: PathBuf,
    },
}

/// Where a found anvil came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnvilSource {
    /// The caller's explicit path (`--anvil`).
    Flag,
    /// The `ZT_ANVIL` environment variable.
    Env,
    /// `anvil` on `PATH`.
    Path,
    /// A `node_modules/.bin/anvil` under one of the caller's folders.
    NodeModules,
}

impl fmt::Display for AnvilSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AnvilSource::Flag => "--anvil",
            AnvilSource::Env => "ZT_ANVIL",
            AnvilSource::Path => "PATH",
            AnvilSource::NodeModules => "node_modules",
        })
    }
}

/// An anvil found by [`find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The executable as found (possibly the npm launcher; [`Anvil::start`] resolves it).
    pub path: PathBuf,
    /// Where it came from.
    pub source: AnvilSource,
}

/// Finds anvil as this build's commands do: [`find`] with the current folder and the source
/// tree this crate was built from as the project roots (where `scripts/npm-tools.sh` puts the
/// pinned copy), so an installed `zt-audit` finds it from anywhere.
pub fn locate(explicit: Option<&Path>) -> Result<Found, AnvilError> {
    let mut roots = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    let source_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    roots.push(source_tree.canonicalize().unwrap_or(source_tree));
    find(explicit, &roots)
}

/// The `--anvil` flag's help, for the commands that take it.
pub const FLAG_HELP: &str = "The anvil executable (default: env ZT_ANVIL, else anvil on PATH, \
else node_modules/.bin/anvil here or in the source tree, which scripts/npm-tools.sh installs)";

/// A fresh random key, funded on a local node (`anvil_setBalance`); never written anywhere.
pub async fn funded_key(
    evm: &crate::evm::Evm,
) -> Result<alloy::signers::local::PrivateKeySigner, crate::AnchorError> {
    let signer = alloy::signers::local::PrivateKeySigner::random();
    evm.raw_request(
        "anvil_setBalance",
        serde_json::json!([format!("{:#x}", signer.address()), "0xD3C21BCECCEDA1000000"]),
    )
    .await?;
    Ok(signer)
}

/// Finds anvil: `explicit` (a flag), else `ZT_ANVIL`, else `PATH`, else
/// `<root>/node_modules/.bin/anvil` for each of `project_roots` in order.
///
/// A path named explicitly or by `ZT_ANVIL` must exist: a typo is an error, not a fallback.
pub fn find(explicit: Option<&Path>, project_roots: &[PathBuf]) -> Result<Found, AnvilError> {
    find_in(
        explicit,
        std::env::var_os("ZT_ANVIL"),
        std::env::var_os("PATH"),
        project_roots,
    )
}

fn find_in(
    explicit: Option<&Path>,
    env: Option<OsString>,
    path_var: Option<OsString>,
    project_roots: &[PathBuf],
) -> Result<Found, AnvilError> {
    let named = explicit
        .map(|p| (p.to_path_buf(), AnvilSource::Flag))
        .or_else(|| {
            env.filter(|v| !v.is_empty())
                .map(|v| (PathBuf::from(v), AnvilSource::Env))
        });
    if let Some((path, source)) = named {
        return if is_executable(&path) {
            Ok(Found { path, source })
        } else {
            Err(AnvilError::Missing {
                path,
                source_name: source,
            })
        };
    }
    let mut looked = vec!["ZT_ANVIL (unset)".to_owned()];
    if let Some(p) = path_var {
        for dir in std::env::split_paths(&p) {
            let candidate = dir.join("anvil");
            if is_executable(&candidate) {
                return Ok(Found {
                    path: candidate,
                    source: AnvilSource::Path,
                });
            }
        }
    }
    looked.push("PATH".to_owned());
    for root in project_roots {
        let candidate = root.join("node_modules/.bin/anvil");
        if is_executable(&candidate) {
            return Ok(Found {
                path: candidate,
                source: AnvilSource::NodeModules,
            });
        }
        looked.push(candidate.display().to_string());
    }
    Err(AnvilError::NotFound { looked })
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// The npm platform package's suffix for this machine, as `@foundry-rs/anvil` names them.
fn platform_suffix() -> Option<&'static str> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some("linux-amd64"),
        ("linux", "aarch64") => Some("linux-arm64"),
        ("macos", "x86_64") => Some("darwin-amd64"),
        ("macos", "aarch64") => Some("darwin-arm64"),
        ("windows", "x86_64") => Some("win32-amd64"),
        _ => None,
    }
}

/// Whether `p` is a script run by Node (`#!...node` on its first line).
fn is_node_launcher(p: &Path) -> bool {
    let mut head = [0u8; 128];
    let Ok(mut f) = std::fs::File::open(p) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    let first = head[..n].split(|&b| b == b'\n').next().unwrap_or_default();
    first.starts_with(b"#!") && first.windows(4).any(|w| w == b"node")
}

/// The executable that actually runs the node: `bin` itself, or for the npm launcher the
/// native binary it would start.
pub fn native_binary(bin: &Path) -> Result<PathBuf, AnvilError> {
    if !is_node_launcher(bin) {
        return Ok(bin.to_path_buf());
    }
    let package = format!(
        "@foundry-rs/{NPM_SCOPE_PACKAGE}-{}",
        platform_suffix().unwrap_or("unsupported-platform")
    );
    let no_native = || AnvilError::NoNativeBinary {
        launcher: bin.to_path_buf(),
        package: package.clone(),
    };
    // node_modules/.bin/anvil -> node_modules/@foundry-rs/anvil/bin.mjs
    let real = std::fs::canonicalize(bin).map_err(|_| no_native())?;
    let pkg_dir = real.parent().ok_or_else(no_native)?;
    let scope_dir = pkg_dir.parent().ok_or_else(no_native)?;
    let exe = if cfg!(windows) { "anvil.exe" } else { "anvil" };
    let Some(suffix) = platform_suffix() else {
        return Err(no_native());
    };
    let platform_pkg = format!("{NPM_SCOPE_PACKAGE}-{suffix}");
    // Where Node's resolution would find it: hoisted beside the launcher's package, or nested
    // under it; then the launcher's own fallback (a binary its postinstall downloaded).
    let candidates = [
        scope_dir.join(&platform_pkg).join("bin").join(exe),
        pkg_dir
            .join("node_modules/@foundry-rs")
            .join(&platform_pkg)
            .join("bin")
            .join(exe),
        scope_dir.join("dist").join(exe),
    ];
    candidates
        .into_iter()
        .find(|c| is_executable(c))
        .ok_or_else(no_native)
}

/// A running anvil; the node is ended (killed and reaped) on drop.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    /// Its JSON-RPC URL.
    pub url: String,
    /// The native executable running.
    pub binary: PathBuf,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Anvil {
    /// Starts `bin` (resolved with [`native_binary`]) with chain id 84532 on a free loopback
    /// port.
    pub fn start(bin: &Path) -> Result<Anvil, AnvilError> {
        Anvil::start_with(bin, &[])
    }

    /// As [`Anvil::start`], with extra arguments (`--prune-history`, say).
    pub fn start_with(bin: &Path, extra: &[&str]) -> Result<Anvil, AnvilError> {
        let binary = native_binary(bin)?;
        let io = |source| AnvilError::Io {
            path: binary.clone(),
            source,
        };
        let mut child = Command::new(&binary)
            .args(["--chain-id", "84532", "--host", "127.0.0.1", "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io)?;
        // From here on a failure must still end the child: build the guard first.
        let stdout = child.stdout.take();
        let mut node = Anvil {
            child,
            url: String::new(),
            binary: binary.clone(),
        };
        let Some(stdout) = stdout else {
            return Err(AnvilError::NotListening { path: binary });
        };
        let mut lines = BufReader::new(stdout).lines();
        node.url = loop {
            match lines.next() {
                None => return Err(AnvilError::NotListening { path: binary }),
                Some(Err(e)) => return Err(io(e)),
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("Listening on ") {
                        break format!("http://{}", addr.trim());
                    }
                }
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(node)
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn exe(path: &Path, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn search_order_flag_env_path_node_modules() {
        let d = tempfile::tempdir().unwrap();
        let flag = d.path().join("flag/anvil");
        let env = d.path().join("env/anvil");
        let on_path = d.path().join("bin/anvil");
        let project = d.path().join("proj");
        let nm = project.join("node_modules/.bin/anvil");
        for p in [&flag, &env, &on_path, &nm] {
            exe(p, "#!/bin/sh\n");
        }
        let path_var = Some(OsString::from(d.path().join("bin")));
        let roots = [project.clone()];
        let f = find_in(
            Some(&flag),
            Some(env.clone().into()),
            path_var.clone(),
            &roots,
        )
        .unwrap();
        assert_eq!((f.path, f.source), (flag.clone(), AnvilSource::Flag));
        let f = find_in(None, Some(env.clone().into()), path_var.clone(), &roots).unwrap();
        assert_eq!((f.path, f.source), (env.clone(), AnvilSource::Env));
        let f = find_in(None, None, path_var.clone(), &roots).unwrap();
        assert_eq!((f.path, f.source), (on_path.clone(), AnvilSource::Path));
        let f = find_in(None, Some(OsString::new()), None, &roots).unwrap();
        assert_eq!((f.path, f.source), (nm.clone(), AnvilSource::NodeModules));
        let err = find_in(None, None, None, &[d.path().join("elsewhere")]).unwrap_err();
        assert!(matches!(err, AnvilError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("npm install -g @foundry-rs/anvil"));
    }

    #[test]
    fn a_named_path_that_does_not_exist_is_an_error_not_a_fallback() {
        let d = tempfile::tempdir().unwrap();
        let project = d.path().join("proj");
        exe(&project.join("node_modules/.bin/anvil"), "#!/bin/sh\n");
        let typo = d.path().join("no/such/anvil");
        let err = find_in(Some(&typo), None, None, std::slice::from_ref(&project)).unwrap_err();
        assert!(
            matches!(
                err,
                AnvilError::Missing {
                    source_name: AnvilSource::Flag,
                    ..
                }
            ),
            "{err}"
        );
        let err = find_in(None, Some(typo.into()), None, &[project]).unwrap_err();
        assert!(
            matches!(
                err,
                AnvilError::Missing {
                    source_name: AnvilSource::Env,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn the_npm_launcher_resolves_to_the_native_binary_beside_it() {
        let d = tempfile::tempdir().unwrap();
        let nm = d.path().join("node_modules");
        let launcher = nm.join("@foundry-rs/anvil/bin.mjs");
        exe(&launcher, "#!/usr/bin/env node\nimport x from 'y'\n");
        std::fs::create_dir_all(nm.join(".bin")).unwrap();
        std::os::unix::fs::symlink("../@foundry-rs/anvil/bin.mjs", nm.join(".bin/anvil")).unwrap();
        let bin = nm.join(".bin/anvil");
        // Without the platform package: a clear error naming it.
        let err = native_binary(&bin).unwrap_err();
        assert!(matches!(err, AnvilError::NoNativeBinary { .. }), "{err}");
        let native = nm
            .join("@foundry-rs")
            .join(format!("anvil-{}", platform_suffix().unwrap()))
            .join("bin/anvil");
        exe(&native, "\x7fELF");
        assert_eq!(
            native_binary(&bin).unwrap().canonicalize().unwrap(),
            native.canonicalize().unwrap()
        );
        // A native binary (Foundry's own install) is run as it is.
        assert_eq!(native_binary(&native).unwrap(), native);
    }
}
