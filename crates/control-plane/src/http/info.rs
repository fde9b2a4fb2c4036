//! `GET /keyring.json` (the control plane's public key as a zt-audit keyring) and
//! `GET /metrics` (Prometheus counters).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::extract::St;

pub(crate) async fn keyring(State(st): St) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        st.keyring_json.clone(),
    )
        .into_response()
}

pub(crate) async fn metrics(State(st): St) -> Response {
    let m = &st.metrics;
    let mut body = format!(
        "# TYPE zt_cp_decisions_total counter\n\
         zt_cp_decisions_total{{decision=\"allow\"}} {}\n\
         zt_cp_decisions_total{{decision=\"deny\"}} {}\n\
         # TYPE zt_cp_unavailable_total counter\nzt_cp_unavailable_total {}\n\
         # TYPE zt_cp_bad_requests_total counter\nzt_cp_bad_requests_total {}\n\
         # TYPE zt_cp_rate_limited_total counter\n\
         zt_cp_rate_limited_total{{limit=\"unauthenticated\"}} {}\n\
         zt_cp_rate_limited_total{{limit=\"actor\"}} {}\n\
         # TYPE zt_cp_rate_summaries_total counter\nzt_cp_rate_summaries_total {}\n\
         # TYPE zt_cp_refused_origin_total counter\nzt_cp_refused_origin_total {}\n",
        m.allowed.load(Ordering::Relaxed),
        m.denied.load(Ordering::Relaxed),
        m.unavailable.load(Ordering::Relaxed),
        m.bad_requests.load(Ordering::Relaxed),
        st.limiter.refused_unauthenticated.load(Ordering::Relaxed),
        st.limiter.refused_actor.load(Ordering::Relaxed),
        st.limiter.summaries.load(Ordering::Relaxed),
        m.refused_origin.load(Ordering::Relaxed),
    );
    body.push_str(&st.connections.render_metrics());
    if let Some(tls) = &st.tls {
        body.push_str(&tls.render_metrics());
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        body,
    )
        .into_response()
}
