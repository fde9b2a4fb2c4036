//! Decisions exported over OTLP to a real `zt-ingest` receiver; an outage never changes a
//! decision and the backlog lands once the receiver is back.

use std::time::Duration;

use zt_control_plane::Options;
use zt_export::ExportConfig;
use zt_testkit::inproc::Ingest;

use crate::{act, count, open_opts, verify_store};

#[tokio::test(flavor = "multi_thread")]
async fn decisions_reach_ingest_and_an_outage_only_delays_them() {
    let tmp = tempfile::tempdir().unwrap();
    // Reserve a port, then leave it closed: the receiver is "down" for the first decisions.
    let port = zt_testkit::http::free_port();
    let mut cfg = ExportConfig::new(format!("http://127.0.0.1:{port}/v1/logs"));
    cfg.timeout = Duration::from_secs(2);
    let opts = Options {
        export: Some(cfg),
        ..open_opts()
    };
    let hello = serde_json::json!({"action": "hello"});
    let cp = crate::with_agent(&tmp.path().join("cp"), opts, "agent-hello", hello).await;
    for _ in 0..5 {
        // the export is failing, the decisions are not affected
        assert_eq!(act(&cp.base, None, "agent-hello", "hello", "").await.0, 200);
    }
    assert_eq!(act(&cp.base, None, "agent-hello", "nope", "").await.0, 403);
    let watch = cp.watch.clone().unwrap();
    let w = watch.clone();
    assert!(
        !tokio::task::spawn_blocking(move || w.wait_caught_up(Duration::from_millis(300)))
            .await
            .unwrap()
    );
    assert!(watch.last_error().is_some());

    // The receiver comes up on that port: the backlog lands, once.
    let ingest_db = tmp.path().join("ingest.db");
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let ingest = Ingest::start(
        listener,
        &ingest_db,
        &cp.keyring(),
        zt_ingest::server::Config::default(),
    );
    let w = watch.clone();
    assert!(
        tokio::task::spawn_blocking(move || w.wait_caught_up(Duration::from_secs(60)))
            .await
            .unwrap(),
        "export did not catch up: {:?}",
        watch.last_error()
    );
    for _ in 0..3 {
        assert_eq!(act(&cp.base, None, "agent-hello", "hello", "").await.0, 200);
    }
    let w = watch.clone();
    assert!(
        tokio::task::spawn_blocking(move || w.wait_caught_up(Duration::from_secs(30)))
            .await
            .unwrap()
    );
    let keyring = cp.keyring();
    cp.stop();
    drop(ingest);
    assert_eq!(count(&ingest_db), 10, "a registration and nine decisions");
    let report = verify_store(&ingest_db, &keyring);
    assert!(report.ok, "{:?}", report.errors);
    assert_eq!(report.records, 10);
}
