//! Floods: requests past the rate limits are refused with 429 and counted in one sealed
//! summary per window instead of one sealed, fsynced record each; an agent with a token keeps
//! getting its decisions while a tokenless flood goes on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::{act, get, post, records, register, start, verify_store};

fn summaries(recs: &[Value]) -> Vec<&Value> {
    recs.iter()
        .filter(|r| r["action"] == "zt.ratelimit.summary")
        .collect()
}

/// 400 tokenless requests as fast as 16 connections go: past the unauthenticated limit they
/// are 429 with Retry-After, and every one of them is either on record by itself or counted
/// in a sealed summary.
#[tokio::test(flavor = "multi_thread")]
async fn a_tokenless_flood_is_refused_and_summarised_not_sealed_one_by_one() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = start(tmp.path(), zt_control_plane::Options::default());
    let b = cp.base.clone();
    let mut tasks = Vec::new();
    for c in 0..16 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut out = Vec::new();
            for i in 0..25 {
                let r = http
                    .post(format!("{b}/actions"))
                    .header("content-type", "application/json")
                    .body(json!({"actor": format!("flood-{c}"), "action": "x.run", "resource": i.to_string()}).to_string())
                    .send()
                    .await
                    .unwrap();
                let retry = r.headers().get("retry-after").is_some();
                out.push((r.status().as_u16(), retry));
            }
            out
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.extend(t.await.unwrap());
    }
    let limited = answers.iter().filter(|a| a.0 == 429).count();
    let recorded = answers.iter().filter(|a| a.0 == 401).count();
    assert_eq!(limited + recorded, 400, "only 401 or 429: {answers:?}");
    assert!(limited > 0, "no request was rate-limited");
    assert!(
        answers.iter().filter(|a| a.0 == 429).all(|a| a.1),
        "every 429 says when to retry"
    );
    let (_, m) = get(&b, "/metrics", None).await;
    let m = m.as_str().unwrap().to_owned();
    assert!(
        m.contains(&format!(
            "zt_cp_rate_limited_total{{limit=\"unauthenticated\"}} {limited}"
        )),
        "{m}"
    );
    let db = cp.dir.join("decisions.db");
    let keyring = cp.keyring();
    cp.stop();
    let report = verify_store(&db, &keyring);
    assert!(report.ok, "{:?}", report.errors);
    let recs = records(&db);
    let individual = recs
        .iter()
        .filter(|r| r["context"]["identity"] == "unauthenticated")
        .count();
    assert_eq!(individual, recorded);
    let sums = summaries(&recs);
    assert!(!sums.is_empty(), "no summary record");
    let counted: u64 = sums
        .iter()
        .map(|s| s["context"]["refused"].as_u64().unwrap())
        .sum();
    assert_eq!(counted as usize, limited, "{sums:?}");
    for s in &sums {
        assert_eq!(s["decision"], "deny");
        assert_eq!(s["resource"], "unauthenticated");
        assert!(s["context"]["window_start"].is_string(), "{s}");
        assert!(s["context"]["window_end"].is_string(), "{s}");
        assert!(s["reason"].as_str().unwrap().contains("127.0.0.1"), "{s}");
    }
}

/// A tokenless flood on a small queue must not cost an authenticated agent a decision.
#[tokio::test(flavor = "multi_thread")]
async fn a_tokenless_flood_does_not_starve_an_authenticated_agent() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = zt_control_plane::Options {
        queue: 16,
        ..zt_control_plane::Options::default()
    };
    let cp = start(tmp.path(), opts);
    let b = cp.base.clone();
    let admin = cp.admin_token.clone().unwrap();
    let token = register(&b, Some(&admin), "agent-busy").await;
    post(&b, "/policies", Some(&admin), &json!({"action": "x.run"})).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut flood = Vec::new();
    for c in 0..48 {
        let (b, stop) = (b.clone(), Arc::clone(&stop));
        flood.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut sealed, mut limited, mut timed_out) = (0usize, 0usize, 0usize);
            while !stop.load(Ordering::Relaxed) {
                let r = http
                    .post(format!("{b}/actions"))
                    .header("content-type", "application/json")
                    .body(json!({"actor": format!("flood-{c}"), "action": "x.run"}).to_string())
                    .send()
                    .await;
                match r.map(|r| r.status().as_u16()) {
                    Ok(401) => sealed += 1,
                    Ok(429) => limited += 1,
                    // The request timeout, on a machine loaded past the flood: the answer is
                    // gone, its record may or may not have been sealed.
                    Ok(408) => timed_out += 1,
                    other => panic!("a flood request got {other:?}"),
                }
            }
            (sealed, limited, timed_out)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut failed = Vec::new();
    for i in 0..100 {
        let (s, v) = act(&b, Some(&token), "agent-busy", "x.run", &i.to_string()).await;
        if s != 200 {
            failed.push((s, v));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (mut sealed, mut limited, mut timed_out) = (0, 0, 0);
    for f in flood {
        let (s, l, t) = f.await.unwrap();
        sealed += s;
        limited += l;
        timed_out += t;
    }
    let db = cp.dir.join("decisions.db");
    cp.stop();
    assert!(
        failed.is_empty(),
        "{} of 100 decisions failed under a tokenless flood: {:?}",
        failed.len(),
        failed.first()
    );
    // Every flood request is accounted for: its own record (401), or counted in a summary
    // (429: past the rate, or the writer's queue more than half full).
    let recs = records(&db);
    let individual = recs
        .iter()
        .filter(|r| r["context"]["identity"] == "unauthenticated")
        .count();
    assert!(
        (sealed..=sealed + timed_out).contains(&individual),
        "{individual} records of unauthenticated requests for {sealed} answered 401 ({timed_out} timed out)"
    );
    let counted: u64 = summaries(&recs)
        .iter()
        .map(|s| s["context"]["refused"].as_u64().unwrap())
        .sum();
    let counted = counted as usize;
    assert!(
        counted >= limited && individual + counted <= sealed + limited + timed_out,
        "{counted} counted in summaries for {limited} answered 429 ({timed_out} timed out)"
    );
}

/// One agent over its own limit is refused with 429 while another agent is not; the refusals
/// are summarised per agent, and the summary is sealed when its window ends (not only at
/// shutdown).
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_over_its_limit_is_summarised_per_agent_each_window() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = zt_control_plane::Options {
        actor_rate: zt_control_plane::RateLimit {
            per_second: 1.0,
            burst: 5,
        },
        summary_window: std::time::Duration::from_millis(300),
        ..zt_control_plane::Options::default()
    };
    let cp = start(tmp.path(), opts);
    let b = cp.base.clone();
    let admin = cp.admin_token.clone().unwrap();
    post(&b, "/policies", Some(&admin), &json!({"action": "x.run"})).await;
    let noisy = register(&b, Some(&admin), "agent-noisy").await;
    let quiet = register(&b, Some(&admin), "agent-quiet").await;
    let mut statuses = Vec::new();
    for i in 0..20 {
        statuses.push(
            act(&b, Some(&noisy), "agent-noisy", "x.run", &i.to_string())
                .await
                .0,
        );
    }
    let (s, _) = act(&b, Some(&quiet), "agent-quiet", "x.run", "").await;
    assert_eq!(s, 200, "another agent is not limited");
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(limited >= 14, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count() + limited, 20);
    // the window closes while the control plane runs
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let db = cp.dir.join("decisions.db");
    let sums: Vec<Value> = summaries(&records(&db)).into_iter().cloned().collect();
    // one summary per window that refused anything (a slow machine may spread the 20
    // requests over two windows)
    assert!(!sums.is_empty(), "no summary sealed while running");
    assert!(sums
        .iter()
        .all(|s| s["resource"] == "agent/agent-noisy" && s["context"]["limit"] == "actor"));
    let counted: u64 = sums
        .iter()
        .map(|s| s["context"]["refused"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, limited as u64, "{sums:?}");
    let (_, m) = get(&b, "/metrics", None).await;
    assert!(
        m.as_str().unwrap().contains(&format!(
            "zt_cp_rate_limited_total{{limit=\"actor\"}} {limited}"
        )),
        "{m}"
    );
    cp.stop();
}
