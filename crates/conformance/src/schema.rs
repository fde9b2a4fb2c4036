//! The JSON Schemas (2020-12) of the wire objects, from `docs/schema/` (compiled into the
//! binary), checked with the `jsonschema` crate, formats included (`date-time`). Offline:
//! the schemas refer to each other by `$id` and nothing is fetched.

use std::sync::OnceLock;

use jsonschema::{Registry, Validator};
use serde_json::Value;

use crate::error::{SchemaError, Violation};

/// The schema files, by file name.
pub const FILES: [(&str, &str); 4] = [
    (
        "envelope-v1.schema.json",
        include_str!("../../../docs/schema/envelope-v1.schema.json"),
    ),
    (
        "action-request.schema.json",
        include_str!("../../../docs/schema/action-request.schema.json"),
    ),
    (
        "decision-answer.schema.json",
        include_str!("../../../docs/schema/decision-answer.schema.json"),
    ),
    (
        "capability.schema.json",
        include_str!("../../../docs/schema/capability.schema.json"),
    ),
];

const BASE: &str = "https://example.invalid/zt-audit/schema/v1/";

/// Which object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// A v1 envelope record.
    Envelope,
    /// A `POST /actions` body.
    ActionRequest,
    /// A `POST /actions` answer (a decision).
    DecisionAnswer,
    /// `POST /capabilities` body.
    CapabilityIssueRequest,
    /// `POST /capabilities` answer (201).
    CapabilityIssueAnswer,
    /// `context.capability` of an allow under a capability.
    DecisionCapability,
    /// `GET /capabilities/{id}` answer.
    CapabilityStatus,
    /// A broker's execution report (inside the `POST /executions` body and the record).
    ExecutionReport,
    /// `POST /executions` body: the report and the broker's attestation.
    ExecutionFiling,
    /// A capability's grants.
    Grants,
}

impl Schema {
    const ALL: [Schema; 10] = [
        Schema::Envelope,
        Schema::ActionRequest,
        Schema::DecisionAnswer,
        Schema::CapabilityIssueRequest,
        Schema::CapabilityIssueAnswer,
        Schema::DecisionCapability,
        Schema::CapabilityStatus,
        Schema::ExecutionReport,
        Schema::ExecutionFiling,
        Schema::Grants,
    ];

    fn reference(self) -> String {
        let r = match self {
            Schema::Envelope => "envelope-v1.schema.json",
            Schema::ActionRequest => "action-request.schema.json",
            Schema::DecisionAnswer => "decision-answer.schema.json",
            Schema::CapabilityIssueRequest => "capability.schema.json#/$defs/issue_request",
            Schema::CapabilityIssueAnswer => "capability.schema.json#/$defs/issue_answer",
            Schema::DecisionCapability => "capability.schema.json#/$defs/decision_capability",
            Schema::CapabilityStatus => "capability.schema.json#/$defs/status",
            Schema::ExecutionReport => "capability.schema.json#/$defs/execution_report",
            Schema::ExecutionFiling => "capability.schema.json#/$defs/execution_filing",
            Schema::Grants => "capability.schema.json#/$defs/grants",
        };
        format!("{BASE}{r}")
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// The validators of [`Schema::ALL`], compiled once; `Err`: why the compiled-in schemas do not
/// compile (kept as text: the compiler's error is not `Sync`, and this is a broken build).
fn validators() -> &'static Result<Vec<Validator>, SchemaError> {
    static V: OnceLock<Result<Vec<Validator>, SchemaError>> = OnceLock::new();
    V.get_or_init(|| {
        let mut registry = Registry::new();
        for (name, text) in FILES {
            let doc: Value = serde_json::from_str(text)
                .map_err(|e| SchemaError::NotCompiled(format!("docs/schema/{name}: {e}")))?;
            registry = registry
                .add(format!("{BASE}{name}"), doc)
                .map_err(|e| SchemaError::NotCompiled(format!("docs/schema/{name}: {e}")))?;
        }
        let registry = registry
            .prepare()
            .map_err(|e| SchemaError::NotCompiled(e.to_string()))?;
        Schema::ALL
            .iter()
            .map(|s| {
                jsonschema::options()
                    .with_registry(&registry)
                    .should_validate_formats(true)
                    .build(&serde_json::json!({"$ref": s.reference()}))
                    .map_err(|e| SchemaError::NotCompiled(format!("{s:?}: {e}")))
            })
            .collect()
    })
}

/// Checks `value` against `schema`: every violation, with its instance path.
pub fn check(schema: Schema, value: &Value) -> Result<(), SchemaError> {
    let validators = validators().as_ref().map_err(Clone::clone)?;
    let Some(v) = validators.get(schema.index()) else {
        return Err(SchemaError::NotCompiled(format!(
            "no validator for {schema:?}"
        )));
    };
    let violations: Vec<Violation> = v
        .iter_errors(value)
        .map(|e| Violation {
            path: e.instance_path().to_string(),
            message: e.to_string(),
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Violations(violations))
    }
}
