//! RFC 3339 instants for record timestamps and key validity windows.

use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// An instant, as nanoseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i128);

impl Timestamp {
    /// Parses an RFC 3339 date-time (`2026-10-01T08:00:36.490Z`, offsets allowed).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .map(|t| Self(t.unix_timestamp_nanos()))
    }

    /// Nanoseconds since the Unix epoch.
    pub fn unix_nanos(self) -> i128 {
        self.0
    }

    /// From nanoseconds since the Unix epoch.
    pub fn from_unix_nanos(n: i128) -> Self {
        Self(n)
    }

    /// Whole milliseconds since the Unix epoch (floor), saturated to `i64`: the stores' unit.
    pub fn unix_millis(self) -> i64 {
        i64::try_from(self.0.div_euclid(1_000_000)).unwrap_or(if self.0 < 0 {
            i64::MIN
        } else {
            i64::MAX
        })
    }

    /// From milliseconds since the Unix epoch.
    pub fn from_unix_millis(ms: i64) -> Self {
        Self(i128::from(ms) * 1_000_000)
    }

    /// RFC 3339 in UTC with exactly three fraction digits (`2026-10-01T08:00:36.490Z`), the
    /// lineage's `Date.toISOString()` shape. Sub-millisecond digits are cut, not rounded, so
    /// the text never names a later instant than this one.
    pub fn to_rfc3339_millis(self) -> String {
        let ms = self.0.div_euclid(1_000_000);
        match OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000) {
            Ok(t) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            ),
            Err(_) => self.to_string(),
        }
    }

    /// The current time (the only clock read in the core; callers may pass their own).
    pub fn now() -> Self {
        Self(OffsetDateTime::now_utc().unix_timestamp_nanos())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match OffsetDateTime::from_unix_timestamp_nanos(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
        {
            Some(s) => f.write_str(&s),
            None => write!(f, "@{}ns", self.0),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lineage_timestamps_and_offsets() {
        let a = Timestamp::parse_rfc3339("2026-10-01T08:00:36.490Z").unwrap();
        let b = Timestamp::parse_rfc3339("2026-10-01T10:00:36.490+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2026-10-01T08:00:36.49Z");
        assert!(Timestamp::parse_rfc3339("yesterday").is_none());
        assert!(Timestamp::parse_rfc3339("2026-13-01T00:00:00Z").is_none());
    }

    #[test]
    fn millis_text_round_trips_and_truncates() {
        for s in ["2026-10-01T08:00:36.490Z", "1999-01-02T03:04:05.000Z"] {
            assert_eq!(Timestamp::parse_rfc3339(s).unwrap().to_rfc3339_millis(), s);
        }
        let t = Timestamp::parse_rfc3339("2026-10-01T08:00:36.4909Z").unwrap();
        assert_eq!(t.to_rfc3339_millis(), "2026-10-01T08:00:36.490Z");
    }
}
