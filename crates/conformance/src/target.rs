//! A control plane's conformance suite, over HTTP, against any implementation of the contract.
//!
//! The cases run in order against one target, with agents and a policy of their own (names
//! carry a random suffix, so the suite can run again against the same control plane); what
//! they add is removed at the end where the API allows it. Every envelope is checked under the
//! keyring the tester gives (`--keyring`): the target's own `/keyring.json` is never a trust
//! root.
//!
//! | case | the contract |
//! |---|---|
//! | `registration` | `POST /agents {actor}` registers an agent and gives its token (201) |
//! | `unregistered_actor_denied` | an actor nobody registered is a recorded deny |
//! | `deny_by_default` | a registered agent asking for an action no policy names: deny |
//! | `terminate_instances_denied` | `aws.ec2.terminate_instances` is denied by default |
//! | `narrow_policy` | a narrow rule allows exactly its agent, action and resource, nothing beside |
//! | `answer_shape` | every answer is `decision-answer.schema.json`; 200 with allow, 401/403 with deny |
//! | `envelopes_verify` | every answer's envelope is v1, its hash recomputes, its signature verifies under the given keyring at its time |
//! | `chain_continues` | the answers are one chain: one `chain_id`, `seq` rising, and each consecutive pair judged by the chain model (`zt_core::chain::check_line`: hash, link, seq) |
//! | `actor_spoofing_denied` | one agent's token claiming another agent's actor: deny |
//! | `malformed_requests_refused` | unreadable requests: 400, no decision, the chain does not move |
//! | `replayed_request_id` | a request id sent twice gets two distinct, verifying decisions (no cached answer) |

use std::time::Duration;

use serde_json::{json, Value};
use zt_core::chain::{check_line, inspect, Inspection, Node, SigCheck, Successor, Tip};
use zt_core::keyring::Keyring;
use zt_core::Profile;

use crate::error::{Broken, RunError};
use crate::schema::{check, Schema};
use crate::Report;

/// What to run the suite against.
#[derive(Debug, Clone)]
pub struct Target {
    /// The control plane's base URL.
    pub url: String,
    /// Its admin token (none for an open-mode control plane).
    pub admin_token: Option<String>,
    /// The keyring (JSON) its decisions must verify under; without it `envelopes_verify` fails.
    pub keyring: Option<Vec<u8>>,
}

/// An answer to `POST /actions`.
#[derive(Debug, Clone)]
struct Answer {
    /// Which case asked, and what.
    what: String,
    status: u16,
    body: Value,
}

impl Answer {
    fn decision(&self) -> Option<&str> {
        self.body.get("decision").and_then(Value::as_str)
    }

    /// "allow" with 200, "deny" with 401/403; otherwise what came.
    fn outcome(&self) -> Result<bool, Broken> {
        match (self.decision(), self.status) {
            (Some("allow"), 200) => Ok(true),
            (Some("deny"), 401 | 403) => Ok(false),
            (d, status) => Err(Broken::Outcome {
                what: self.what.clone(),
                status,
                decision: d.map(str::to_owned),
            }),
        }
    }

    /// The envelope: the answer's subject members beside `audit`'s.
    fn envelope(&self) -> Option<Value> {
        let mut env = self.body.get("audit")?.as_object()?.clone();
        for k in zt_core::envelope::ANSWER_TOP {
            env.insert(k.to_owned(), self.body.get(k)?.clone());
        }
        Some(Value::Object(env))
    }

    /// The envelope, inspected under `ring` (hash under each profile, signature).
    fn inspect(&self, ring: &Keyring) -> Result<Inspection, Broken> {
        let env = self.envelope().ok_or_else(|| Broken::NoEnvelope {
            what: self.what.clone(),
        })?;
        // A `Value` always serializes; were it not to, the empty text does not read either.
        let raw = serde_json::to_string(&env).unwrap_or_default();
        inspect(raw.as_bytes(), ring, None).map_err(|source| Broken::Envelope {
            what: self.what.clone(),
            source,
        })
    }

    fn seq(&self) -> Option<u64> {
        self.body.get("audit")?.get("seq")?.as_u64()
    }

    fn hash(&self, k: &str) -> Option<&str> {
        self.body.get("audit")?.get(k)?.as_str()
    }
}

struct Run<'a> {
    t: &'a Target,
    http: reqwest::Client,
    answers: Vec<Answer>,
}

fn random_suffix() -> String {
    use rand_core::RngCore;
    let mut b = [0u8; 4];
    rand_core::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

impl Run<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.t.url.trim_end_matches('/'))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Value), Broken> {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let transport = |source| Broken::Transport {
            path: path.to_owned(),
            source,
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(transport)?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }

    async fn admin_post(&self, path: &str, body: Value) -> Result<(u16, Value), Broken> {
        self.send(
            reqwest::Method::POST,
            path,
            self.t.admin_token.as_deref(),
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// Asks `POST /actions` and keeps the answer for the whole-run cases.
    async fn ask(
        &mut self,
        what: &str,
        token: Option<&str>,
        body: Value,
    ) -> Result<Answer, Broken> {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/actions",
                token,
                Some(body.to_string().into_bytes()),
            )
            .await?;
        let a = Answer {
            what: what.to_owned(),
            status,
            body,
        };
        self.answers.push(a.clone());
        Ok(a)
    }
}

fn expect_deny(a: &Answer) -> Result<String, Broken> {
    match a.outcome()? {
        false => Ok(format!(
            "denied (HTTP {}): {}",
            a.status,
            a.body.get("reason").and_then(Value::as_str).unwrap_or("")
        )),
        true => Err(Broken::Allowed {
            what: a.what.clone(),
        }),
    }
}

/// Runs every case against `t`. `Err` when the suite cannot run at all (the target does not
/// answer): no verdict.
pub async fn run(t: &Target) -> Result<Report, RunError> {
    let mut report = Report::default();
    // reqwest here has rustls without a provider of its own (see zt_tls).
    zt_tls::install_default_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(RunError::HttpClient)?;
    let mut r = Run {
        t,
        http,
        answers: Vec::new(),
    };
    // Reachable at all? A transport error here is no verdict on the contract.
    r.send(reqwest::Method::GET, "/healthz", None, None)
        .await
        .map_err(|e| RunError::Unreachable(Box::new(e)))?;
    let s = random_suffix();
    let (a, b) = (format!("conf-{s}-a"), format!("conf-{s}-b"));
    let (read, doc) = (format!("conf.{s}.read"), format!("conf/{s}/doc"));

    // registration
    let mut tokens = Vec::new();
    let mut registered = Ok(String::new());
    for actor in [&a, &b] {
        match r.admin_post("/agents", json!({"actor": actor})).await {
            Ok((201, v)) => match v.get("token").and_then(Value::as_str) {
                Some(tok) => tokens.push(tok.to_owned()),
                None => registered = Err(Broken::NoToken { body: v }),
            },
            Ok((status, body)) => {
                registered = Err(Broken::Admin {
                    what: format!("POST /agents {actor}"),
                    status,
                    body,
                })
            }
            Err(e) => registered = Err(e),
        }
    }
    if registered.is_ok() {
        registered = Ok(format!("registered {a} and {b}, each with a token"));
    }
    let ok = registered.is_ok();
    report.push("registration", registered);
    let (ta, tb) = match (ok, tokens.first(), tokens.get(1)) {
        (true, Some(x), Some(y)) => (Some(x.clone()), Some(y.clone())),
        _ => (None, None),
    };

    // unregistered_actor_denied
    let res = r
        .ask(
            "an unregistered actor",
            None,
            json!({"actor": format!("conf-{s}-nobody"), "action": read, "resource": doc}),
        )
        .await
        .and_then(|x| expect_deny(&x));
    report.push("unregistered_actor_denied", res);

    // deny_by_default
    let res = r
        .ask(
            "an action no policy names",
            ta.as_deref(),
            json!({"actor": a, "action": format!("conf.{s}.unlisted"), "resource": doc}),
        )
        .await
        .and_then(|x| expect_deny(&x));
    report.push("deny_by_default", res);

    // terminate_instances_denied
    let res = r
        .ask(
            "aws.ec2.terminate_instances",
            ta.as_deref(),
            json!({"actor": a, "action": "aws.ec2.terminate_instances", "resource": format!("i-conf{s}")}),
        )
        .await
        .and_then(|x| expect_deny(&x));
    report.push("terminate_instances_denied", res);

    // narrow_policy
    let mut policy_ids = Vec::new();
    let res = narrow(
        &mut r,
        &mut policy_ids,
        (&a, &b),
        (ta.as_deref(), tb.as_deref()),
        (&read, &doc),
        &s,
    )
    .await;
    report.push("narrow_policy", res);

    // actor_spoofing_denied
    let res = match (&ta, &tb) {
        (Some(_), Some(tb)) => r
            .ask(
                "agent b's token claiming agent a",
                Some(tb),
                json!({"actor": a, "action": read, "resource": doc}),
            )
            .await
            .and_then(|x| expect_deny(&x)),
        _ => Err(Broken::NoTokens),
    };
    report.push("actor_spoofing_denied", res);

    // malformed_requests_refused
    let res = malformed(&mut r, ta.as_deref(), &a, (&read, &doc)).await;
    report.push("malformed_requests_refused", res);

    // replayed_request_id
    let res = replayed(&mut r, ta.as_deref(), &a, (&read, &doc), &s).await;
    report.push("replayed_request_id", res);

    // whole-run cases
    report.push("answer_shape", answer_shape(&r.answers));
    report.push("envelopes_verify", envelopes_verify(t, &r.answers));
    report.push("chain_continues", chain_continues(&r.answers));

    // cleanup, best effort: the suite's policy and agents
    for id in policy_ids {
        let _ = r
            .send(
                reqwest::Method::DELETE,
                &format!("/policies/{id}"),
                t.admin_token.as_deref(),
                None,
            )
            .await;
    }
    for actor in [&a, &b] {
        let _ = r
            .send(
                reqwest::Method::DELETE,
                &format!("/agents/{actor}"),
                t.admin_token.as_deref(),
                None,
            )
            .await;
    }
    Ok(report)
}

async fn narrow(
    r: &mut Run<'_>,
    policy_ids: &mut Vec<String>,
    (a, b): (&str, &str),
    (ta, tb): (Option<&str>, Option<&str>),
    (read, doc): (&str, &str),
    s: &str,
) -> Result<String, Broken> {
    let (st, v) = r
        .admin_post(
            "/policies",
            json!({"action": read, "resource": doc, "actor": a, "id": format!("conf-{s}-narrow")}),
        )
        .await?;
    if st != 201 {
        return Err(Broken::Admin {
            what: "POST /policies (a narrow rule)".into(),
            status: st,
            body: v,
        });
    }
    if let Some(ids) = v.get("added").and_then(Value::as_array) {
        policy_ids.extend(ids.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    let allowed = r
        .ask(
            "the narrow rule's own request",
            ta,
            json!({"actor": a, "action": read, "resource": doc}),
        )
        .await?;
    if !allowed.outcome()? {
        return Err(Broken::NarrowDenied {
            reason: allowed
                .body
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        });
    }
    for (what, token, body) in [
        (
            "another resource",
            ta,
            json!({"actor": a, "action": read, "resource": format!("{doc}-other")}),
        ),
        (
            "another action",
            ta,
            json!({"actor": a, "action": format!("conf.{s}.write"), "resource": doc}),
        ),
        (
            "another agent",
            tb,
            json!({"actor": b, "action": read, "resource": doc}),
        ),
    ] {
        let x = r.ask(what, token, body).await?;
        if x.outcome()? {
            return Err(Broken::NarrowAllowed { what: what.into() });
        }
    }
    Ok(
        "allowed its own agent, action and resource; denied another resource, action and agent"
            .into(),
    )
}

async fn malformed(
    r: &mut Run<'_>,
    ta: Option<&str>,
    a: &str,
    (read, doc): (&str, &str),
) -> Result<String, Broken> {
    let before = r
        .ask(
            "before the malformed requests",
            ta,
            json!({"actor": a, "action": read, "resource": doc}),
        )
        .await?;
    let bodies: [(&str, Vec<u8>); 6] = [
        ("not JSON", b"{actor: a".to_vec()),
        ("an array", b"[]".to_vec()),
        ("no actor", json!({"action": read}).to_string().into_bytes()),
        (
            "a number for actor",
            json!({"actor": 7, "action": read}).to_string().into_bytes(),
        ),
        (
            "an unknown member",
            json!({"actor": a, "action": read, "approved_by": "CISO"})
                .to_string()
                .into_bytes(),
        ),
        (
            "a duplicate member",
            format!(r#"{{"actor":"{a}","action":"{read}","action":"other"}}"#).into_bytes(),
        ),
    ];
    for (what, body) in bodies {
        let (st, v) = r
            .send(reqwest::Method::POST, "/actions", ta, Some(body))
            .await?;
        if st != 400 {
            return Err(Broken::NotRefused {
                what: what.into(),
                status: st,
                body: v,
            });
        }
        if v.get("audit").is_some() || v.get("decision").is_some() {
            return Err(Broken::Decided {
                what: what.into(),
                body: v,
            });
        }
    }
    let after = r
        .ask(
            "after the malformed requests",
            ta,
            json!({"actor": a, "action": read, "resource": doc}),
        )
        .await?;
    match (before.seq(), after.seq()) {
        (Some(x), Some(y)) if y == x + 1 => {
            Ok("6 unreadable requests: 400 each, no decision, the chain did not move".into())
        }
        (before, after) => Err(Broken::ChainMoved { before, after }),
    }
}

async fn replayed(
    r: &mut Run<'_>,
    ta: Option<&str>,
    a: &str,
    (read, doc): (&str, &str),
    s: &str,
) -> Result<String, Broken> {
    let body = json!({"actor": a, "action": read, "resource": doc, "request_id": format!("conf-{s}-same")});
    let first = r.ask("a request id, first time", ta, body.clone()).await?;
    let second = r.ask("the same request id again", ta, body).await?;
    let (h1, h2) = (first.hash("current_hash"), second.hash("current_hash"));
    if h1.is_none() || h1 == h2 {
        return Err(Broken::Cached {
            hash: h1.map(str::to_owned),
        });
    }
    for x in [&first, &second] {
        let rid = x
            .body
            .get("audit")
            .and_then(|a| a.get("context"))
            .and_then(|c| c.get("request_id"))
            .and_then(Value::as_str);
        if rid != Some(&format!("conf-{s}-same")) {
            return Err(Broken::RequestId {
                what: x.what.clone(),
                found: rid.map(str::to_owned),
            });
        }
    }
    match (first.seq(), second.seq()) {
        (Some(x), Some(y)) if y > x => {
            Ok("two distinct decisions, each recording the request id".into())
        }
        (first, second) => Err(Broken::NotLater { first, second }),
    }
}

fn answer_shape(answers: &[Answer]) -> Result<String, Broken> {
    for a in answers {
        check(Schema::DecisionAnswer, &a.body).map_err(|source| Broken::Schema {
            what: a.what.clone(),
            schema: "decision-answer.schema.json",
            source,
        })?;
        a.outcome()?;
    }
    Ok(format!(
        "{} answers match decision-answer.schema.json and their HTTP status",
        answers.len()
    ))
}

fn envelopes_verify(t: &Target, answers: &[Answer]) -> Result<String, Broken> {
    let Some(bytes) = &t.keyring else {
        return Err(Broken::NoKeyring);
    };
    let ring = Keyring::from_json(bytes).map_err(Broken::Keyring)?;
    for a in answers {
        let ins = a.inspect(&ring)?;
        if ins.matched != Some(Profile::V1) {
            return Err(Broken::NotV1 {
                what: a.what.clone(),
            });
        }
        if !matches!(ins.signature, SigCheck::Verified) {
            return Err(Broken::Signature {
                what: a.what.clone(),
                check: ins.signature,
            });
        }
    }
    Ok(format!(
        "{} envelopes: v1, hash recomputed, signature verified under the keyring given",
        answers.len()
    ))
}

fn chain_continues(answers: &[Answer]) -> Result<String, Broken> {
    // Signatures are `envelopes_verify`'s case: here every record counts, and the chain
    // model (`check_line`) judges each consecutive pair: hash, link and seq, as a verifier would.
    let no_keys = Keyring::new();
    let mut prev: Option<(&Answer, Node)> = None;
    let mut linked = 0;
    for a in answers {
        let ins = a.inspect(&no_keys)?;
        let node = ins.node(true);
        let seq = node.seq.ok_or_else(|| Broken::NoSeq {
            what: a.what.clone(),
        })?;
        let chain = ins.envelope.v1.as_ref().map(|v| v.chain_id.clone());
        if let Some((p, pn)) = &prev {
            let pchain = p.body.get("audit").and_then(|x| x.get("chain_id"));
            if chain.as_deref() != pchain.and_then(Value::as_str) {
                return Err(Broken::OtherChain {
                    what: a.what.clone(),
                    chain,
                    previous: pchain.cloned(),
                });
            }
            // The order answers came in, which the API promises: not a chain rule.
            let pseq = pn.seq.unwrap_or(0);
            if seq <= pseq {
                return Err(Broken::SeqNotRising {
                    what: a.what.clone(),
                    seq,
                    previous: pseq,
                });
            }
            if seq == pseq + 1 {
                let on_line = Tip {
                    current: pn.current,
                    position: pseq,
                    seq: pn.seq,
                    main: true,
                    successor: Successor::None,
                    successor_at: None,
                    at: None,
                };
                check_line(Some(on_line), Some(Profile::V1), [node.clone()]).map_err(
                    |(_, why)| Broken::Link {
                        what: a.what.clone(),
                        seq,
                        previous: pseq,
                        why,
                    },
                )?;
                linked += 1;
            }
        }
        prev = Some((a, node));
    }
    if answers.len() > 1 && linked == 0 {
        return Err(Broken::NoConsecutive);
    }
    Ok(format!(
        "{} answers on one chain, seq rising, {linked} consecutive links checked",
        answers.len()
    ))
}
