//! The HTTP layer (axum): routing, reading requests, answers and refusals, open mode's
//! origin check. Each route reads its request into the domain's types
//! ([`crate::domain`]), works on the shared state ([`crate::shared`]), and turns the outcome
//! into an answer ([`reply`]); nothing below this module knows HTTP.
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /actions` | agents | decide `{actor, action, resource?, context?, request_id?, capability?}`: 200 allow, 403 deny, 401 unauthenticated deny, 429 past a rate limit; the lineage's answer shape `{ok, actor, action, resource, decision, reason, audit: {...}}` |
//! | `POST /agents` | admin | register `{actor, spiffe_id?, token_ttl_s?}`: 201 `{ok, actor, token, token_id, token_expires_at?, audit}` (the token is shown once; the registration is a sealed record); `spiffe_id` binds the agent to an X.509-SVID's SPIFFE ID |
//! | `GET /agents` | admin | the active agents |
//! | `POST /agents/{actor}/token` | admin | rotate `{token_ttl_s?}`: 200 with a new token; the old one stops authenticating; a sealed record |
//! | `DELETE /agents/{actor}` | admin | revoke: its token stops authenticating; a sealed record |
//! | `POST /policies` | admin | add Cedar text (`text/plain` with `X-ZT-Admin: 1`, or `{"cedar": "..."}`) or a narrow allow rule `{action, resource?, actor?, reason?}`: 201 |
//! | `GET /policies` | admin | the set and its version; `?version=sha256:...` gives an earlier set |
//! | `DELETE /policies/{id}` | admin | remove one policy |
//! | `POST /capabilities` | admin | issue `{actor, action, resource?, ttl_s, grants}` under Cedar: 201 `{ok, id, token, expires_at, audit}`, 403 a recorded deny ([`capabilities`]) |
//! | `DELETE /capabilities/{id}` | admin | revoke: a sealed record, then brokers under it stop |
//! | `GET /capabilities/{id}` | its agent, brokers, admin | 200 active, 410 revoked or expired: what a broker watches |
//! | `POST /brokers` | admin | register an execution broker `{name, public_key, spiffe_id?}`: 201 `{ok, name, key_id, token, token_id, audit}`; a sealed record carrying its key ([`brokers`]) |
//! | `GET /brokers`, `DELETE /brokers/{name}` | admin | the active brokers; revoke one (a sealed record) |
//! | `POST /executions` | brokers | a registered broker's signed execution report, sealed and linked to its allow; an agent's own report is sealed as a claim (403) |
//! | `GET /keyring.json` | anyone | the control plane's public key as a zt-audit keyring |
//! | `GET /healthz`, `GET /metrics` | anyone | liveness; Prometheus counters |
//!
//! "admin" means `Authorization: Bearer <admin token>`; in open mode (loopback only, for the
//! quickstart) no token is needed anywhere, but an agent token that is presented still binds,
//! and every request must name the server by a loopback name ([`origin`]). Admin
//! bodies are `application/json`, or `text/plain` with `X-ZT-Admin: 1`, in every mode.
//!
//! Every `/actions` request with a readable body is decided and audited, the refused ones too:
//! a token that speaks for another actor, no token, an expired or retired token, an
//! unregistered or revoked actor. A request past a rate limit is refused before its body is
//! read and counted in the sealed summary of its window ([`crate::domain::limits`]).
//!
//! Who is asking, over mTLS (a client CA bundle, `zt-tls`): a connection that presented a
//! verified X.509-SVID is its SPIFFE ID, whatever the body claims and whatever bearer token
//! comes with it. The body's actor must be the agent bound to that ID (`POST /agents
//! {actor, spiffe_id}`); otherwise a recorded deny, "actor mismatch" (403), and an ID bound to
//! no agent is a recorded deny too. A client certificate that verified but is not an
//! acceptable SVID (no or several URI SANs, not a SPIFFE ID, a trust domain its CA does not
//! hold) is a recorded deny, 401, with the reason. The envelope's `context.identity` is the
//! SPIFFE ID. Without a client certificate, tokens work as over plain HTTP. Admin routes need
//! the admin token either way.
//!
//! Agent lifecycle records (registration, rotation, revocation) are v1 envelopes on the control
//! plane's own chain (`CHAIN.admin`, [`crate::chain::Lane::Admin`]): actor `zt.admin`, action `zt.agent.register`, `zt.agent.token.rotate` or
//! `zt.agent.revoke`, resource `agent/NAME`, decision `allow` (the administrator's request was
//! carried out), context `{identity: "admin-token:<id>", agent, token_id, retired_token_id,
//! token_expires_at, ...}`; token ids are the first 16 hex digits of a token's SHA-256. The
//! record is sealed before the change takes effect, under the registry's write lock, so no
//! decision made with a retired token is stamped after its retirement, and nothing
//! changes that is not on record. Actor names starting with `zt.` are the control plane's own,
//! and so are actions starting with `zt.`: an agent asking for one is denied.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;

use crate::shared::Shared;

mod actions;
mod agents;
mod brokers;
mod capabilities;
mod executions;
mod extract;
mod info;
mod origin;
mod policies;
mod reply;

/// Every route, with open mode's guard when open, the body limit, the request timeout and a
/// concurrency limit as layers.
pub(crate) fn router(shared: Arc<Shared>, body_limit: usize, timeout: Duration) -> Router {
    let mut app = Router::new()
        .route("/actions", post(actions::actions))
        .route("/agents", post(agents::register).get(agents::list))
        .route("/agents/{actor}", delete(agents::revoke))
        .route("/agents/{actor}/token", post(agents::rotate))
        .route("/capabilities", post(capabilities::issue))
        .route(
            "/capabilities/{id}",
            get(capabilities::status).delete(capabilities::revoke),
        )
        .route("/executions", post(executions::execution))
        .route("/brokers", post(brokers::register).get(brokers::list))
        .route("/brokers/{name}", delete(brokers::revoke))
        .route("/policies", post(policies::add).get(policies::get))
        .route("/policies/{id}", delete(policies::remove))
        .route("/keyring.json", get(info::keyring))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(info::metrics));
    if shared.open {
        app = app.layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            origin::open_mode_guard,
        ));
    }
    app.layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(tower::limit::ConcurrencyLimitLayer::new(1024))
        .with_state(shared)
}
