//! Rate limits on `POST /actions` and `POST /executions`, and what a flood leaves on the chain.
//!
//! Two kinds of token bucket ([`RateLimit`]): one shared by every request that does not
//! authenticate (no token, an unknown, expired or retired one), and one per authenticated
//! agent (in open mode: per registered actor named in the body) or broker (the per-agent
//! setting). They are checked on the
//! headers, before the body is read, so a refused request costs a header parse and a map
//! lookup; only an open-mode request without a token, limited by the actor its body names, is
//! read first. Past a limit the answer is 429 with `Retry-After`.
//!
//! Such a request is not sealed, signed and fsynced on its own: that is the work a flood
//! wants the control plane to do. It is counted instead, by limit and by source address, and
//! each window ([`flush`]: every `summary_window`, and once more on shutdown) the counts
//! become one sealed record per limit that refused anything, on the control plane's own chain
//! ([`crate::chain::Lane::Admin`]):
//!
//! ```text
//! actor "zt.control-plane", action "zt.ratelimit.summary", resource "unauthenticated" or
//! "agent/NAME", decision "deny", reason "N unauthenticated requests refused (rate limit ...)
//! between T1 and T2 from ADDR (n), ...", context {limit, refused, window_start, window_end,
//! sources: [{address, refused}], other_sources, ...}
//! ```
//!
//! So every readable `/actions` request is on the chain individually, or counted in the
//! sealed summary of its window. A summary that cannot be sealed goes back into the window
//! and is tried again at the next one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use zt_core::json::{Map, Value};
use zt_core::time::Timestamp;

use crate::chain::{ChainHandle, Decided, Lane};
use crate::domain::record::Stamp;
use crate::util::text;

/// A token bucket's settings: `per_second` tokens added each second, at most `burst` held.
/// `per_second` 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed at once after a quiet spell.
    pub burst: u32,
}

impl RateLimit {
    /// No limit.
    pub const OFF: Self = Self {
        per_second: 0.0,
        burst: 0,
    };

    /// Default for requests that do not authenticate: a misconfigured agent retries well
    /// under this; a flood is cut to it.
    pub const UNAUTHENTICATED: Self = Self {
        per_second: 20.0,
        burst: 40,
    };

    /// Default per agent: about 40% of what one control plane seals on two cores, so one
    /// agent cannot take the whole writer.
    pub const PER_ACTOR: Self = Self {
        per_second: 1000.0,
        burst: 2000,
    };

    fn on(&self) -> bool {
        self.per_second > 0.0 && self.per_second.is_finite()
    }

    fn describe(&self) -> String {
        format!("{}/s, burst {}", self.per_second, self.burst.max(1))
    }
}

/// Which bucket a request draws from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// Everything that does not authenticate.
    Unauthenticated,
    /// One agent.
    Actor(String),
    /// One execution broker.
    Broker(String),
}

impl Key {
    fn resource(&self) -> String {
        match self {
            Self::Unauthenticated => "unauthenticated".into(),
            Self::Actor(a) => format!("agent/{a}"),
            Self::Broker(b) => format!("broker/{b}"),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Actor(_) => "actor",
            Self::Broker(_) => "broker",
        }
    }

    /// Who is limited, for people: "unauthenticated requests", "agent NAME", "broker NAME".
    pub(crate) fn who(&self) -> String {
        match self {
            Self::Unauthenticated => "unauthenticated requests".to_owned(),
            Self::Actor(a) => format!("agent {a}"),
            Self::Broker(b) => format!("broker {b}"),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Source addresses kept per limit and window; refusals from further addresses are counted
/// together, so a flood from many addresses cannot grow the window.
const MAX_SOURCES: usize = 32;

#[derive(Debug, Default, Clone)]
pub(crate) struct Count {
    refused: u64,
    sources: HashMap<Option<IpAddr>, u64>,
    other_sources: u64,
}

impl Count {
    fn add(&mut self, source: Option<IpAddr>, n: u64) {
        self.refused += n;
        if let Some(c) = self.sources.get_mut(&source) {
            *c += n;
        } else if self.sources.len() < MAX_SOURCES {
            self.sources.insert(source, n);
        } else {
            self.other_sources += n;
        }
    }

    fn merge(&mut self, other: Count) {
        for (s, n) in other.sources {
            self.add(s, n);
        }
        self.refused += other.other_sources;
        self.other_sources += other.other_sources;
    }
}

#[derive(Debug)]
struct Window {
    start: Timestamp,
    counts: HashMap<Key, Count>,
}

/// The buckets, the current window's counts, and the counters for `/metrics`.
#[derive(Debug)]
pub(crate) struct Limiter {
    unauthenticated: RateLimit,
    per_actor: RateLimit,
    buckets: Mutex<HashMap<Key, Bucket>>,
    window: Mutex<Window>,
    pub(crate) refused_unauthenticated: AtomicU64,
    pub(crate) refused_actor: AtomicU64,
    pub(crate) summaries: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Limiter {
    pub(crate) fn new(unauthenticated: RateLimit, per_actor: RateLimit) -> Self {
        Self {
            unauthenticated,
            per_actor,
            buckets: Mutex::new(HashMap::new()),
            window: Mutex::new(Window {
                start: Timestamp::now(),
                counts: HashMap::new(),
            }),
            refused_unauthenticated: AtomicU64::new(0),
            refused_actor: AtomicU64::new(0),
            summaries: AtomicU64::new(0),
        }
    }

    pub(crate) fn limit(&self, key: &Key) -> RateLimit {
        match key {
            Key::Unauthenticated => self.unauthenticated,
            Key::Actor(_) | Key::Broker(_) => self.per_actor,
        }
    }

    /// Takes a token from `key`'s bucket; when there is none, counts the refusal in the
    /// window and says how long until there is one.
    pub(crate) fn check(&self, key: &Key, source: Option<IpAddr>) -> Result<(), Duration> {
        let limit = self.limit(key);
        if !limit.on() {
            return Ok(());
        }
        let now = Instant::now();
        let burst = f64::from(limit.burst.max(1));
        let wait = {
            let mut buckets = lock(&self.buckets);
            let b = buckets.entry(key.clone()).or_insert(Bucket {
                tokens: burst,
                last: now,
            });
            let refill = now.duration_since(b.last).as_secs_f64() * limit.per_second;
            b.tokens = (b.tokens + refill).min(burst);
            b.last = now;
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                return Ok(());
            }
            Duration::from_secs_f64((1.0 - b.tokens) / limit.per_second)
        };
        self.refuse(key, source);
        Err(wait)
    }

    /// Counts a refusal that was not the bucket's (the writer's queue is too full to take an
    /// unauthenticated request's record): it goes into the window's summary like the rest.
    pub(crate) fn refuse(&self, key: &Key, source: Option<IpAddr>) {
        match key {
            Key::Unauthenticated => &self.refused_unauthenticated,
            Key::Actor(_) | Key::Broker(_) => &self.refused_actor,
        }
        .fetch_add(1, Ordering::Relaxed);
        lock(&self.window)
            .counts
            .entry(key.clone())
            .or_default()
            .add(source, 1);
    }

    /// Forgets `actor`'s bucket (it was revoked).
    pub(crate) fn forget(&self, actor: &str) {
        lock(&self.buckets).remove(&Key::Actor(actor.to_owned()));
    }

    /// Closes the window: its start, its end (now), and what it counted.
    fn take(&self) -> (Timestamp, Timestamp, Vec<(Key, Count)>) {
        let mut w = lock(&self.window);
        let end = Timestamp::now();
        let start = std::mem::replace(&mut w.start, end);
        let counts = std::mem::take(&mut w.counts).into_iter().collect();
        (start, end, counts)
    }

    /// Puts back counts whose summary could not be sealed, into the window now open.
    fn restore(&self, start: Timestamp, key: Key, count: Count) {
        let mut w = lock(&self.window);
        if start.unix_nanos() < w.start.unix_nanos() {
            w.start = start;
        }
        w.counts.entry(key).or_default().merge(count);
    }
}

fn summary(
    key: &Key,
    count: &Count,
    limit: RateLimit,
    window: (&str, &str),
    stamp: &Stamp<'_>,
) -> Decided {
    let (start, end) = window;
    let mut sources: Vec<(String, u64)> = count
        .sources
        .iter()
        .map(|(ip, n)| (ip.map_or_else(|| "unknown".into(), |ip| ip.to_string()), *n))
        .collect();
    sources.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let who = match key {
        Key::Unauthenticated => "unauthenticated requests".to_owned(),
        other => format!("requests of {}", other.who()),
    };
    let mut from: Vec<String> = sources
        .iter()
        .take(8)
        .map(|(a, n)| format!("{a} ({n})"))
        .collect();
    let unlisted = count.other_sources + sources.iter().skip(8).map(|(_, n)| n).sum::<u64>();
    if unlisted > 0 {
        from.push(format!("other addresses ({unlisted})"));
    }
    let reason = format!(
        "{} {who} refused (rate limit {}) between {start} and {end} from {}",
        count.refused,
        limit.describe(),
        from.join(", ")
    );
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^53")]
    let num = |n: u64| Value::Number(n as f64);
    let mut ctx = stamp.fresh_context("summary", "zt.control-plane");
    ctx.push("limit".into(), text(key.label()));
    ctx.push("rate".into(), text(limit.describe()));
    ctx.push("refused".into(), num(count.refused));
    ctx.push("window_start".into(), text(start));
    ctx.push("window_end".into(), text(end));
    ctx.push(
        "sources".into(),
        Value::Array(
            sources
                .iter()
                .map(|(a, n)| {
                    let mut m = Map::new();
                    m.push("address".into(), text(a));
                    m.push("refused".into(), num(*n));
                    Value::Object(m)
                })
                .collect(),
        ),
    );
    ctx.push("other_sources".into(), num(count.other_sources));
    Decided {
        lane: Lane::Admin,
        actor: "zt.control-plane".into(),
        action: "zt.ratelimit.summary".into(),
        resource: key.resource(),
        allow: false,
        reason,
        context: ctx,
    }
}

/// Seals the window's summaries on `chain`; what fails goes back into the window.
pub(crate) async fn flush(limiter: &Limiter, chain: &ChainHandle, stamp: &Stamp<'_>) {
    let (start, end, counts) = limiter.take();
    if counts.is_empty() {
        return;
    }
    let (start_s, end_s) = (start.to_rfc3339_millis(), end.to_rfc3339_millis());
    for (key, count) in counts {
        let limit = limiter.limit(&key);
        let d = summary(&key, &count, limit, (&start_s, &end_s), stamp);
        match chain.append(d).await {
            Ok(_) => {
                limiter.summaries.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                eprintln!(
                    "zt-control-plane: the rate-limit summary of {} refused {} could not be sealed ({e}); kept for the next window",
                    count.refused,
                    key.label()
                );
                limiter.restore(start, key, count);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refuses_past_its_burst_and_counts_by_source() {
        let l = Limiter::new(
            RateLimit {
                per_second: 1.0,
                burst: 3,
            },
            RateLimit::OFF,
        );
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let k = Key::Unauthenticated;
        for _ in 0..3 {
            assert!(l.check(&k, Some(a)).is_ok());
        }
        let wait = l.check(&k, Some(a)).unwrap_err();
        assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1));
        assert!(l.check(&k, None).is_err());
        // per-actor off: never refused
        for _ in 0..100 {
            assert!(l.check(&Key::Actor("x".into()), Some(a)).is_ok());
        }
        let (_, _, counts) = l.take();
        assert_eq!(counts.len(), 1);
        let c = &counts[0].1;
        assert_eq!(
            (c.refused, c.sources[&Some(a)], c.sources[&None]),
            (2, 1, 1)
        );
        assert_eq!(l.refused_unauthenticated.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn sources_past_the_cap_are_counted_together_and_named_in_the_reason() {
        let mut c = Count::default();
        for i in 0..40u8 {
            c.add(Some(IpAddr::from([10, 0, 0, i])), 2);
        }
        assert_eq!((c.refused, c.sources.len(), c.other_sources), (80, 32, 16));
        let stamp = Stamp {
            policy_version: "sha256:x",
            broker: "b",
        };
        let d = summary(
            &Key::Unauthenticated,
            &c,
            RateLimit::UNAUTHENTICATED,
            ("T1", "T2"),
            &stamp,
        );
        assert!(
            d.reason.starts_with("80 unauthenticated requests refused"),
            "{}",
            d.reason
        );
        assert!(d.reason.contains("between T1 and T2"), "{}", d.reason);
        assert!(d.reason.contains("other addresses (64)"), "{}", d.reason);
        assert_eq!(d.resource, "unauthenticated");
        assert!(!d.allow);
    }
}
