//! `POST /executions`: a broker's signed execution report, sealed on the decision chain as
//! `zt.broker.execution` ([`crate::domain::capabilities::Filed`]): 201 an attested execution
//! linked to its allow; 409 a broker's report that fails a check; 403 a report filed by an
//! agent (its own claim) or by nobody. Each is sealed. Rate-limited per agent and per broker,
//! like `/actions`.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use zt_core::json::{Map, Value};
use zt_core::Hash32;

use crate::db::{CapabilityUse, Claim};
use crate::domain::asker::Caller;
use crate::domain::capabilities::{Filed, Filer, NotAccepted, MAX_REPORT};
use crate::domain::limits::Key;
use crate::domain::record::Stamp;
use crate::http::extract::{caller, object, peer, source, St};
use crate::http::reply::{limited, unrecorded, with_audit, Reject};
use crate::shared::Shared;

/// Exactly one attested record per allow: the claim, taken before the record is sealed.
fn claim(st: &Shared, decision: &Hash32) -> Result<Option<NotAccepted>, Reject> {
    match st.db().claim_execution(decision) {
        Ok(Claim::Claimed) => Ok(None),
        Ok(Claim::Taken(h)) => Ok(Some(NotAccepted::taken(decision, &h))),
        Err(e) => Err(Reject::unavailable(format!(
            "state.db could not be written ({e}); retry"
        ))),
    }
}

/// The allow the report names, if one was made here under a capability.
fn used(st: &Shared, decision: &Hash32) -> Result<Option<CapabilityUse>, Reject> {
    st.db()
        .capability_use(decision)
        .map_err(|e| Reject::unavailable(format!("state.db could not be read ({e}); retry")))
}

pub(crate) async fn execution(State(st): St, req: Request) -> Result<Response, Reject> {
    let (parts, body) = req.into_parts();
    let who = caller(&st, &parts.headers, peer(&parts).as_ref()).await;
    let (filer, identity, key) = match &who {
        Caller::Refused(why) => return Err(Reject::new(StatusCode::UNAUTHORIZED, why.clone())),
        Caller::Admin => {
            return Err(Reject::new(
                StatusCode::FORBIDDEN,
                "an execution is reported by the broker that ran it, not by an admin",
            ))
        }
        Caller::Agent(a, identity) => (Filer::Agent(a), identity.as_str(), Key::Actor(a.clone())),
        Caller::Broker(b, identity) => (
            Filer::Broker(b),
            identity.as_str(),
            Key::Broker(b.broker.clone()),
        ),
        Caller::Open => (
            Filer::Nobody,
            "none (open mode, loopback)",
            Key::Unauthenticated,
        ),
    };
    if let Err(wait) = st.limiter.check(&key, source(&parts)) {
        return Ok(limited(&key, wait));
    }
    let bytes = axum::body::to_bytes(body, MAX_REPORT).await.map_err(|e| {
        Reject::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("execution report over {MAX_REPORT} bytes or broken off: {e}"),
        )
    })?;
    let filed = Filed::from_object(&object(&bytes, &["report", "attestation"])?)?;
    let decision = filed.report.decision;
    let used = used(&st, &decision)?;
    // Only a registered broker's signed report can count; anything else is kept as what it
    // is, an attempt or a claim, and sealed as a deny that says so.
    let refusal = match filed.refusal(&filer, used.as_ref()) {
        None => claim(&st, &decision)?,
        r => r,
    };
    let status = match &refusal {
        None => StatusCode::CREATED,
        Some(r) if r.is_conflict() => StatusCode::CONFLICT,
        Some(_) => StatusCode::FORBIDDEN,
    };
    let engine = st.engine();
    let stamp = Stamp {
        policy_version: engine.version(),
        broker: &st.broker,
    };
    let decided = filed.record(&stamp, identity, &filer, used.as_ref(), refusal.as_ref());
    let committed = match st.chain.append(decided).await {
        Ok(c) => c,
        Err(e) => {
            if refusal.is_none() {
                let _ = st.db().unclaim(&decision);
            }
            return Err(unrecorded("the execution report", &e));
        }
    };
    if refusal.is_none() {
        if let Err(e) = st.db().executed(&decision, &committed.current_hash) {
            return Err(Reject::unavailable(format!("the execution record is sealed but state.db could not keep it ({e}); a second report for this allow stays refused until a restart")));
        }
    }
    // Only `ok` beside `audit`: a guarded client reads every other top-level member as one
    // of the record's own (the lineage's answer shape), so a `reason` or `linked` here would
    // make the sealed answer fail to verify.
    let mut fields = Map::new();
    fields.push("ok".into(), Value::Bool(refusal.is_none()));
    Ok(with_audit(status, fields, &committed))
}
