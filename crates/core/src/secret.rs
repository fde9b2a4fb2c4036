//! Secrets held in memory: bearer tokens (admin, agent, exporter) and the like.
//!
//! [`Secret`] is a string that cannot be printed by accident: its `Debug` shows only that
//! something is there, it has no `Display`, and reading it takes an explicit
//! [`expose`](Secret::expose). A configuration struct that holds one can derive `Debug` and
//! still be logged whole.

/// A string that must never reach a log, an error message or a `Debug` print.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends or hashes it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret, comparing every byte whatever matches (no early exit
    /// on a matching prefix). Only the length is learnt from the time taken.
    pub fn matches(&self, given: &[u8]) -> bool {
        let mine = self.0.as_bytes();
        mine.len() == given.len()
            && mine
                .iter()
                .zip(given)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_nothing_of_the_value() {
        let s = Secret::new("ztcp_0123456789");
        let shown = format!("{s:?} {:?} {s:#?}", Some(&s));
        assert!(!shown.contains("0123456789"), "{shown}");
        assert!(s.matches(b"ztcp_0123456789"));
        assert!(!s.matches(b"ztcp_0123456780"));
        assert!(!s.matches(b"ztcp_"));
        assert_eq!(s.expose(), "ztcp_0123456789");
    }
}
