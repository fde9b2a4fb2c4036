//! Terminal styling: colour only on a terminal, and never with `NO_COLOR` set. Text from
//! evidence is escaped with `zt_core::text::escape` before it is styled.

use std::io::IsTerminal;
use std::path::Path;

/// A path as people see it: file names are chosen by whoever wrote the files, so they are
/// escaped like evidence.
pub fn store(l: &zt_store::Location) -> String {
    zt_core::text::escape(&l.to_string()).into_owned()
}

/// A path for messages: escaped (a file name is untrusted text).
pub fn path(p: &Path) -> String {
    zt_core::text::escape(&p.display().to_string()).into_owned()
}

/// ANSI styling that turns itself off when output is not a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    on: bool,
}

impl Style {
    /// Styling for stdout.
    pub fn stdout() -> Self {
        Self {
            on: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn wrap(self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    pub fn ok(self, s: &str) -> String {
        self.wrap("1;32", s)
    }
    pub fn bad(self, s: &str) -> String {
        self.wrap("1;31", s)
    }
    pub fn warn(self, s: &str) -> String {
        self.wrap("33", s)
    }
    pub fn bold(self, s: &str) -> String {
        self.wrap("1", s)
    }
    pub fn dim(self, s: &str) -> String {
        self.wrap("2", s)
    }
}
