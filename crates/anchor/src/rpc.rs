//! RPC URLs and the credentials they carry.
//!
//! Node providers put the key in the URL: `https://user:pass@host` (basic auth), a query
//! value (`?apikey=...`), or a path segment (Infura `/v3/<project id>`, Alchemy
//! `/v2/<key>`, QuickNode `/<token>/`, Ankr `/eth/<key>`). Such a URL is a secret, and it
//! travels into errors: reqwest's "error sending request for url (...)", our own "connecting
//! to ...". This module is the one home of the rule that hides it; everything that names an
//! RPC URL to a person (errors, logs, `Debug`) goes through [`RpcUrl`] or [`redact`].
//!
//! The rule, erring towards hiding: the user name and password, every query value and the
//! fragment are replaced by `***`, and so is every path segment that looks like a key (16
//! characters or more, or 8 or more mixing letters and digits). Scheme, host, port, query
//! keys and short path segments (`/v3`, `/rpc`, `/base-sepolia`) stay, so the operator can
//! still tell which node was meant. A URL that does not parse is not shown at all.

use std::fmt;
use std::str::FromStr;

use alloy::transports::http::reqwest::Url;

const HIDDEN: &str = "***";

/// A path segment that may be a provider key.
fn looks_like_key(segment: &str) -> bool {
    let letters = segment.chars().any(|c| c.is_ascii_alphabetic());
    let digits = segment.chars().any(|c| c.is_ascii_digit());
    segment.len() >= 16 || (segment.len() >= 8 && letters && digits)
}

/// The parts of `url` that are secret, longest first (so a scrub replaces a whole key before
/// any shorter secret inside it). Empty for a URL that does not parse: then only the whole
/// text can be scrubbed.
fn secret_parts(url: &Url) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |s: &str| {
        if !s.is_empty() {
            out.push(s.to_owned());
            // Errors may quote the decoded or the encoded form.
            if let Ok(decoded) = percent_decode(s) {
                if decoded != s {
                    out.push(decoded);
                }
            }
        }
    };
    push(url.username());
    push(url.password().unwrap_or(""));
    if let Some(q) = url.query() {
        for pair in q.split('&') {
            push(pair.split_once('=').map_or("", |(_, v)| v));
        }
    }
    push(url.fragment().unwrap_or(""));
    for seg in url.path_segments().into_iter().flatten() {
        if looks_like_key(seg) {
            push(seg);
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

fn percent_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                #[allow(clippy::cast_possible_truncation, reason = "two hex digits")]
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
}

/// `url` with its credentials replaced by `***` (the rule in the module docs).
pub fn redact(url: &str) -> String {
    let Ok(parsed) = Url::parse(url.trim()) else {
        return "<an RPC URL that does not parse; not shown, it may hold a key>".into();
    };
    let mut out = format!("{}://", parsed.scheme());
    if !parsed.username().is_empty() || parsed.password().is_some() {
        out.push_str(HIDDEN);
        if parsed.password().is_some() {
            out.push(':');
            out.push_str(HIDDEN);
        }
        out.push('@');
    }
    out.push_str(parsed.host_str().unwrap_or(""));
    if let Some(p) = parsed.port() {
        out.push_str(&format!(":{p}"));
    }
    match parsed.path_segments() {
        Some(segs) => {
            for seg in segs {
                out.push('/');
                out.push_str(if looks_like_key(seg) { HIDDEN } else { seg });
            }
        }
        None => out.push_str(parsed.path()),
    }
    if let Some(q) = parsed.query() {
        out.push('?');
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}={HIDDEN}"),
                None => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if parsed.fragment().is_some() {
        out.push('#');
        out.push_str(HIDDEN);
    }
    out
}

/// An RPC URL as configured. `Display` and `Debug` show it redacted; [`expose`](Self::expose)
/// gives the real one to the code that connects; [`scrub`](Self::scrub) cleans any text
/// (an error from the transport, say) of it.
#[derive(Clone, PartialEq, Eq)]
pub struct RpcUrl {
    raw: String,
    shown: String,
    secrets: Vec<String>,
}

impl RpcUrl {
    /// Takes `raw` as given (it is checked when connecting).
    pub fn new(raw: impl Into<String>) -> Self {
        let raw = raw.into();
        let shown = redact(&raw);
        let secrets = Url::parse(raw.trim())
            .map(|u| secret_parts(&u))
            .unwrap_or_default();
        Self {
            raw,
            shown,
            secrets,
        }
    }

    /// The URL itself, for the transport only.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The URL as people may see it.
    pub fn redacted(&self) -> &str {
        &self.shown
    }

    /// `text` with this URL, in any form it is quoted (as given, as the URL parser writes it)
    /// replaced by its redacted form, and then every secret part of it by `***`. Secrets under
    /// 4 characters are not scrubbed one by one (they would garble the text) but still go
    /// with the whole URL.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let mut forms = vec![self.raw.clone(), self.raw.trim().to_owned()];
        if let Ok(u) = Url::parse(self.raw.trim()) {
            forms.push(u.to_string());
        }
        forms.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for f in forms.iter().filter(|f| !f.is_empty()) {
            out = out.replace(f.as_str(), &self.shown);
        }
        for s in self.secrets.iter().filter(|s| s.len() >= 4) {
            out = out.replace(s.as_str(), HIDDEN);
        }
        out
    }
}

impl fmt::Display for RpcUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for RpcUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RpcUrl({})", self.shown)
    }
}

/// Never fails: a bad URL is reported when connecting, redacted, instead of by a parser that
/// would echo it (clap prints the value of a flag it cannot parse).
impl FromStr for RpcUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl From<&str> for RpcUrl {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<&String> for RpcUrl {
    fn from(s: &String) -> Self {
        Self::new(s.as_str())
    }
}

impl From<String> for RpcUrl {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_keys_are_hidden_wherever_they_sit() {
        for (url, shown) in [
            ("https://sepolia.base.org", "https://sepolia.base.org/"),
            ("http://127.0.0.1:8545/", "http://127.0.0.1:8545/"),
            (
                "https://alice:s3cret@rpc.example.com/",
                "https://***:***@rpc.example.com/",
            ),
            (
                "https://KEYKEYKEY@rpc.example.com/",
                "https://***@rpc.example.com/",
            ),
            (
                "https://base-sepolia.infura.io/v3/0123456789abcdef0123456789abcdef",
                "https://base-sepolia.infura.io/v3/***",
            ),
            (
                "https://base-sepolia.g.alchemy.com/v2/AbCdEf_123-XyZ987654321",
                "https://base-sepolia.g.alchemy.com/v2/***",
            ),
            (
                "https://x.base-sepolia.quiknode.pro/9f8e7d6c5b4a39281706f5e4d3c2b1a0/",
                "https://x.base-sepolia.quiknode.pro/***/",
            ),
            (
                "https://rpc.example.com/rpc?apikey=k3y&chain=base",
                "https://rpc.example.com/rpc?apikey=***&chain=***",
            ),
            (
                "https://rpc.example.com/#tok",
                "https://rpc.example.com/#***",
            ),
        ] {
            assert_eq!(redact(url), shown, "{url}");
            let r = RpcUrl::new(url);
            assert_eq!(format!("{r}"), shown);
            assert_eq!(format!("{r:?}"), format!("RpcUrl({shown})"));
        }
        assert!(!redact("not a url s3cret").contains("s3cret"));
    }

    #[test]
    fn scrub_cleans_errors_that_quote_the_url_or_its_parts() {
        let r = RpcUrl::new(
            "https://alice:pa%24%24word@rpc.example.com/v3/0123456789abcdef0123?apikey=topsecret",
        );
        let errors = [
            format!("error sending request for url ({})", r.expose()),
            "error sending request for url (https://rpc.example.com/v3/0123456789abcdef0123?apikey=topsecret)".to_owned(),
            "auth failed for alice with pa$$word".to_owned(),
        ];
        for e in errors {
            let s = r.scrub(&e);
            for secret in [
                "pa%24%24word",
                "pa$$word",
                "0123456789abcdef0123",
                "topsecret",
                "alice",
            ] {
                assert!(!s.contains(secret), "{secret} in {s}");
            }
        }
        assert_eq!(r.scrub("nothing to hide"), "nothing to hide");
    }
}
