//! Grants are files, not text: each grant's path is opened the way the kernel will resolve it,
//! and refused unless the text is exactly what it resolves to.
//!
//! [`open_grant`] opens a path with `openat2(O_PATH, RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)`: the kernel walks the text component by component and fails on any
//! symbolic link (a planted `D/work/in -> D/secret`, Debian's `/bin -> usr/bin`) and any magic
//! link (`/proc/self`, `/proc/PID/root`, `/proc/PID/fd/N`, `/dev/fd`), so the descriptor is of
//! the object the text names and of nothing a link points at. The broker gives Landlock those
//! descriptors and bind-mounts from them, so nothing can be swapped between the check and the
//! use. A refusal names the grant and the component that is a link, and where it points.
//!
//! [`check_on_host`] is the same rule where no descriptor is kept: the control plane at
//! issuance and `zt-audit capability attenuate` on the agent's host refuse a grant whose text
//! is not what it resolves to there. A path that does not exist yet is checked as far as it
//! exists. The broker's check at run time is the one that counts; these only refuse early.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{openat2, Mode, OFlags, ResolveFlags, CWD};
use zt_core::capability::{Access, Grants};

/// What is wrong with a granted path.
#[derive(Debug, thiserror::Error)]
pub enum PathProblem {
    /// A component is a symbolic link (or a magic link).
    #[error(
        "passes through a link: {at} -> {target} (grant the path it resolves to, without links)"
    )]
    Link {
        /// The component that is a link.
        at: String,
        /// What it points at (as the link says; magic links show what `/proc` shows).
        target: String,
    },
    /// It does not exist.
    #[error("does not exist")]
    Missing,
    /// Anything else the kernel said.
    #[error("cannot be opened: {0}")]
    Io(#[source] std::io::Error),
}

/// A granted path refused, naming the grant list and the path.
#[derive(Debug, thiserror::Error)]
#[error("granted `{access}` path {path} {problem}")]
pub struct GrantPathError {
    /// The grant list (`read`, `write`, `exec`), or `system` for the broker's own paths.
    pub access: &'static str,
    /// The path as granted.
    pub path: String,
    /// What is wrong (in the message already, so not a `source`).
    pub problem: PathProblem,
}

/// The first component of `path` that is a symbolic link, and its target.
fn first_link(path: &Path) -> Option<(String, String)> {
    let mut walked = PathBuf::from("/");
    for c in path.components().skip(1) {
        walked.push(c);
        match std::fs::symlink_metadata(&walked) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&walked)
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|_| "?".into());
                return Some((walked.display().to_string(), target));
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

fn problem(path: &Path, e: rustix::io::Errno) -> PathProblem {
    if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::XDEV {
        let (at, target) = first_link(path).unwrap_or_else(|| {
            (
                path.display().to_string(),
                "a magic link or a link the kernel would not follow".into(),
            )
        });
        return PathProblem::Link { at, target };
    }
    if e == rustix::io::Errno::NOENT {
        // A dangling link at the end is a link, not a missing file.
        if let Some((at, target)) = first_link(path) {
            return PathProblem::Link { at, target };
        }
        return PathProblem::Missing;
    }
    PathProblem::Io(std::io::Error::from(e))
}

/// Opens `path` (absolute, normalized) as an `O_PATH` descriptor without following any
/// symbolic or magic link on the way.
pub fn open_no_links(path: &Path) -> Result<OwnedFd, PathProblem> {
    openat2(
        CWD,
        path,
        // No O_NOFOLLOW: with O_PATH it would open a trailing link itself; without it, a
        // trailing link is resolved, which RESOLVE_NO_SYMLINKS refuses.
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| problem(path, e))
}

/// [`open_no_links`] for one grant, the refusal naming it.
pub fn open_grant(access: &'static str, path: &str) -> Result<OwnedFd, GrantPathError> {
    open_no_links(Path::new(path)).map_err(|problem| GrantPathError {
        access,
        path: path.to_owned(),
        problem,
    })
}

/// Checks every grant against this host's file system: a path that exists must resolve to
/// itself without links; one that does not is checked up to its deepest existing ancestor.
pub fn check_on_host(grants: &Grants) -> Result<(), GrantPathError> {
    for access in [Access::Read, Access::Write, Access::Exec] {
        for p in grants.paths(access) {
            let path = Path::new(p);
            let refuse = |problem| GrantPathError {
                access: access.as_str(),
                path: p.clone(),
                problem,
            };
            match open_no_links(path) {
                Ok(_) => {}
                Err(PathProblem::Missing) => {
                    if let Some((at, target)) = first_link(path) {
                        return Err(refuse(PathProblem::Link { at, target }));
                    }
                }
                Err(e) => return Err(refuse(e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_anywhere_on_the_path_are_refused_naming_the_link() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().canonicalize().unwrap();
        std::fs::create_dir(base.join("real")).unwrap();
        std::fs::write(base.join("real/f"), "x").unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).unwrap();
        std::os::unix::fs::symlink(base.join("nowhere"), base.join("dangling")).unwrap();
        let s = |p: PathBuf| p.display().to_string();
        assert!(open_grant("read", &s(base.join("real/f"))).is_ok());
        for (p, at) in [
            (base.join("link/f"), base.join("link")),
            (base.join("link"), base.join("link")),
            (base.join("dangling"), base.join("dangling")),
        ] {
            let e = open_grant("read", &s(p.clone())).err().unwrap();
            assert!(
                matches!(&e.problem, PathProblem::Link { at: a, .. } if *a == s(at.clone())),
                "{}: {e}",
                p.display()
            );
            assert!(e.to_string().contains("passes through a link"), "{e}");
        }
        assert!(matches!(
            open_grant("read", &s(base.join("absent")))
                .err()
                .map(|e| e.problem),
            Some(PathProblem::Missing)
        ));
        // magic links: /proc/self is a symlink, /proc/1/root a magic link
        for p in ["/proc/self", "/proc/self/root", "/proc/1/root", "/dev/fd"] {
            let e = open_grant("read", p).err();
            assert!(
                matches!(
                    &e,
                    Some(GrantPathError {
                        problem: PathProblem::Link { .. },
                        ..
                    })
                ),
                "{p}: {e:?}"
            );
        }
        // on the host: a missing path below a link is refused, below a real folder it is not
        let g = |p: PathBuf| Grants {
            write: vec![s(p)],
            ..Grants::default()
        };
        assert!(check_on_host(&g(base.join("real/new"))).is_ok());
        assert!(check_on_host(&g(base.join("link/new"))).is_err());
        assert!(check_on_host(&g(base.join("real/f"))).is_ok());
    }
}
