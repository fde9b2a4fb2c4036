//! The JSON Schemas of the wire objects (`docs/schema`, as `zt_conformance::schema` compiles
//! them) against the Rust readers and writers of the same objects.

use serde_json::Value as Json;
use zt_core::capability::report::{Attestation, ExecutionReport};
use zt_core::capability::standing::Standing;
use zt_core::capability::Grants;
use zt_core::envelope::Envelope;
use zt_core::json::{self, Value};

use crate::shown::shown;

/// The schemas are checked by `zt_conformance::schema`, the one place that compiles them.
pub use zt_conformance::schema::{check, Schema as Def};

/// The `serde_json` form of a core value (to hand what a writer wrote to the validator).
fn to_serde(v: &Value) -> Json {
    serde_json::from_slice(&json::canonicalize(v))
        .unwrap_or_else(|e| panic!("canonical JSON that serde_json does not read: {e}"))
}

fn written_valid(def: Def, what: &str, v: &Value, input: &[u8]) {
    if let Err(e) = check(def, &to_serde(v)) {
        panic!(
            "the {what} this code writes is invalid under its schema ({def:?}): {e:?}\ninput: {}\nwritten: {}",
            shown(input),
            shown(&json::canonicalize(v))
        );
    }
}

/// `json_schema`: one JSON text, read by the strict reader (`zt_core::json`) and by
/// `serde_json` for the validator.
///
/// - Envelope: what the schema calls a valid v1 envelope, the envelope reader reads as one.
/// - Grants, execution reports, attestations, capability status: what the Rust reader
///   accepts, written back out (`to_value`, `status_value`), is valid under the schema, and
///   reads back as the same thing.
pub fn schemas(data: &[u8]) {
    let Ok(v) = json::parse(data) else { return };
    let Ok(sv) = serde_json::from_slice::<Json>(data) else {
        panic!(
            "I-JSON that serde_json does not read\ninput: {}",
            shown(data)
        );
    };

    if check(Def::Envelope, &sv).is_ok() {
        match Envelope::from_json(data) {
            Ok(e) => assert!(e.v1.is_some(), "a schema-valid v1 envelope read as lineage"),
            Err(e) => panic!(
                "the schema accepts a v1 envelope the reader refuses: {e}\ninput: {}",
                shown(data)
            ),
        }
    }

    if let Ok(g) = Grants::from_value(&v) {
        written_valid(Def::Grants, "grants", &g.to_value(), data);
        assert_eq!(Grants::from_value(&g.to_value()).ok(), Some(g));
    }
    // The report and the filing may be the value itself or sit under `report`.
    let report = match &v {
        Value::Object(m) => m.get("report").unwrap_or(&v),
        _ => &v,
    };
    if let Ok(r) = ExecutionReport::from_value(report) {
        let w = r.to_value();
        written_valid(Def::ExecutionReport, "execution report", &w, data);
        let back = ExecutionReport::from_value(&w)
            .unwrap_or_else(|e| panic!("a written report does not read: {e}"));
        assert_eq!(back, r, "a report changed through its written form");
        assert_eq!(back.digest(), r.digest());
    }
    if let Some(a) = v.as_object().and_then(|m| m.get("attestation")) {
        if let Ok(at) = Attestation::from_value(a) {
            let w = at.to_value();
            let back = Attestation::from_value(&w)
                .unwrap_or_else(|e| panic!("a written attestation does not read: {e}"));
            assert_eq!(back, at);
        }
    }
    if let Ok(s) = Standing::from_status("cap-1", data) {
        if let Some(w) = s.status_value("cap-1") {
            written_valid(Def::CapabilityStatus, "capability status", &w, data);
        }
    }
}
