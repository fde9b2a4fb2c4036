//! What a capability lets a command touch: paths to read, write and execute, the network, and
//! the sandbox that must hold the command to them.
//!
//! Paths are absolute and normalized (no `.`, `..` or empty components, no trailing `/`); a
//! grant covers its path and everything below it, component-wise (`/data` covers `/data/x`,
//! not `/data2`). That is all this pure module can say of a path: whether the text is what the
//! kernel resolves (no symbolic or magic link on the way) is checked on the host that holds
//! the files, at issuance, at attenuation and again by the broker when it opens each grant
//! (`zt_broker::paths`).
//!
//! Write and exec grants are disjoint (no exec path covers or lies below a write path): what a
//! command may write, it may never run. The broker goes further and mounts every read and
//! write grant `noexec` (see `docs/capabilities.md`).

use super::error::{bad, CapabilityError};
use super::kinds::{Access, SandboxKind};
use crate::json::{Map, Value};

/// What a capability lets a command touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Read (files and folders below these paths).
    pub read: Vec<String>,
    /// Write.
    pub write: Vec<String>,
    /// Execute (a file, or every file below a folder).
    pub exec: Vec<String>,
    /// Network access.
    pub net: bool,
    /// The sandbox the command must run in. A token or record without the member means
    /// [`SandboxKind::Nono`], the strict one.
    pub sandbox: SandboxKind,
}

/// Most paths in one grant list.
pub const MAX_PATHS: usize = 64;
/// Longest path, in bytes.
pub const MAX_PATH: usize = 4096;

impl std::str::FromStr for Access {
    type Err = CapabilityError;
    fn from_str(s: &str) -> Result<Self, CapabilityError> {
        match s {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "exec" => Ok(Self::Exec),
            other => Err(bad(format!(
                "unknown access `{}` (read, write or exec)",
                crate::envelope::shorten(other)
            ))),
        }
    }
}

impl std::str::FromStr for SandboxKind {
    type Err = CapabilityError;
    fn from_str(s: &str) -> Result<Self, CapabilityError> {
        match s {
            "nono" => Ok(Self::Nono),
            "process" => Ok(Self::Process),
            other => Err(bad(format!(
                "unknown sandbox `{}` (nono or process)",
                crate::envelope::shorten(other)
            ))),
        }
    }
}

/// Whether `outer` covers `inner` (equal, or `inner` below it component-wise).
pub fn covers(outer: &str, inner: &str) -> bool {
    outer == "/"
        || inner == outer
        || (inner.len() > outer.len()
            && inner.starts_with(outer)
            && inner.as_bytes()[outer.len()] == b'/')
}

/// Checks one grant path: absolute, normalized, no control characters.
pub fn check_path(access: Access, path: &str) -> Result<(), CapabilityError> {
    let refuse = |why| CapabilityError::BadPath {
        access,
        path: crate::envelope::shorten(path),
        why,
    };
    if path.len() > MAX_PATH {
        return Err(refuse("longer than 4096 bytes"));
    }
    if !path.starts_with('/') {
        return Err(refuse("not absolute"));
    }
    if path.chars().any(char::is_control) {
        return Err(refuse("contains a control character"));
    }
    if path != "/" {
        if path.ends_with('/') {
            return Err(refuse("ends with `/` (write the folder without it)"));
        }
        for c in path[1..].split('/') {
            match c {
                "" => return Err(refuse("has an empty component (`//`)")),
                "." | ".." => return Err(refuse("has a `.` or `..` component")),
                _ => {}
            }
        }
    }
    Ok(())
}

/// How an attenuation narrows a token's grants: each list given replaces that list (every
/// path in it must still fall within the token's grants, which [`super::attenuate`] checks),
/// kinds dropped empty theirs, the network can go off, the sandbox can become `nono`. Nothing
/// here can widen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Narrowing {
    /// Replaces the read list when not empty.
    pub read: Vec<String>,
    /// Replaces the write list when not empty.
    pub write: Vec<String>,
    /// Replaces the exec list when not empty.
    pub exec: Vec<String>,
    /// Kinds of access dropped entirely.
    pub drop: Vec<Access>,
    /// Network access off.
    pub no_net: bool,
    /// The `nono` sandbox required.
    pub require_nono: bool,
}

impl Grants {
    /// These grants narrowed as `n` says: paths checked, sorted and deduplicated; write and
    /// exec still disjoint.
    ///
    /// # Errors
    /// A path that cannot be reasoned about, or write and exec overlapping.
    pub fn narrowed(&self, n: &Narrowing) -> Result<Grants, CapabilityError> {
        let mut out = self.clone();
        for (access, given) in [
            (Access::Read, &n.read),
            (Access::Write, &n.write),
            (Access::Exec, &n.exec),
        ] {
            if given.is_empty() {
                continue;
            }
            for p in given {
                check_path(access, p)?;
            }
            let mut l = given.clone();
            l.sort();
            l.dedup();
            *out.paths_mut(access) = l;
        }
        for access in &n.drop {
            out.paths_mut(*access).clear();
        }
        if n.no_net {
            out.net = false;
        }
        if n.require_nono {
            out.sandbox = SandboxKind::Nono;
        }
        out.check_write_exec()?;
        Ok(out)
    }

    /// The paths of one kind.
    pub fn paths(&self, access: Access) -> &[String] {
        match access {
            Access::Read => &self.read,
            Access::Write => &self.write,
            Access::Exec => &self.exec,
        }
    }

    /// The paths of one kind, to change (keep them checked and sorted).
    pub fn paths_mut(&mut self, access: Access) -> &mut Vec<String> {
        match access {
            Access::Read => &mut self.read,
            Access::Write => &mut self.write,
            Access::Exec => &mut self.exec,
        }
    }

    /// Whether some `access` grant covers `path`.
    pub fn allows(&self, access: Access, path: &str) -> bool {
        self.paths(access).iter().any(|g| covers(g, path))
    }

    /// Reads `{"read": [...], "write": [...], "exec": [...], "net": bool, "sandbox":
    /// "nono"|"process"}` (every member optional; lists sorted and deduplicated; paths
    /// checked; write and exec disjoint).
    pub fn from_value(v: &Value) -> Result<Self, CapabilityError> {
        let Value::Object(m) = v else {
            return Err(bad(format!(
                "`grants` must be an object, found {}",
                v.type_name()
            )));
        };
        let mut g = Self::default();
        for (k, v) in m.iter() {
            let access = match k {
                "read" => Access::Read,
                "write" => Access::Write,
                "exec" => Access::Exec,
                "net" => {
                    g.net = match v {
                        Value::Bool(b) => *b,
                        other => {
                            return Err(bad(format!(
                                "`grants.net` must be true or false, found {}",
                                other.type_name()
                            )))
                        }
                    };
                    continue;
                }
                "sandbox" => {
                    g.sandbox = match v {
                        Value::String(s) => s.parse()?,
                        other => {
                            return Err(bad(format!(
                                "`grants.sandbox` must be \"nono\" or \"process\", found {}",
                                other.type_name()
                            )))
                        }
                    };
                    continue;
                }
                other => {
                    return Err(bad(format!(
                        "unknown grant `{}` (expected read, write, exec, net, sandbox)",
                        crate::envelope::shorten(other)
                    )))
                }
            };
            let Value::Array(items) = v else {
                return Err(bad(format!(
                    "`grants.{access}` must be a list of paths, found {}",
                    v.type_name()
                )));
            };
            if items.len() > MAX_PATHS {
                return Err(bad(format!(
                    "`grants.{access}` has more than {MAX_PATHS} paths"
                )));
            }
            for item in items {
                let Some(p) = item.as_str() else {
                    return Err(bad(format!(
                        "`grants.{access}` must hold strings, found {}",
                        item.type_name()
                    )));
                };
                check_path(access, p)?;
                g.paths_mut(access).push(p.to_owned());
            }
        }
        g.normalize();
        g.check_write_exec()?;
        Ok(g)
    }

    /// Write and exec grants are disjoint: no exec path covers a write path or lies below one.
    pub fn check_write_exec(&self) -> Result<(), CapabilityError> {
        for e in &self.exec {
            if let Some(w) = self.write.iter().find(|w| covers(w, e) || covers(e, w)) {
                return Err(CapabilityError::WriteExec {
                    exec: e.clone(),
                    write: w.clone(),
                });
            }
        }
        Ok(())
    }

    fn normalize(&mut self) {
        for l in [&mut self.read, &mut self.write, &mut self.exec] {
            l.sort();
            l.dedup();
        }
    }

    /// The JSON form (every member present, lists sorted).
    pub fn to_value(&self) -> Value {
        let list = |l: &[String]| Value::Array(l.iter().cloned().map(Value::String).collect());
        let mut m = Map::new();
        m.push("read".into(), list(&self.read));
        m.push("write".into(), list(&self.write));
        m.push("exec".into(), list(&self.exec));
        m.push("net".into(), Value::Bool(self.net));
        m.push(
            "sandbox".into(),
            Value::String(self.sandbox.as_str().into()),
        );
        Value::Object(m)
    }

    /// Whether these grants are within `outer`: each path covered by one of the same kind,
    /// network only if `outer` has it, a sandbox at least as strict. The first excess is the
    /// error (`link` names where).
    pub fn within(&self, outer: &Grants, link: usize) -> Result<(), CapabilityError> {
        for access in [Access::Read, Access::Write, Access::Exec] {
            if let Some(p) = self.paths(access).iter().find(|p| !outer.allows(access, p)) {
                return Err(CapabilityError::Widened {
                    link,
                    access,
                    path: p.clone(),
                });
            }
        }
        if self.net && !outer.net {
            return Err(CapabilityError::NetWidened { link });
        }
        if self.sandbox > outer.sandbox {
            return Err(CapabilityError::SandboxWidened {
                link,
                from: outer.sandbox,
                to: self.sandbox,
            });
        }
        Ok(())
    }
}

impl std::fmt::Display for Grants {
    /// `read /a, /b; write -; exec /usr/bin/cat; net off; sandbox nono`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for access in [Access::Read, Access::Write, Access::Exec] {
            let l = self.paths(access);
            let shown = if l.is_empty() {
                "-".to_owned()
            } else {
                l.iter()
                    .map(|p| crate::text::escape(p).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            write!(f, "{access} {shown}; ")?;
        }
        f.write_str(if self.net { "net on" } else { "net off" })?;
        write!(f, "; sandbox {}", self.sandbox)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants() -> Grants {
        Grants {
            read: vec!["/data".into(), "/etc".into()],
            write: vec!["/data/out".into()],
            exec: vec!["/usr/bin/cat".into()],
            net: true,
            sandbox: SandboxKind::Process,
        }
    }

    #[test]
    fn narrowing_replaces_drops_and_tightens() {
        let n = Narrowing {
            read: vec!["/data/in".into(), "/data/in".into()],
            drop: vec![Access::Write],
            no_net: true,
            require_nono: true,
            ..Narrowing::default()
        };
        let out = grants().narrowed(&n).expect("narrows");
        assert_eq!(out.read, ["/data/in"]);
        assert!(out.write.is_empty());
        assert_eq!(out.exec, ["/usr/bin/cat"], "an exec list not given is kept");
        assert!(!out.net);
        assert_eq!(out.sandbox, SandboxKind::Nono);
        // Nothing given: the grants as they were.
        assert_eq!(
            grants().narrowed(&Narrowing::default()).expect("same"),
            grants()
        );
    }

    #[test]
    fn narrowing_refuses_bad_paths_and_write_exec_overlap() {
        let relative = Narrowing {
            read: vec!["data/../etc".into()],
            ..Narrowing::default()
        };
        assert!(matches!(
            grants().narrowed(&relative),
            Err(CapabilityError::BadPath { .. })
        ));
        let overlap = Narrowing {
            exec: vec!["/data/out/tool".into()],
            ..Narrowing::default()
        };
        assert!(matches!(
            grants().narrowed(&overlap),
            Err(CapabilityError::WriteExec { .. })
        ));
        assert!("everything".parse::<Access>().is_err());
        assert_eq!("exec".parse::<Access>().ok(), Some(Access::Exec));
    }
}
