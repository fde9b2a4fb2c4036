//! What a connection may hold, on every listener (TLS or not): how many connections are open
//! in all and from one source address, how long a client may take to send a request's head,
//! and how long a kept-alive connection may sit idle.
//!
//! Without these, a few hundred clients that each send half a request line and wait hold
//! their connections forever, and once the process's descriptors are gone nobody else gets
//! an answer. With them:
//!
//! - a connection past [`ConnectionLimits::max_connections`], or past
//!   [`ConnectionLimits::max_per_address`] from its source address (an IPv6 address counts by
//!   its /64), is closed as soon as it is accepted, before a handshake or a byte is read;
//! - a request's head must be complete [`ConnectionLimits::header_timeout`] after its first
//!   byte (for a connection's first request: after it was accepted, or after its TLS
//!   handshake);
//! - a kept-alive connection that has answered a request and not begun another is closed
//!   after [`ConnectionLimits::idle_timeout`];
//! - while a request is being served (its body read, its handler run) the server's request
//!   timeout applies instead.
//!
//! Each refusal and each close is counted on `/metrics` ([`Connections::render_metrics`]).
//! The defaults keep the total below the process's descriptor limit, so connections run out
//! before descriptors do (the store, the keyring and the log files still open).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Descriptors kept back from the default connection limit for everything else the server
/// opens (store, WAL, keyring, logs, outgoing connections).
const RESERVED_DESCRIPTORS: u64 = 128;

/// What a connection may hold; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From a request's first byte (a connection's first request: from its accept or its
    /// handshake) until its head is complete. Default 10 s.
    pub header_timeout: Duration,
    /// A kept-alive connection between an answer and the next request's first byte.
    /// Default 30 s.
    pub idle_timeout: Duration,
    /// Connections open at once, all sources together. Default: the process's descriptor
    /// limit less 128, at least 16.
    pub max_connections: usize,
    /// Connections open at once from one source address (IPv6: one /64). Default 256, or
    /// a quarter of `max_connections` when that is less.
    pub max_per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        let max_connections = default_max_connections();
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections,
            max_per_address: default_max_per_address(max_connections),
        }
    }
}

/// The default total: the soft descriptor limit less [`RESERVED_DESCRIPTORS`], at least 16.
pub fn default_max_connections() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    usize::try_from(soft.saturating_sub(RESERVED_DESCRIPTORS).max(16)).unwrap_or(usize::MAX)
}

/// The default per address for a total: 256, or a quarter of the total when that is less.
pub fn default_max_per_address(max_connections: usize) -> usize {
    (max_connections / 4).clamp(1, 256)
}

/// Why a connection was refused or closed, as counted on `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Refused at accept: `max_connections` open.
    MaxConnections,
    /// Refused at accept: `max_per_address` open from its address.
    MaxPerAddress,
    /// Closed: the head was not complete in time.
    HeaderTimeout,
    /// Closed: idle too long between requests.
    IdleTimeout,
}

impl Outcome {
    const ALL: [Self; 4] = [
        Self::MaxConnections,
        Self::MaxPerAddress,
        Self::HeaderTimeout,
        Self::IdleTimeout,
    ];

    /// The label on `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Self::MaxConnections => "max_connections",
            Self::MaxPerAddress => "max_per_address",
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
        }
    }
}

/// The connections of one listener: its limits, who is connected, and the counts.
#[derive(Debug)]
pub struct Connections {
    limits: ConnectionLimits,
    open: Mutex<Open>,
    accepted: AtomicU64,
    outcomes: [AtomicU64; Outcome::ALL.len()],
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Connections count by address; an IPv6 client usually holds a whole /64, so that is what
/// one source is. IPv4-mapped IPv6 addresses count as the IPv4 address.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Connections {
    /// A listener's connections under these limits (a zero limit counts as one).
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits: ConnectionLimits {
                max_connections: limits.max_connections.max(1),
                max_per_address: limits.max_per_address.max(1),
                ..limits
            },
            open: Mutex::new(Open::default()),
            accepted: AtomicU64::new(0),
            outcomes: Default::default(),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }

    /// How many connections ended (or were refused) this way so far.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome as usize].load(Ordering::Relaxed)
    }

    pub(crate) fn counted(&self, outcome: Outcome) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A place for a connection just accepted from `addr`, or the limit it is past (counted).
    pub(crate) fn admit(self: &Arc<Self>, addr: SocketAddr) -> Result<Slot, Outcome> {
        let key = source_key(addr.ip());
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let refused = if open.total >= self.limits.max_connections {
            Some(Outcome::MaxConnections)
        } else if open.by_address.get(&key).copied().unwrap_or(0) >= self.limits.max_per_address {
            Some(Outcome::MaxPerAddress)
        } else {
            None
        };
        if let Some(why) = refused {
            drop(open);
            self.counted(why);
            return Err(why);
        }
        open.total += 1;
        *open.by_address.entry(key).or_insert(0) += 1;
        drop(open);
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            connections: Arc::clone(self),
            key,
        })
    }

    /// Prometheus text for `/metrics`: connections open, accepted, refused at accept and
    /// closed by the server, by reason.
    pub fn render_metrics(&self) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP zt_connections_open Connections open now.\n# TYPE zt_connections_open gauge\nzt_connections_open {}",
            self.open()
        );
        let _ = writeln!(
            o,
            "# HELP zt_connections_accepted_total Connections accepted within the limits.\n# TYPE zt_connections_accepted_total counter\nzt_connections_accepted_total {}",
            self.accepted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP zt_connections_refused_total Connections closed at accept, by the limit they were past.\n# TYPE zt_connections_refused_total counter"
        );
        for o2 in [Outcome::MaxConnections, Outcome::MaxPerAddress] {
            let _ = writeln!(
                o,
                "zt_connections_refused_total{{reason=\"{}\"}} {}",
                o2.label(),
                self.count(o2)
            );
        }
        let _ = writeln!(
            o,
            "# HELP zt_connections_closed_total Connections the server closed, by reason.\n# TYPE zt_connections_closed_total counter"
        );
        for o2 in [Outcome::HeaderTimeout, Outcome::IdleTimeout] {
            let _ = writeln!(
                o,
                "zt_connections_closed_total{{reason=\"{}\"}} {}",
                o2.label(),
                self.count(o2)
            );
        }
        o
    }
}

/// A connection's place in the counts; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    connections: Arc<Connections>,
    key: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.key);
            }
        }
    }
}

/// No such time (a field of [`Activity`] not set).
const NEVER: u64 = u64::MAX;

/// What a connection is doing, as its watchdog needs it: shared by the stream wrapper (first
/// byte of a head), the service wrapper (requests begun and answered) and the watchdog. Times
/// are milliseconds since `start`.
#[derive(Debug)]
pub(crate) struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    answered: AtomicU64,
    idle_since: AtomicU64,
    first_byte: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            answered: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            first_byte: AtomicU64::new(NEVER),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    /// Bytes arrived: the first of a head starts its clock.
    fn read_some(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.first_byte.load(Ordering::Relaxed) == NEVER
        {
            self.first_byte.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// A request's head is complete: the service has it.
    pub(crate) fn begun(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.first_byte.store(NEVER, Ordering::Relaxed);
    }

    /// Its answer is ready.
    pub(crate) fn answered(&self) {
        self.idle_since.store(self.now_ms(), Ordering::Relaxed);
        self.answered.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// When the connection is to be closed, and why; None while a request is served.
    pub(crate) fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, Outcome)> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let first = self.first_byte.load(Ordering::Relaxed);
        Some(if first != NEVER {
            (
                self.at(first) + limits.header_timeout,
                Outcome::HeaderTimeout,
            )
        } else if self.answered.load(Ordering::Relaxed) == 0 {
            (self.start + limits.header_timeout, Outcome::HeaderTimeout)
        } else {
            (
                self.at(self.idle_since.load(Ordering::Relaxed)) + limits.idle_timeout,
                Outcome::IdleTimeout,
            )
        })
    }
}

/// A stream that tells its connection's [`Activity`] when bytes arrive.
#[derive(Debug)]
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read_some();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: total,
            max_per_address: per,
            ..ConnectionLimits::default()
        }
    }

    #[test]
    fn admits_within_limits_and_gives_places_back() {
        let c = Connections::new(limits(3, 2));
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:1000".parse().unwrap();
        let s1 = c.admit(a).unwrap();
        let _s2 = c.admit(a).unwrap();
        assert_eq!(c.admit(a).unwrap_err(), Outcome::MaxPerAddress);
        let _s3 = c.admit(b).unwrap();
        assert_eq!(c.admit(b).unwrap_err(), Outcome::MaxConnections);
        assert_eq!(c.open(), 3);
        drop(s1);
        assert_eq!(c.open(), 2);
        let _s4 = c.admit(a).unwrap();
        assert_eq!(c.count(Outcome::MaxPerAddress), 1);
        assert_eq!(c.count(Outcome::MaxConnections), 1);
        let m = c.render_metrics();
        assert!(m.contains("zt_connections_open 3\n"), "{m}");
        assert!(
            m.contains("zt_connections_refused_total{reason=\"max_per_address\"} 1\n"),
            "{m}"
        );
    }

    #[test]
    fn one_ipv6_slash_64_is_one_source_and_mapped_v4_is_v4() {
        let c = Connections::new(limits(100, 1));
        let _a = c.admit("[2001:db8::1]:1".parse().unwrap()).unwrap();
        assert_eq!(
            c.admit("[2001:db8::ffff:2]:1".parse().unwrap())
                .unwrap_err(),
            Outcome::MaxPerAddress
        );
        let _b = c.admit("[2001:db8:0:1::1]:1".parse().unwrap()).unwrap();
        let _v4 = c.admit("192.0.2.7:1".parse().unwrap()).unwrap();
        assert_eq!(
            c.admit("[::ffff:192.0.2.7]:1".parse().unwrap())
                .unwrap_err(),
            Outcome::MaxPerAddress
        );
    }

    #[test]
    fn deadlines_follow_what_the_connection_is_doing() {
        let l = ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            ..ConnectionLimits::default()
        };
        let a = Activity::new();
        // New: the first head within the header timeout of the start.
        assert_eq!(
            a.deadline(&l),
            Some((a.start + l.header_timeout, Outcome::HeaderTimeout))
        );
        a.begun();
        assert_eq!(a.deadline(&l), None, "served: the request timeout applies");
        a.answered();
        let (at, why) = a.deadline(&l).unwrap();
        assert_eq!(why, Outcome::IdleTimeout);
        assert!(at >= a.start + l.idle_timeout);
        // The next head's first byte starts the header clock, which bytes do not extend.
        a.read_some();
        let (at, why) = a.deadline(&l).unwrap();
        assert_eq!(why, Outcome::HeaderTimeout);
        std::thread::sleep(Duration::from_millis(5));
        a.read_some();
        assert_eq!(a.deadline(&l).unwrap().0, at);
    }

    #[test]
    fn defaults_stay_under_the_descriptor_limit() {
        let l = ConnectionLimits::default();
        let (soft, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert!(u64::try_from(l.max_connections).unwrap() < soft.max(144));
        assert!(l.max_per_address <= 256 && l.max_per_address <= l.max_connections);
    }
}
