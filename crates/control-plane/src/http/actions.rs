//! `POST /actions`: who is asking, the rate limit, the body, the decision
//! ([`crate::domain::decision`]), its place in the writer's queue, and the answer in the
//! lineage's shape once the decision is committed.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use zt_core::json::{self, Map, Value};
use zt_tls::PeerIdentity;

use crate::chain::{Committed, Pending};
use crate::db::CapabilityUse;
use crate::domain::agents::Auth;
use crate::domain::asker;
use crate::domain::decision::{ActionRequest, Deciding};
use crate::domain::limits::Key;
use crate::domain::names::{name_ok, resource_ok, MAX_NAME};
use crate::error::{RequestError, SealError};
use crate::http::extract::{bearer, peer, read_body, source, St};
use crate::http::reply::{error, json_bytes, limited, Reject};
use crate::policy::RESERVED_CONTEXT;
use crate::shared::{Metrics, Shared};
use crate::util::now_ms;

/// What the connection and the headers say about who is asking.
struct Asking<'a> {
    token: Option<&'a str>,
    peer: Option<&'a PeerIdentity>,
    source: Option<std::net::IpAddr>,
    /// Limited as unauthenticated on the headers alone.
    unauthenticated: bool,
}

/// A decision in the writer's queue.
struct Queued {
    pending: Result<Pending, SealError>,
    /// The status of a deny: 401 when the asker authenticated as nobody, else 403.
    deny: StatusCode,
    /// The capability use an allow under one would be.
    used: Option<CapabilityUse>,
}

pub(crate) async fn actions(State(st): St, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let source = source(&parts);
    let token = bearer(&parts.headers).map(str::to_owned);
    let peer = peer(&parts);
    // The rate limit first, on what the connection and the headers say, before the body is
    // read: a refused request costs a hash and a map lookup.
    let early = early_key(&st, peer.as_ref(), token.as_deref()).await;
    if let Some(key) = &early {
        if let Err(wait) = st.limiter.check(key, source) {
            return limited(key, wait);
        }
    }
    let bytes = match read_body(body, st.body_limit).await {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let req = match parse_action(&bytes) {
        Ok(r) => r,
        Err(e) => {
            Metrics::bump(&st.metrics.bad_requests);
            return Reject::from(e).into_response();
        }
    };
    if early.is_none() {
        let key = if st.registry.read().await.is_active(&req.actor) {
            Key::Actor(req.actor.clone())
        } else {
            Key::Unauthenticated
        };
        if let Err(wait) = st.limiter.check(&key, source) {
            return limited(&key, wait);
        }
    }
    let asking = Asking {
        token: token.as_deref(),
        peer: peer.as_ref(),
        source,
        unauthenticated: early == Some(Key::Unauthenticated),
    };
    match queue(&st, req, &asking).await {
        Ok(queued) => answer(&st, queued).await,
        Err(r) => r,
    }
}

/// The bucket a request draws from, on the headers alone. An SVID's agent is limited as that
/// agent. In open mode a request without a token is limited by the actor it names, so its
/// body is read first (`None`).
async fn early_key(st: &Shared, peer: Option<&PeerIdentity>, token: Option<&str>) -> Option<Key> {
    let registry = st.registry.read().await;
    match peer {
        Some(PeerIdentity::Spiffe(id)) => Some(
            registry
                .spiffe_actor(id.as_str())
                .map_or(Key::Unauthenticated, |a| Key::Actor(a.to_owned())),
        ),
        Some(PeerIdentity::Refused(_)) => Some(Key::Unauthenticated),
        Some(PeerIdentity::Anonymous) | None => match registry.classify(token, now_ms()) {
            Auth::Agent(a) => Some(Key::Actor(a)),
            Auth::Missing if st.open => None,
            _ => Some(Key::Unauthenticated),
        },
    }
}

/// Decides `req` and queues its record under the registry's read lock: a rotation or
/// revocation (which holds the write lock until its record is sealed) is before or after this
/// decision on the chain, never beside it. `Err`: refused before any decision (429).
async fn queue(st: &Shared, req: ActionRequest, asking: &Asking<'_>) -> Result<Queued, Response> {
    let engine = st.engine();
    let registry = st.registry.read().await;
    let auth = registry.classify(asking.token, now_ms());
    // An SVID outranks the token: the connection's identity decides.
    let asker = asker::by_svid(&registry, asking.peer, &req.actor)
        .unwrap_or_else(|| asker::by_token(&auth, &req.actor, st.open));
    let identity = asker::cedar_identity(asking.peer, st.open && asking.token.is_none());
    // An unauthenticated refusal within the rate limit still gives way to agents: it
    // takes a place in the writer's queue only while half of it is free.
    if asking.unauthenticated && asker.is_unauthenticated() && !st.chain.half_free() {
        drop(registry);
        st.limiter.refuse(&Key::Unauthenticated, asking.source);
        return Err(limited(&Key::Unauthenticated, Duration::from_secs(1)));
    }
    let caps = st.caps.read().await;
    let deciding = Deciding {
        registry: &registry,
        caps: &caps,
        keyring: &st.keyring,
        engine: &engine,
        broker: &st.broker,
    };
    let made = deciding.decide(req, &asker, &identity);
    let pending = st.chain.enqueue(made.decided);
    drop(caps);
    let deny = if asker.is_unauthenticated() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::FORBIDDEN
    };
    Ok(Queued {
        pending,
        deny,
        used: made.used,
    })
}

/// Waits for the decision's commit and answers it.
async fn answer(st: &Shared, queued: Queued) -> Response {
    let committed = match queued.pending {
        Ok(p) => p.committed().await,
        Err(e) => Err(e),
    };
    let committed = match committed {
        Ok(c) => c,
        Err(e) => {
            Metrics::bump(&st.metrics.unavailable);
            let r = Reject::unavailable(format!("no decision: {e}; nothing is allowed"));
            let r = if matches!(e, SealError::Busy) {
                r.retry_after(1)
            } else {
                r
            };
            return r.into_response();
        }
    };
    let answered = lineage(&committed);
    if let (Some(u), Ok((true, _))) = (&queued.used, &answered) {
        // What the broker's execution report will name; without it the report could not be
        // linked, so the allow is not given out.
        if let Err(e) = st.db().add_capability_use(&committed.current_hash, u) {
            Metrics::bump(&st.metrics.unavailable);
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("no decision: the allow under capability {} is on record but state.db could not keep it ({e}); nothing is allowed, retry", u.capability),
            );
        }
    }
    match answered {
        Ok((true, body)) => {
            Metrics::bump(&st.metrics.allowed);
            json_bytes(StatusCode::OK, body)
        }
        Ok((false, body)) => {
            Metrics::bump(&st.metrics.denied);
            json_bytes(queued.deny, body)
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("no decision: {e}")),
    }
}

/// Why a sealed envelope did not read back for its answer.
#[derive(Debug, thiserror::Error)]
enum Unreadable {
    #[error("{0}")]
    Json(#[from] zt_core::error::JsonError),
    #[error("sealed envelope is not an object")]
    NotObject,
}

/// The answer: the lineage's shape, the envelope's other members under `audit`.
fn lineage(committed: &Committed) -> Result<(bool, Vec<u8>), Unreadable> {
    let Value::Object(env) = json::parse(committed.json.as_bytes())? else {
        return Err(Unreadable::NotObject);
    };
    let allow = env.get("decision").and_then(Value::as_str) == Some("allow");
    Ok((allow, zt_core::envelope::lineage_answer(&env)))
}

/// Reads and checks an `/actions` body, member by member.
fn parse_action(body: &[u8]) -> Result<ActionRequest, RequestError> {
    let v = json::parse(body).map_err(RequestError::NotJson)?;
    let Value::Object(m) = v else {
        return Err(RequestError::NotObject {
            found: v.type_name(),
        });
    };
    let mut req = ActionRequest {
        actor: String::new(),
        action: String::new(),
        resource: String::new(),
        context: None,
        request_id: None,
        capability: None,
    };
    for (k, v) in m.iter() {
        let s = || {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| RequestError::NotString {
                    member: k.to_owned(),
                    found: v.type_name(),
                })
        };
        match (k, v) {
            ("actor", _) => req.actor = s()?,
            ("action", _) => req.action = s()?,
            ("resource" | "capability" | "context", Value::Null) => {}
            ("resource", _) => req.resource = s()?,
            ("request_id", _) => req.request_id = Some(s()?),
            ("capability", _) => req.capability = Some(s()?),
            ("context", _) => req.context = Some(context(v)?),
            (other, _) => {
                return Err(RequestError::UnknownMember {
                    member: zt_core::envelope::shorten(other),
                    expected: &[],
                })
            }
        }
    }
    name_ok("actor", &req.actor, MAX_NAME)?;
    name_ok("action", &req.action, MAX_NAME)?;
    resource_ok(&req.resource)?;
    if let Some(r) = &req.request_id {
        name_ok("request_id", r, MAX_NAME)?;
    }
    Ok(req)
}

/// The request's `context`: an object with no member the control plane sets itself.
fn context(v: &Value) -> Result<Map, RequestError> {
    let Value::Object(c) = v else {
        return Err(RequestError::ContextNotObject {
            found: v.type_name(),
        });
    };
    if let Some(k) = RESERVED_CONTEXT.iter().find(|k| c.contains_key(k)) {
        return Err(RequestError::ReservedContext(k));
    }
    // Sealed, the context is written in RFC 8785 form: a number whose form is an integer no
    // double holds (2^64 is 18446744073709552000) would make a record its verifiers refuse.
    if let Some((path, n)) = json::first_inexact_number(v) {
        let mut text = Vec::new();
        json::write_number(n, &mut text);
        return Err(RequestError::InexactNumber {
            path: zt_core::envelope::shorten(&path),
            text: String::from_utf8_lossy(&text).into_owned(),
        });
    }
    Ok(c.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_member_by_member() {
        let ok = parse_action(
            br#"{"actor":"a","action":"x.y","resource":"r","context":{"k":1},"request_id":"q"}"#,
        )
        .unwrap();
        assert_eq!((ok.actor.as_str(), ok.resource.as_str()), ("a", "r"));
        for (body, needle) in [
            (
                &br#"{"actor":"a","action":"x","actor":"b"}"#[..],
                "duplicate",
            ),
            (br#"{"actor":"a"}"#, "`action` must not be empty"),
            (br#"{"actor":7,"action":"x"}"#, "`actor` must be a string"),
            (
                br#"{"actor":"a","action":"x","sudo":true}"#,
                "unknown member `sudo`",
            ),
            (
                br#"{"actor":"a","action":"x","context":[1]}"#,
                "`context` must be an object",
            ),
            (
                br#"{"actor":"a","action":"x","context":{"n":9007199254740993}}"#,
                "no double holds exactly",
            ),
            (
                br#"{"actor":"a","action":"x","context":{"big":[18446744073709551616]}}"#,
                "`context.big[0]` is 18446744073709552000",
            ),
            (br#"[1]"#, "not an object"),
            (br#"{"actor":"a\u0000","action":"x"}"#, "control character"),
            (b"{", "not JSON"),
        ] {
            let err = parse_action(body).err().unwrap().to_string();
            assert!(
                err.contains(needle),
                "{}: {err}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
