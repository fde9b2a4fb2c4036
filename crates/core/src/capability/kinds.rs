//! The kinds a grant speaks of: which path list (`Access`) and which sandbox (`SandboxKind`).
//! Plain values, below the grants and their errors.

/// Which sandbox holds a command to its grants: part of the grants, so it is signed into the
/// capability and the allow, Cedar sees it (`context.grants.sandbox`), and a broker that
/// cannot provide it refuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum SandboxKind {
    /// The kernel holds the command to the grants: Landlock (through nono's detection and the
    /// `landlock` crate) in private user, mount and PID namespaces, grants opened without
    /// following links, read and write grants mounted `noexec`.
    #[default]
    Nono,
    /// No sandbox: a plain child process. The grants are recorded and the command must be
    /// exec-granted, but nothing in the kernel holds it to them. Wider than `nono`: an
    /// attenuation may go from `process` to `nono`, never back.
    Process,
}

impl SandboxKind {
    /// `nono` or `process`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nono => "nono",
            Self::Process => "process",
        }
    }
}

impl std::fmt::Display for SandboxKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three path kinds of a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `read`.
    Read,
    /// `write`.
    Write,
    /// `exec`.
    Exec,
}

impl Access {
    /// The member name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Exec => "exec",
        }
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
