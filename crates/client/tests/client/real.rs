//! Against a real control plane on loopback.

use std::path::Path;
use std::time::Duration;

use zt_client::{ActionRequest, ClientConfig, GuardedClient, PinnedKey, Refusal};
use zt_control_plane::Options;

use zt_tls::ClientTls;

use crate::{admin_post, assert_refused, call, client, start, Ingest, Running, SideEffect};

/// A control plane on `dir` with `opts`, and the plain HTTP client its admin calls go through.
struct Cp {
    cp: Running,
    http: reqwest::Client,
}

impl Cp {
    fn start(dir: &Path, opts: Options) -> Cp {
        Cp {
            cp: start(dir, opts),
            http: reqwest::Client::new(),
        }
    }

    /// In open mode, with agent `actor` registered.
    async fn open(dir: &Path, actor: &str) -> Cp {
        let opts = Options {
            open: true,
            ..Options::default()
        };
        let cp = Cp::start(dir, opts);
        cp.admin_post("/agents", serde_json::json!({ "actor": actor }))
            .await;
        cp
    }

    fn client(&self, token: Option<String>) -> GuardedClient {
        client(&self.cp, ClientTls::default(), token)
    }

    async fn admin_post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        admin_post(&self.cp, &self.http, path, body).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_verified_allow_runs_the_action() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = Cp::open(tmp.path(), "agent-hello").await;
    let client = cp.client(None);

    // denied by the default forbid: not run
    let req = ActionRequest::new("agent-hello", "aws.ec2.terminate_instances").resource("i-1");
    match assert_refused(&client, &req, "denied").await {
        Refusal::Denied { reason, status, .. } => {
            assert_eq!(status, 403);
            assert!(reason.contains("forbidden by default"), "{reason}");
        }
        other => panic!("{other}"),
    }
    // denied by default (no policy yet): not run
    let hello =
        ActionRequest::new("agent-hello", "hello-world.say_hello").resource("demo/greeting");
    assert_refused(&client, &hello, "denied").await;
    // an unregistered agent: not run
    let stranger =
        ActionRequest::new("agent-stranger", "hello-world.say_hello").resource("demo/greeting");
    assert_refused(&client, &stranger, "denied").await;

    cp.admin_post(
        "/policies",
        serde_json::json!({"action": "hello-world.say_hello", "resource": "demo/greeting"}),
    )
    .await;
    let effect = SideEffect::default();
    let done = call(&client, &hello, &effect).await.unwrap();
    assert_eq!(effect.count(), 1);
    // seq 0 to 2 are the refusals (the agent's registration is on the admin chain)
    assert_eq!(done.decision.seq, 3);
    assert!(done.decision.envelope.contains("\"decision\":\"allow\""));
    // the allow names exactly what was asked: another resource is still refused
    let other = ActionRequest::new("agent-hello", "hello-world.say_hello").resource("demo/other");
    assert_refused(&client, &other, "denied").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_for_another_actor_does_not_run_the_action() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = Cp::start(tmp.path(), Options::default());
    let a = cp
        .admin_post("/agents", serde_json::json!({"actor": "agent-a"}))
        .await;
    cp.admin_post("/agents", serde_json::json!({"actor": "agent-b"}))
        .await;
    cp.admin_post("/policies", serde_json::json!({"action": "x.run"}))
        .await;
    let token_a = a["token"].as_str().unwrap().to_owned();
    let as_a = cp.client(Some(token_a));
    // claiming b with a's token
    match assert_refused(&as_a, &ActionRequest::new("agent-b", "x.run"), "denied").await {
        Refusal::Denied { reason, .. } => assert!(reason.contains("actor mismatch"), "{reason}"),
        other => panic!("{other}"),
    }
    // no token at all
    let anon = cp.client(None);
    match assert_refused(&anon, &ActionRequest::new("agent-a", "x.run"), "denied").await {
        Refusal::Denied { status, .. } => assert_eq!(status, 401),
        other => panic!("{other}"),
    }
    let effect = SideEffect::default();
    call(&as_a, &ActionRequest::new("agent-a", "x.run"), &effect)
        .await
        .unwrap();
    assert_eq!(effect.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_key_from_elsewhere_refuses_the_real_control_plane() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = Cp::open(tmp.path(), "agent-hello").await;
    cp.admin_post("/policies", serde_json::json!({"action": "hello"}))
        .await;
    let stranger = zt_core::crypto::SigningKey::generate();
    let pinned = PinnedKey::new(
        zt_control_plane::signer::key_id_of(&stranger.public_key()),
        stranger.public_key(),
    );
    let client = GuardedClient::new(ClientConfig::new(cp.cp.base.clone(), pinned)).unwrap();
    assert_refused(
        &client,
        &ActionRequest::new("agent-hello", "hello"),
        "wrong_key",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_control_plane_that_is_down_runs_nothing() {
    // A port nothing listens on.
    let port = zt_testkit::http::free_port();
    let key = zt_core::crypto::SigningKey::generate();
    let mut cfg = ClientConfig::new(
        format!("http://127.0.0.1:{port}"),
        PinnedKey::new("k", key.public_key()),
    );
    cfg.timeout = Duration::from_secs(2);
    let client = GuardedClient::new(cfg).unwrap();
    assert_refused(&client, &ActionRequest::new("a", "b"), "connect").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verified_envelopes_are_re_exported_to_a_real_ingest() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = Cp::start(
        &tmp.path().join("cp"),
        Options {
            open: true,
            ..Options::default()
        },
    );
    cp.admin_post("/agents", serde_json::json!({"actor": "agent-hello"}))
        .await;
    cp.admin_post("/policies", serde_json::json!({"action": "hello"}))
        .await;
    // A real zt-ingest receiver; the control plane itself does not export here, so whatever
    // lands came from the client.
    let db = tmp.path().join("ingest.db");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/v1/logs", l.local_addr().unwrap());
    let keyring = cp.cp.keyring();
    let ingest = Ingest::start(l, &db, &keyring, zt_ingest::server::Config::default());
    let mut cfg = ClientConfig::new(
        cp.cp.base.clone(),
        PinnedKey::from_keyring_json(&keyring).unwrap(),
    );
    cfg.export = Some(zt_export::ExportConfig::new(endpoint));
    let client = GuardedClient::new(cfg).unwrap();
    let effect = SideEffect::default();
    call(
        &client,
        &ActionRequest::new("agent-hello", "hello"),
        &effect,
    )
    .await
    .unwrap();
    assert_refused(
        &client,
        &ActionRequest::new("agent-hello", "nope"),
        "denied",
    )
    .await;
    let c = std::sync::Arc::new(client);
    let c2 = std::sync::Arc::clone(&c);
    assert!(
        tokio::task::spawn_blocking(move || c2.flush_export(Duration::from_secs(20)))
            .await
            .unwrap()
    );
    tokio::task::spawn_blocking(move || ingest.stop())
        .await
        .unwrap();
    let store = zt_store::Store::open(&db).unwrap();
    assert_eq!(store.count_records().unwrap(), 2);
    assert_eq!(store.count_quarantined().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allow_on_the_policy_facts_sent_runs_against_the_real_control_plane() {
    // The real control plane seals the request's context as `context.request`; the client
    // compares it in RFC 8785 form, so an honest answer passes whatever order or nesting the
    // agent wrote its facts in.
    let tmp = tempfile::tempdir().unwrap();
    let cp = Cp::open(tmp.path(), "agent-ops").await;
    cp.admin_post(
        "/policies",
        serde_json::json!({"cedar": r#"@id("approved-changes")
            permit (principal, action == Action::"deploy.run", resource)
            when { context.change.approved && context.hour >= 9 };"#}),
    )
    .await;
    let client = cp.client(None);
    let deploy = |facts: &str| {
        ActionRequest::new("agent-ops", "deploy.run")
            .resource("svc/api")
            .context_json(facts)
            .unwrap()
    };
    let effect = SideEffect::default();
    let done = call(
        &client,
        &deploy(r#"{"hour":10,"change":{"ticket":"CHG-7","approved":true}}"#),
        &effect,
    )
    .await
    .unwrap();
    assert_eq!(effect.count(), 1);
    assert!(
        done.decision
            .envelope
            .contains(r#""request":{"change":{"approved":true,"ticket":"CHG-7"},"hour":10}"#),
        "{}",
        done.decision.envelope
    );
    // other facts, other decision: the deny is verified (facts included) and nothing runs
    assert_refused(
        &client,
        &deploy(r#"{"hour":10,"change":{"ticket":"CHG-7","approved":false}}"#),
        "denied",
    )
    .await;
}
