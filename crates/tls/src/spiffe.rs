//! SPIFFE IDs, parsed and checked as the SPIFFE ID specification says
//! (<https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md>, section 2).
//!
//! - The scheme is exactly `spiffe://` (lowercase, as go-spiffe and SPIRE require).
//! - The trust domain is 1 to 255 characters of `[a-z0-9.-_]`: no uppercase, no port, no
//!   userinfo, no percent-encoding.
//! - The path, when there is one, is `/`-separated segments of `[A-Za-z0-9.-_]`, none empty,
//!   none `.` or `..`, no trailing `/`; no query, no fragment.
//! - The whole ID is at most 2,048 bytes.
//!
//! A workload's ID ([`SpiffeId`], what an X.509-SVID carries) has a non-empty path; a trust
//! domain's own ID (`spiffe://example.org`, what a CA certificate carries to name its trust
//! domain) has none ([`TrustDomain::from_id`]).

use std::fmt;
use std::str::FromStr;

/// Longest SPIFFE ID accepted, in bytes (the specification's limit).
pub const MAX_ID: usize = 2048;
/// Longest trust domain name accepted, in bytes.
pub const MAX_TRUST_DOMAIN: usize = 255;

/// Why a string is not a SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeIdError {
    /// Empty string.
    #[error("the SPIFFE ID is empty")]
    Empty,
    /// Over [`MAX_ID`] bytes.
    #[error("the SPIFFE ID is {0} bytes long, over the limit of 2048")]
    TooLong(usize),
    /// Not `spiffe://`.
    #[error("the scheme is not `spiffe://`")]
    WrongScheme,
    /// `spiffe://` and nothing, or `spiffe:///path`.
    #[error("the trust domain is empty")]
    EmptyTrustDomain,
    /// Over [`MAX_TRUST_DOMAIN`] bytes.
    #[error("the trust domain is {0} bytes long, over the limit of 255")]
    TrustDomainTooLong(usize),
    /// An uppercase letter in the trust domain.
    #[error("the trust domain has an uppercase letter {0:?} (trust domains are lowercase)")]
    UppercaseTrustDomain(char),
    /// `host:port`.
    #[error("the trust domain has a port")]
    Port,
    /// `user@host`.
    #[error("the trust domain has userinfo")]
    Userinfo,
    /// Any other character outside `[a-z0-9.-_]` in the trust domain.
    #[error("the trust domain has the character {0:?} (allowed: a-z 0-9 . - _)")]
    TrustDomainChar(char),
    /// A `?query`.
    #[error("the SPIFFE ID has a query")]
    Query,
    /// A `#fragment`.
    #[error("the SPIFFE ID has a fragment")]
    Fragment,
    /// An empty path segment (`//`) or a trailing `/`.
    #[error("the path has an empty segment")]
    EmptySegment,
    /// A `.` or `..` segment.
    #[error("the path has a `.` or `..` segment")]
    DotSegment,
    /// Any other character outside `[A-Za-z0-9.-_]` in the path.
    #[error("the path has the character {0:?} (allowed: A-Z a-z 0-9 . - _)")]
    PathChar(char),
    /// A workload ID without a path (`spiffe://example.org`): that names a trust domain.
    #[error("the SPIFFE ID has no path: it names a trust domain, not a workload")]
    NoPath,
    /// A trust domain's ID with a path.
    #[error("a trust domain's SPIFFE ID has no path")]
    UnexpectedPath,
}

/// A trust domain name (`example.org`), valid per the specification.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// A trust domain name on its own (`example.org`).
    pub fn new(name: &str) -> Result<Self, SpiffeIdError> {
        check_trust_domain(name)?;
        Ok(Self(name.to_owned()))
    }

    /// The trust domain of a trust domain's own SPIFFE ID (`spiffe://example.org`, no path).
    pub fn from_id(id: &str) -> Result<Self, SpiffeIdError> {
        let (td, path) = split(id)?;
        if !path.is_empty() {
            return Err(SpiffeIdError::UnexpectedPath);
        }
        Ok(Self(td.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A workload's SPIFFE ID: `spiffe://<trust-domain>/<path>`, valid per the specification.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    id: String,
    /// Where the path starts (the byte after the trust domain).
    path_at: usize,
}

impl SpiffeId {
    /// Parses and checks `id`.
    pub fn parse(id: &str) -> Result<Self, SpiffeIdError> {
        let (td, path) = split(id)?;
        if path.is_empty() {
            return Err(SpiffeIdError::NoPath);
        }
        Ok(Self {
            id: id.to_owned(),
            path_at: PREFIX.len() + td.len(),
        })
    }

    /// The whole ID.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The trust domain's name.
    pub fn trust_domain(&self) -> &str {
        &self.id[PREFIX.len()..self.path_at]
    }

    /// The path, with its leading `/`.
    pub fn path(&self) -> &str {
        &self.id[self.path_at..]
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

const PREFIX: &str = "spiffe://";

/// Splits a SPIFFE ID into its checked trust domain and its checked (possibly empty) path.
fn split(id: &str) -> Result<(&str, &str), SpiffeIdError> {
    if id.is_empty() {
        return Err(SpiffeIdError::Empty);
    }
    if id.len() > MAX_ID {
        return Err(SpiffeIdError::TooLong(id.len()));
    }
    let rest = id.strip_prefix(PREFIX).ok_or(SpiffeIdError::WrongScheme)?;
    let (td, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    check_trust_domain(td)?;
    check_path(path)?;
    Ok((td, path))
}

fn check_trust_domain(td: &str) -> Result<(), SpiffeIdError> {
    if td.is_empty() {
        return Err(SpiffeIdError::EmptyTrustDomain);
    }
    // The characters first: a query or a port says more than a length.
    for c in td.chars() {
        match c {
            'a'..='z' | '0'..='9' | '.' | '-' | '_' => {}
            'A'..='Z' => return Err(SpiffeIdError::UppercaseTrustDomain(c)),
            ':' => return Err(SpiffeIdError::Port),
            '@' => return Err(SpiffeIdError::Userinfo),
            '?' => return Err(SpiffeIdError::Query),
            '#' => return Err(SpiffeIdError::Fragment),
            other => return Err(SpiffeIdError::TrustDomainChar(other)),
        }
    }
    if td.len() > MAX_TRUST_DOMAIN {
        return Err(SpiffeIdError::TrustDomainTooLong(td.len()));
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), SpiffeIdError> {
    if path.is_empty() {
        return Ok(());
    }
    // `path` starts with '/': the first piece of the split is the empty string before it.
    for segment in path.split('/').skip(1) {
        if segment.is_empty() {
            return Err(SpiffeIdError::EmptySegment);
        }
        if segment == "." || segment == ".." {
            return Err(SpiffeIdError::DotSegment);
        }
        for c in segment.chars() {
            match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => {}
                '?' => return Err(SpiffeIdError::Query),
                '#' => return Err(SpiffeIdError::Fragment),
                other => return Err(SpiffeIdError::PathChar(other)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_split_into_trust_domain_and_path() {
        let id = SpiffeId::parse("spiffe://td-a.example/agent/a_1.x").unwrap();
        assert_eq!(id.trust_domain(), "td-a.example");
        assert_eq!(id.path(), "/agent/a_1.x");
        assert_eq!(id.to_string(), "spiffe://td-a.example/agent/a_1.x");
        assert_eq!(
            TrustDomain::from_id("spiffe://td-a.example")
                .unwrap()
                .as_str(),
            "td-a.example"
        );
    }

    #[test]
    fn the_specification_s_bad_ids_are_refused_by_name() {
        use SpiffeIdError as E;
        for (id, want) in [
            ("", E::Empty),
            ("http://td/a", E::WrongScheme),
            ("SPIFFE://td/a", E::WrongScheme),
            ("spiffe://", E::EmptyTrustDomain),
            ("spiffe:///a", E::EmptyTrustDomain),
            ("spiffe://TD/a", E::UppercaseTrustDomain('T')),
            ("spiffe://td:443/a", E::Port),
            ("spiffe://user@td/a", E::Userinfo),
            ("spiffe://td?x=1", E::Query),
            ("spiffe://td/a?x=1", E::Query),
            ("spiffe://td/a#frag", E::Fragment),
            ("spiffe://td/a//b", E::EmptySegment),
            ("spiffe://td/a/", E::EmptySegment),
            ("spiffe://td/a/../b", E::DotSegment),
            ("spiffe://td/./b", E::DotSegment),
            ("spiffe://td/a%20b", E::PathChar('%')),
            ("spiffe://td/a b", E::PathChar(' ')),
            ("spiffe://t*d/a", E::TrustDomainChar('*')),
            ("spiffe://td", E::NoPath),
        ] {
            assert_eq!(SpiffeId::parse(id), Err(want), "{id:?}");
        }
        let long = format!("spiffe://td/{}", "a".repeat(MAX_ID));
        assert!(matches!(
            SpiffeId::parse(&long),
            Err(E::TooLong(n)) if n == long.len()
        ));
        let long_td = format!("spiffe://{}/a", "t".repeat(256));
        assert_eq!(SpiffeId::parse(&long_td), Err(E::TrustDomainTooLong(256)));
        assert_eq!(
            TrustDomain::from_id("spiffe://td/a"),
            Err(E::UnexpectedPath)
        );
    }
}
