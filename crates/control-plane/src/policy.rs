//! Policy decisions by the Cedar engine (`cedar-policy`), deny by default.
//!
//! Requests map onto Cedar as `principal = Agent::"<actor>"`, `action = Action::"<action>"`,
//! `resource = Resource::"<resource>"` (the empty string when none was given), and the
//! request's `context` object as Cedar's context. There is no schema and no entity store: a
//! policy speaks about names and context.
//!
//! Choices where Cedar leaves room:
//! - Policy ids come from an `@id("...")` annotation when present, else are generated.
//! - The decision's reason is the determining policy's `@reason("...")` annotation, else a
//!   sentence naming the policy; with no determining policy, the default deny says so.
//! - Cedar skips a policy whose evaluation errors, so an erroring `forbid` would silently stop
//!   forbidding. Here any evaluation error denies (fail closed) and the reason names it.
//! - Some context members are the control plane's own ([`RESERVED_CONTEXT`]): it sets them
//!   (capability issuance and use, the sandbox among the grants), and an agent's request that
//!   carries one is refused before any policy sees it, so a rule may rely on them.
//! - The set's version is `sha256:` and the hex SHA-256 of the RFC 8785 JSON array of
//!   `{id, text}` in id order: it goes into every envelope, and the state keeps each version's
//!   text, so an auditor can see exactly which policies decided.

use std::collections::BTreeMap;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityId, EntityTypeName, EntityUid, Policy, PolicyId,
    PolicySet, Request,
};
use zt_core::json::{self, Map, Value};
use zt_core::Hash32;

use crate::error::PolicyError;

/// Context members only the control plane sets (`issuance` and `grants` at capability
/// issuance and use, `capability`, `identity`, `sandbox`): `POST /actions` refuses a request
/// whose context carries one (400 naming it), so that a policy written for brokered use
/// (`context has issuance && context.issuance == false`) cannot be satisfied by an agent
/// that writes those members itself.
pub const RESERVED_CONTEXT: &[&str] = &["issuance", "grants", "capability", "identity", "sandbox"];

/// The action every control plane forbids unless the operator removes the policy.
pub const DEFAULT_FORBIDDEN_ACTION: &str = "aws.ec2.terminate_instances";

/// The default forbid, as stored on first run.
pub const DEFAULT_FORBID_ID: &str = "default-forbid-terminate-instances";

const DEFAULT_FORBID: &str = r#"@reason("terminating EC2 instances is forbidden by default: an operator must remove policy default-forbid-terminate-instances first")
forbid (principal, action == Action::"aws.ec2.terminate_instances", resource);"#;

/// One stored policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEntry {
    /// Its id (unique in the set).
    pub id: String,
    /// Its Cedar text.
    pub text: String,
}

/// A narrow allow rule: one action, optionally one resource and one actor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NarrowRule {
    /// The action allowed.
    pub action: String,
    /// Only on this resource (any when `None`).
    pub resource: Option<String>,
    /// Only for this actor (any registered agent when `None`).
    pub actor: Option<String>,
    /// The reason recorded in allowed decisions.
    pub reason: Option<String>,
}

/// What the engine decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Allow or not.
    pub allow: bool,
    /// Why, for the envelope.
    pub reason: String,
    /// Determining policies, sorted.
    pub policy_ids: Vec<String>,
}

/// A policy set ready to decide, with its version.
#[derive(Debug)]
pub struct PolicyEngine {
    set: PolicySet,
    entries: Vec<PolicyEntry>,
    reasons: BTreeMap<String, String>,
    version: String,
    authorizer: Authorizer,
    /// Stack a decision needs for the deepest policy of the set ([`stack_for`]).
    stack: usize,
}

/// The policies a new control plane starts with.
pub fn baseline() -> Vec<PolicyEntry> {
    vec![PolicyEntry {
        id: DEFAULT_FORBID_ID.into(),
        text: DEFAULT_FORBID.into(),
    }]
}

fn uid(type_name: &str, id: &str) -> Result<EntityUid, PolicyError> {
    let t = EntityTypeName::from_str(type_name).map_err(|e| PolicyError::Parse {
        id: None,
        reason: e.to_string(),
    })?;
    Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

/// Splits Cedar policy-set text into entries; ids from `@id` or `fresh_id`.
/// Most operators (`&&`, `||`, `!`, `-`, comparisons, `.`, `in`, `has`, `like`, `if`) in one
/// policy text: Cedar parses and evaluates expressions recursively, so their number bounds the
/// stack an evaluation needs on a request's thread.
pub const MAX_OPERATORS: usize = 1024;
/// Deepest nesting of `(`, `[` and `{` in one policy text.
pub const MAX_NESTING: usize = 64;

/// Checks the limits above on a policy text (string literals and `//` comments skipped), before
/// Cedar sees it: a refusal names the limit instead of a parser running out of stack. A
/// control (but tab and line breaks), invisible or text-reordering character anywhere, string
/// literals and comments included, is refused first (`zt_core::text::needs_escape`).
pub fn check_limits(text: &str) -> Result<usize, PolicyError> {
    let hidden = text
        .char_indices()
        .find(|(_, c)| !matches!(c, '\n' | '\r' | '\t') && zt_core::text::needs_escape(*c));
    if let Some((at, c)) = hidden {
        return Err(PolicyError::HiddenCharacter {
            code: u32::from(c),
            line: 1 + text[..at].matches('\n').count(),
        });
    }
    let b = text.as_bytes();
    let (mut ops, mut depth, mut deepest) = (0usize, 0usize, 0usize);
    let mut i = 0;
    let word = |i: usize, w: &[u8]| {
        b[i..].starts_with(w)
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
            && b.get(i + w.len())
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
    };
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'&' | b'|' if b.get(i + 1) == Some(&b[i]) => {
                ops += 1;
                i += 1;
            }
            b'=' | b'!' | b'<' | b'>' if b.get(i + 1) == Some(&b'=') => {
                ops += 1;
                i += 1;
            }
            b'!' | b'-' | b'+' | b'*' | b'.' | b'<' | b'>' | b'=' => ops += 1,
            _ if word(i, b"in") || word(i, b"has") || word(i, b"like") || word(i, b"if") => {
                ops += 1;
            }
            _ => {}
        }
        i += 1;
    }
    if ops > MAX_OPERATORS {
        return Err(PolicyError::Limit {
            what: "operators",
            found: ops,
            max: MAX_OPERATORS,
        });
    }
    if deepest > MAX_NESTING {
        return Err(PolicyError::Limit {
            what: "nesting depth",
            found: deepest,
            max: MAX_NESTING,
        });
    }
    Ok(ops + deepest)
}

/// Stack an evaluation of a policy of `depth` (operators and nesting: a bound on its expression
/// tree's depth) may need: Cedar's evaluator recurses once per level (frames of up to ~20 KiB
/// in a debug build) and stops, failing closed, with under 100 KiB left.
fn stack_for(depth: usize) -> usize {
    (256 << 10) + depth * (24 << 10)
}

/// Runs `f` (a Cedar parse) on a thread of its own with a stack sized for any text under the
/// body limit, so no policy text can end the process whatever the limits above miss.
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("cedar-parse".into())
            .stack_size(256 << 20)
            .spawn_scoped(s, f)
            .map(|h| h.join())
    })
    .unwrap_or_else(|e| panic!("cannot start a thread to parse a policy: {e}"))
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// The first line of a Cedar error's debug form (its message, without the source excerpt).
fn first_line(e: &impl std::fmt::Debug) -> String {
    format!("{e:?}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

pub fn parse_cedar(
    text: &str,
    mut fresh_id: impl FnMut() -> String,
) -> Result<Vec<PolicyEntry>, PolicyError> {
    check_limits(text)?;
    let set = on_big_stack(|| PolicySet::from_str(text).map_err(|e| first_line(&e)))
        .map_err(|reason| PolicyError::Parse { id: None, reason })?;
    if set.templates().next().is_some() {
        return Err(PolicyError::Unsupported(
            "policy templates (use static policies)".into(),
        ));
    }
    let mut out = Vec::new();
    for p in set.policies() {
        let id = match p.annotation("id") {
            Some(id) if !id.trim().is_empty() => id.trim().to_owned(),
            _ => fresh_id(),
        };
        out.push(PolicyEntry {
            id,
            text: p.to_string(),
        });
    }
    if out.is_empty() {
        return Err(PolicyError::Empty);
    }
    Ok(out)
}

/// A narrow allow rule as a Cedar `permit`, built through Cedar's JSON policy format so no
/// name needs escaping by hand.
pub fn narrow_rule(rule: &NarrowRule, id: &str) -> Result<PolicyEntry, PolicyError> {
    if rule.action.is_empty() {
        return Err(PolicyError::Invalid("`action` must not be empty".into()));
    }
    let eq = |t: &str, v: &str| serde_json::json!({"op": "==", "entity": {"type": t, "id": v}});
    let principal = match &rule.actor {
        Some(a) => eq("Agent", a),
        None => serde_json::json!({"op": "All"}),
    };
    let resource = match &rule.resource {
        Some(r) => eq("Resource", r),
        None => serde_json::json!({"op": "All"}),
    };
    let reason = rule.reason.clone().unwrap_or_else(|| match &rule.resource {
        Some(r) => format!("allowed by narrow rule {id}: {} on {r}", rule.action),
        None => format!("allowed by narrow rule {id}: {}", rule.action),
    });
    let doc = serde_json::json!({
        "effect": "permit",
        "principal": principal,
        "action": eq("Action", &rule.action),
        "resource": resource,
        "conditions": [],
        "annotations": {"reason": reason},
    });
    let policy =
        Policy::from_json(Some(PolicyId::new(id)), doc).map_err(|e| PolicyError::Parse {
            id: Some(id.to_owned()),
            reason: e.to_string(),
        })?;
    Ok(PolicyEntry {
        id: id.to_owned(),
        text: policy.to_string(),
    })
}

/// The policy set as a document, `[{id, text}]` in the order given: what a version hashes
/// (sorted by id) and what `state.db` keeps of each version (in application order), in RFC
/// 8785 form.
pub fn set_document<'a>(entries: impl IntoIterator<Item = &'a PolicyEntry>) -> Vec<u8> {
    let arr = Value::Array(
        entries
            .into_iter()
            .map(|e| {
                let mut m = Map::new();
                m.push("id".into(), Value::String(e.id.clone()));
                m.push("text".into(), Value::String(e.text.clone()));
                Value::Object(m)
            })
            .collect(),
    );
    json::canonicalize(&arr)
}

/// The version of a set of entries (see the module docs).
pub fn version_of(entries: &[PolicyEntry]) -> String {
    let mut sorted: Vec<&PolicyEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    format!("sha256:{}", Hash32::digest(&set_document(sorted)).to_hex())
}

impl PolicyEngine {
    /// Parses every entry under its id.
    pub fn new(entries: Vec<PolicyEntry>) -> Result<Self, PolicyError> {
        let mut set = PolicySet::new();
        let mut reasons = BTreeMap::new();
        let mut depth = 0;
        for e in &entries {
            depth = depth.max(check_limits(&e.text)?);
            let p = on_big_stack(|| {
                Policy::parse(Some(PolicyId::new(&e.id)), &e.text).map_err(|err| first_line(&err))
            })
            .map_err(|reason| PolicyError::Parse {
                id: Some(e.id.clone()),
                reason,
            })?;
            if let Some(r) = p.annotation("reason") {
                reasons.insert(e.id.clone(), r.to_owned());
            }
            set.add(p)
                .map_err(|_| PolicyError::DuplicateId(e.id.clone()))?;
        }
        let version = version_of(&entries);
        Ok(Self {
            set,
            entries,
            reasons,
            version,
            authorizer: Authorizer::new(),
            stack: stack_for(depth),
        })
    }

    /// `sha256:...` of this set.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The entries, in the order applied.
    pub fn entries(&self) -> &[PolicyEntry] {
        &self.entries
    }

    /// Decides one request. `context` is the request's context object, if any.
    pub fn decide(
        &self,
        actor: &str,
        action: &str,
        resource: &str,
        context: Option<&Map>,
    ) -> Verdict {
        // Within the limits every policy evaluates: on a stack grown for the deepest policy of
        // the set when the thread's own has less left (a no-op for ordinary policies).
        let decided = stacker::maybe_grow(self.stack, self.stack * 2, || {
            self.try_decide(actor, action, resource, context)
        });
        match decided {
            Ok(v) => v,
            Err(why) => Verdict {
                allow: false,
                reason: why.to_string(),
                policy_ids: Vec::new(),
            },
        }
    }

    fn try_decide(
        &self,
        actor: &str,
        action: &str,
        resource: &str,
        context: Option<&Map>,
    ) -> Result<Verdict, Unaskable> {
        let principal = uid("Agent", actor)?;
        let act = uid("Action", action)?;
        let res = uid("Resource", resource)?;
        let ctx = match context {
            None => Context::empty(),
            Some(m) => Context::from_json_value(to_serde(&Value::Object(m.clone())), None)
                .map_err(|e| Unaskable::Context(Box::new(e)))?,
        };
        let request = Request::new(principal, act, res, ctx, None)
            .map_err(|e| Unaskable::Request(Box::new(e)))?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.set, &Entities::empty());
        let mut ids: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        ids.sort();
        if let Some(err) = response.diagnostics().errors().next() {
            return Ok(Verdict {
                allow: false,
                reason: format!("denied: policy evaluation failed, failing closed ({err})"),
                policy_ids: ids,
            });
        }
        let allow = response.decision() == Decision::Allow;
        let reason = match ids.first() {
            Some(id) => match self.reasons.get(id) {
                Some(r) => r.clone(),
                None if allow => format!("allowed by policy {id}"),
                None => format!("forbidden by policy {id}"),
            },
            None => {
                let on = if resource.is_empty() {
                    String::new()
                } else {
                    format!(" on {resource}")
                };
                format!("no policy permits {action}{on} (deny by default)")
            }
        };
        Ok(Verdict {
            allow,
            reason,
            policy_ids: ids,
        })
    }
}

/// Why a request could not be put to Cedar at all: a deny whose reason says so.
#[derive(Debug, thiserror::Error)]
enum Unaskable {
    /// A name Cedar cannot take as an entity id.
    #[error("{0}")]
    Name(#[from] PolicyError),
    /// The context does not convert to Cedar's.
    #[error("denied: the request context cannot be given to the policy engine ({0})")]
    Context(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Cedar refused the request.
    #[error("denied: invalid policy request ({0})")]
    Request(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// zt-core's JSON value as serde_json's, for Cedar (the one place the two value types meet:
/// Cedar's API takes serde_json). Integral numbers become integers (Cedar
/// has `Long`, no floats); others stay floats, which Cedar then refuses.
pub fn to_serde(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) =>
        {
            #[allow(
                clippy::cast_possible_truncation,
                reason = "checked: integral and within the i64 range"
            )]
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                serde_json::Value::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_serde).collect()),
        Value::Object(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.to_owned(), to_serde(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(extra: &[PolicyEntry]) -> PolicyEngine {
        let mut e = baseline();
        e.extend_from_slice(extra);
        PolicyEngine::new(e).unwrap()
    }

    #[test]
    fn deny_by_default_and_the_default_forbid() {
        let e = engine(&[]);
        let v = e.decide("agent-hello", "hello-world.say_hello", "", None);
        assert!(!v.allow);
        assert!(v.reason.contains("deny by default"), "{}", v.reason);
        let v = e.decide("agent-hello", DEFAULT_FORBIDDEN_ACTION, "i-1", None);
        assert!(!v.allow);
        assert_eq!(v.policy_ids, [DEFAULT_FORBID_ID]);
        assert!(v.reason.contains("forbidden by default"), "{}", v.reason);
    }

    #[test]
    fn a_narrow_rule_allows_only_what_it_names() {
        let rule = NarrowRule {
            action: "hello-world.say_hello".into(),
            resource: Some("demo/greeting".into()),
            ..NarrowRule::default()
        };
        let e = engine(&[narrow_rule(&rule, "allow-1").unwrap()]);
        let v = e.decide(
            "agent-hello",
            "hello-world.say_hello",
            "demo/greeting",
            None,
        );
        assert!(v.allow, "{v:?}");
        assert_eq!(v.policy_ids, ["allow-1"]);
        assert!(v.reason.contains("narrow rule allow-1"));
        assert!(
            !e.decide("agent-hello", "hello-world.say_hello", "other", None)
                .allow
        );
        assert!(
            !e.decide(
                "agent-hello",
                "hello-world.say_goodbye",
                "demo/greeting",
                None
            )
            .allow
        );
    }

    #[test]
    fn forbid_beats_a_permit_on_the_same_action() {
        let rule = NarrowRule {
            action: DEFAULT_FORBIDDEN_ACTION.into(),
            ..NarrowRule::default()
        };
        let e = engine(&[narrow_rule(&rule, "allow-terminate").unwrap()]);
        assert!(!e.decide("a", DEFAULT_FORBIDDEN_ACTION, "i-1", None).allow);
    }

    #[test]
    fn names_with_quotes_cannot_inject_policy_text() {
        let rule = NarrowRule {
            action: r##"x" || true || action == Action::"y"##.into(),
            actor: Some(r##"a"); permit(principal,action,resource); //"##.into()),
            ..NarrowRule::default()
        };
        let entry = narrow_rule(&rule, "tricky").unwrap();
        let e = engine(&[entry]);
        assert!(!e.decide("b", "y", "", None).allow);
        assert!(!e.decide("b", "anything", "", None).allow);
        assert!(
            e.decide(rule.actor.as_deref().unwrap(), &rule.action, "", None)
                .allow
        );
    }

    #[test]
    fn cedar_text_with_ids_and_context_conditions() {
        let mut n = 0;
        let entries = parse_cedar(
            r#"@id("business-hours") @reason("within business hours")
               permit (principal == Agent::"agent-hello", action == Action::"report.run", resource)
               when { context.hour >= 9 && context.hour < 17 };
               permit (principal, action == Action::"noop", resource);"#,
            || {
                n += 1;
                format!("p{n}")
            },
        )
        .unwrap();
        assert_eq!(
            entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["business-hours", "p1"]
        );
        let e = engine(&entries);
        let ctx = |h: f64| {
            let mut m = Map::new();
            m.push("hour".into(), Value::Number(h));
            m
        };
        let v = e.decide("agent-hello", "report.run", "", Some(&ctx(10.0)));
        assert!(v.allow);
        assert_eq!(v.reason, "within business hours");
        assert!(
            !e.decide("agent-hello", "report.run", "", Some(&ctx(20.0)))
                .allow
        );
        // no `hour` in the context: the condition errors, and an error never allows
        let v = e.decide("agent-hello", "report.run", "", Some(&Map::new()));
        assert!(!v.allow);
        assert!(v.reason.contains("failing closed"), "{}", v.reason);
        // a float Cedar cannot hold
        let v = e.decide("agent-hello", "report.run", "", Some(&ctx(10.5)));
        assert!(!v.allow);
    }

    #[test]
    fn limits_count_operators_and_nesting_outside_strings_and_comments() {
        let chain = |n: usize| vec!["context.a == 1"; n].join(" && ");
        assert_eq!(check_limits(&chain(2)), Ok(5));
        assert!(check_limits(&chain(400)).is_err_and(|e| e.to_string().contains("operators")));
        // operators inside a string literal or a comment are text, not expression
        let quoted = format!(
            "permit (principal, action, resource) when {{ context.s == \"{}\" }}; // {}",
            "&&".repeat(2000),
            "||".repeat(2000)
        );
        assert!(check_limits(&quoted).is_ok());
        let deep = format!("{}1{}", "(".repeat(65), ")".repeat(65));
        assert!(check_limits(&deep).is_err_and(|e| e.to_string().contains("nesting depth")));
        assert!(check_limits(&format!("{}1{}", "(".repeat(64), ")".repeat(64))).is_ok());
        // names containing the words are not operators
        assert_eq!(check_limits("principal_inside has_thing iffy"), Ok(0));
    }

    /// Trojan Source: an RLO in a string literal makes `"admin"` read as something else to a
    /// reviewer, so the policy is refused, naming the character and its line; tabs and line
    /// breaks are the text's own.
    #[test]
    fn hidden_characters_are_refused_with_their_line() {
        let text = "permit (principal, action, resource)\r\n\twhen { principal == Agent::\"a\u{202e}nimda\" };";
        assert_eq!(
            check_limits(text),
            Err(PolicyError::HiddenCharacter {
                code: 0x202e,
                line: 2
            })
        );
        assert!(check_limits("// \u{200b}\npermit (principal, action, resource);").is_err());
        assert!(check_limits("permit (principal, action, resource)\r\n\t;").is_ok());
    }

    #[test]
    fn bad_cedar_is_an_error_naming_the_problem() {
        let err = parse_cedar("permit (principal, action, resource", || "x".into()).unwrap_err();
        assert!(matches!(err, PolicyError::Parse { .. }), "{err}");
        assert!(matches!(
            parse_cedar("  ", || "x".into()),
            Err(PolicyError::Empty)
        ));
    }

    #[test]
    fn the_version_follows_the_content_not_the_order() {
        let a = PolicyEntry {
            id: "a".into(),
            text: "permit(principal,action,resource);".into(),
        };
        let b = PolicyEntry {
            id: "b".into(),
            text: "forbid(principal,action,resource);".into(),
        };
        assert_eq!(
            version_of(&[a.clone(), b.clone()]),
            version_of(&[b.clone(), a.clone()])
        );
        let mut b2 = b.clone();
        b2.text.push(' ');
        assert_ne!(version_of(&[a.clone(), b]), version_of(&[a, b2]));
    }
}
