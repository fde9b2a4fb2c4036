//! Small helpers of every layer: random ids, token hashes and ids, times, and building
//! `zt_core::json` values (the one JSON value type of the crate; see `crate::http::reply`
//! for how answers are written, [`crate::policy::to_serde`] for the one conversion, Cedar's).

use zt_core::json::{Map, Value};
use zt_core::time::Timestamp;
use zt_core::Hash32;

/// Now, in Unix milliseconds (the store's clock: `received_at_ms` is read with it).
pub(crate) fn now_ms() -> i64 {
    zt_store::now_ms()
}

/// `bytes` random bytes from the OS, as lowercase hex.
pub(crate) fn random_hex(bytes: usize) -> String {
    use rand_core::RngCore;
    let mut b = vec![0u8; bytes];
    rand_core::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// What the control plane keeps of a bearer token: its SHA-256.
pub(crate) fn token_hash(token: &str) -> Hash32 {
    Hash32::digest(token.as_bytes())
}

/// The token's id in records and answers: the first 16 hex digits of its SHA-256. It tells
/// tokens apart and reveals nothing of them.
pub(crate) fn token_id(hash: &Hash32) -> String {
    hash.to_hex()[..16].to_owned()
}

/// Unix milliseconds as RFC 3339 with milliseconds.
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    Timestamp::from_unix_millis(ms).to_rfc3339_millis()
}

/// A JSON string.
pub(crate) fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// A JSON object of `members`, in their order.
pub(crate) fn object<'a>(members: impl IntoIterator<Item = (&'a str, Value)>) -> Map {
    let mut m = Map::new();
    for (k, v) in members {
        m.push(k.to_owned(), v);
    }
    m
}
