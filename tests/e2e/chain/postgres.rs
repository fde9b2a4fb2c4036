//! The store on PostgreSQL, end to end with the real binary: several receivers and control
//! planes writing one database at once, a receiver killed mid-load, two anchoring jobs, and a
//! streaming replica serving the readers.
//!
//! Needs a PostgreSQL server: `ZT_TEST_POSTGRES` (its URL) and, for the replica,
//! `ZT_TEST_POSTGRES_DIR` (its folder): scripts/test.sh starts one with scripts/postgres.sh.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use zt_core::Hash32;
use zt_store::{Location, ScratchDatabase, Store};
use zt_testkit::keys::{shuffle, write_lines, write_records};
use zt_testkit::postgres::{postgres_bin, postgres_sh, scratch, PgServer};
use zt_testkit::{wait_until, Proc, Server};

use crate::{
    allowed, anchor_once, anchored_events, assert_exit, assert_exit_saying, bin, both,
    import_in as import, reconcile, s, v1_chain, v1_keyring, verify_db, zt, Setup,
};

/// `zt-audit serve --db URL` on a free port, under the v1 keyring.
fn serve(url: &str) -> Server {
    Server::serve(bin(), url, &v1_keyring(), &[])
}

/// An open-mode `zt-audit control-plane` with data in `dir` and decisions in `url`, with
/// `extra` arguments.
fn control_plane(dir: &std::path::Path, url: &str, extra: &[&str]) -> zt_testkit::ControlPlane {
    let mut args = vec!["--db", url, "--open"];
    args.extend_from_slice(extra);
    zt_testkit::ControlPlane::start(bin(), dir, &args)
}

/// A scratch database (see [`scratch`]), its URL, and a folder for the test's files.
fn scratch_and_folder(prefix: &str) -> (ScratchDatabase, String, tempfile::TempDir) {
    let db = scratch(prefix);
    let url = db.url();
    (db, url, tempfile::tempdir().unwrap())
}

/// The names of the store's chains.
fn chain_names(db: &ScratchDatabase) -> Vec<String> {
    Store::open_read_only(db.location())
        .unwrap()
        .chains()
        .unwrap()
        .into_iter()
        .map(|c| c.chain)
        .collect()
}

/// The kinds and inputs of a verify report's findings, sorted.
fn findings(report: &Value) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or_default().to_owned(),
                f["input"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    f.sort();
    f
}

/// Four receivers on one database take overlapping, shuffled, duplicated envelopes of the
/// same chains from the real OpenTelemetry Python SDK at once; the store then holds each
/// record once, the fork kept and flagged, and verifies exactly as a SQLite store of the same
/// envelopes does.
#[test]
fn four_receivers_write_one_store_that_verifies_as_sqlite_does() {
    let py = zt_testkit::tools::python();
    let db = scratch("zt_four");
    let url = db.url();
    let mut all: Vec<(String, Hash32)> = Vec::new();
    let mut fork_after = Hash32::ZERO;
    for c in ["pg-a", "pg-b", "pg-c"] {
        let chain = v1_chain(c, 0, 150, Hash32::ZERO, |s| {
            if s.is_multiple_of(5) {
                "deny"
            } else {
                "allow"
            }
        });
        if c == "pg-a" {
            fork_after = chain[39].1;
        }
        all.extend(chain);
    }
    // A second genuine record at seq 40 of pg-a (another decision): a fork, both kept.
    all.extend(allowed("pg-a", 40, 1, fork_after));
    let tmp = tempfile::tempdir().unwrap();
    let receivers: Vec<Server> = (0..4).map(|_| serve(&url)).collect();
    let mut files = Vec::new();
    for w in 0..4u64 {
        let mut mine: Vec<&str> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as u64 % 4 != w)
            .map(|(_, l)| l.0.as_str())
            .collect();
        let again: Vec<&str> = mine.iter().step_by(5).copied().collect();
        mine.extend(again);
        shuffle(&mut mine, 0x5eed + w);
        let f = tmp.path().join(format!("sender-{w}.jsonl"));
        write_lines(&f, &mine);
        files.push(f);
    }
    std::thread::scope(|s| {
        for (f, receiver) in files.iter().zip(&receivers) {
            let py = py.clone();
            s.spawn(move || {
                let (code, report, err) =
                    zt_testkit::tools::send_envelopes(&py, &receiver.url, f, &["--timeout", "60"]);
                assert!(
                    code == Some(0) && report["ok"] == true && report["rejected"] == 0,
                    "{report} {err}"
                );
            });
        }
    });
    drop(receivers);
    let store = Store::open_read_only(db.location()).unwrap();
    assert_eq!(store.count_records().unwrap(), 451, "each record once");
    assert_eq!(
        store.count_forks().unwrap(),
        1,
        "the fork's later claimant (the chain model's one fork rule)"
    );
    assert_eq!(store.count_waiting().unwrap(), 0);
    assert_eq!(store.count_copies().unwrap(), 0);
    drop(store);
    // The same envelopes, one writer, SQLite.
    let reference = tmp.path().join("reference.db");
    import(s(&reference), tmp.path(), &all);
    let (code, report) = verify_db(&url);
    let (ref_code, ref_report) = verify_db(&reference);
    assert_eq!(report["records"], 451, "{report:#}");
    // Which of the fork's two genuine claimants holds seq 40 (and so where pg-a's main line
    // ends) is the first to arrive, by the chain model's rule: the only difference allowed.
    let order_free = |r: &Value| -> Value {
        let mut chains = r["chains"].clone();
        for c in chains.as_array_mut().unwrap() {
            if c["chain"] == "pg-a" {
                let o = c.as_object_mut().unwrap();
                o.remove("head");
                o.remove("last");
            }
        }
        chains
    };
    assert_eq!(
        (code, &report["records"], order_free(&report)),
        (ref_code, &ref_report["records"], order_free(&ref_report)),
        "{report:#}\n{ref_report:#}"
    );
    assert_eq!(findings(&report), findings(&ref_report), "{report:#}");
    assert!(
        findings(&report).iter().any(|(k, _)| k.contains("fork")),
        "{report:#}"
    );
}

/// An HTTP client that gives an answer 20 s.
fn exporter() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn post(client: &reqwest::blocking::Client, endpoint: &str, lines: &[(String, Hash32)]) -> bool {
    let recs: Vec<Value> = lines
        .iter()
        .map(|(l, _)| {
            json!({"attributes": [{"key": "event.name", "value": {"stringValue": "zt.audit.decision"}}],
                   "body": {"stringValue": l}})
        })
        .collect();
    let body = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": recs}]}]}).to_string();
    client
        .post(endpoint)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .is_ok_and(|r| r.status().is_success())
}

/// A receiver killed with SIGKILL while it takes a stream of envelopes: every envelope it
/// acknowledged is in the store (a 200 is sent only after the commit); the ones it did not
/// acknowledge are sent to the other receiver, as a load balancer would, and the chain ends
/// whole.
#[test]
fn a_receiver_killed_mid_load_loses_no_acknowledged_envelope() {
    zt_tls::install_default_provider();
    let db = scratch("zt_kill");
    let url = db.url();
    let chain = allowed("pg-kill", 0, 600, Hash32::ZERO);
    let victim = serve(&url);
    let victim_endpoint = victim.url.clone();
    let other = serve(&url);
    let other_endpoint = &other.url;
    let client = exporter();
    let batches: Vec<&[(String, Hash32)]> = chain.chunks(5).collect();
    let acked = std::sync::Mutex::new(Vec::<Hash32>::new());
    let victim_acks = std::sync::atomic::AtomicUsize::new(0);
    let mut victim = Some(victim);
    let mut unacked: Vec<usize> = Vec::new();
    std::thread::scope(|s| {
        // Even batches go to the victim, odd ones to the other receiver, both at once.
        let to_victim = s.spawn(|| {
            let mut failed = Vec::new();
            for (i, b) in batches.iter().enumerate().step_by(2) {
                if post(&client, &victim_endpoint, b) {
                    acked.lock().unwrap().extend(b.iter().map(|l| l.1));
                    victim_acks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                } else {
                    failed.push(i);
                }
            }
            failed
        });
        s.spawn(|| {
            for b in batches.iter().skip(1).step_by(2) {
                assert!(post(&client, other_endpoint, b));
                acked.lock().unwrap().extend(b.iter().map(|l| l.1));
            }
        });
        wait_until(
            "the victim to acknowledge 20 batches",
            Duration::from_secs(60),
            || victim_acks.load(std::sync::atomic::Ordering::SeqCst) >= 20,
        );
        let mut p = victim.take().unwrap();
        p.child.kill().unwrap();
        p.child.wait().unwrap();
        unacked = to_victim.join().unwrap();
    });
    assert!(
        !unacked.is_empty(),
        "the kill came before the end of the load"
    );
    let acked = acked.into_inner().unwrap();
    let store = Store::open_read_only(db.location()).unwrap();
    let missing: Vec<&Hash32> = acked
        .iter()
        .filter(|h| store.find_record(h).unwrap().is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged envelopes lost",
        missing.len()
    );
    // What the victim never acknowledged goes to the survivor; the chain is then whole.
    for i in unacked {
        assert!(post(&client, other_endpoint, batches[i]));
    }
    assert_eq!(store.count_records().unwrap(), 600);
    assert_eq!(store.count_waiting().unwrap(), 0);
    let (code, report) = verify_db(&url);
    assert_eq!((code, &report["records"]), (0, &json!(600)), "{report:#}");
}

/// `anchor run --every`, reading the first outcome line it prints.
fn anchor_job(
    anvil: &crate::Anvil,
    key: &str,
    db: &str,
    contract: &str,
    log: &str,
) -> (Proc, String) {
    let mut child = bin()
        .command(["anchor", "run", "--db", db, "--rpc", &anvil.url])
        .args(["--contract", contract, "--log", log, "--every", "1h"])
        .args(["--receipt-timeout", "20s"])
        .env("ZT_ANCHOR_KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Proc(child), line)
}

/// Epoch numbers of the contract's `Anchored` events (topic 2).
fn anchored_epochs(anvil: &crate::Anvil, contract: &str) -> Vec<u64> {
    anchored_events(anvil, contract)
        .iter()
        .map(|e| {
            u64::from_str_radix(
                e["topics"][2].as_str().unwrap().trim_start_matches("0x"),
                16,
            )
            .unwrap()
        })
        .collect()
}

/// One anchoring job leads each log across hosts: a second job stands by while the leader
/// lives and takes over when it is gone; two jobs started together anchor each epoch once.
/// Then a streaming replica serves verify, reconcile and the browser.
#[test]
fn one_anchoring_job_leads_and_a_replica_serves_the_readers() {
    let (db, url, tmp) = scratch_and_folder("zt_anchor");
    let chain = allowed("pg-anchor", 0, 30, Hash32::ZERO);
    import(&url, tmp.path(), &chain[..10]);
    let t = Setup::start();
    let (anvil, key, contract) = (&t.anvil, &t.key, &t.contract);
    let once = || anchor_once(&anvil.url, key, &url, contract, "pg");

    let (leader, first) = anchor_job(anvil, key, &url, contract, "pg");
    assert!(first.contains("epoch 1"), "{first}");
    let out = once();
    assert_exit(&out, 0);
    assert!(
        crate::stdout(&out).contains("standing by"),
        "{}",
        both(&out)
    );
    assert_eq!(anchored_epochs(anvil, contract), [1]);

    // The leader ends (its session, and with it the lock): the next job leads.
    drop(leader);
    import(&url, tmp.path(), &chain[10..20]);
    assert_exit(&once(), 0);
    assert_eq!(anchored_epochs(anvil, contract), [1, 2]);

    // Two jobs at once: each epoch once.
    import(&url, tmp.path(), &chain[20..]);
    let outs: Vec<std::process::Output> = std::thread::scope(|s| {
        let jobs: Vec<_> = (0..2).map(|_| s.spawn(once)).collect();
        jobs.into_iter().map(|j| j.join().unwrap()).collect()
    });
    let epochs = anchored_epochs(anvil, contract);
    assert_eq!(epochs, [1, 2, 3], "{}\n{}", both(&outs[0]), both(&outs[1]));
    let store = Store::open_read_only(db.location()).unwrap();
    assert_eq!(
        store
            .epochs(None)
            .unwrap()
            .iter()
            .map(|e| e.epoch)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    drop(store);

    // A proof from the PostgreSQL store verifies on chain, under the pinned trust root.
    let bundle = tmp.path().join("proof.json");
    let record = chain[12].1.to_hex();
    let out = zt(
        None,
        &[
            "prove",
            "--db",
            &url,
            "--record",
            &record,
            "--out",
            s(&bundle),
        ],
    );
    assert_exit(&out, 0);
    let owner = crate::address(key);
    let pins = [
        "--rpc",
        &anvil.url,
        "--contract",
        contract,
        "--writer",
        &owner,
    ];
    let out = crate::verify_proof(&bundle, &pins);
    assert_exit(&out, 0);
    assert!(crate::stdout(&out).contains("VALID"), "{}", both(&out));

    // A streaming replica of the server: the readers work on it, writers are refused.
    let primary_dir = std::env::var("ZT_TEST_POSTGRES_DIR").unwrap_or_else(|_| {
        panic!(
            "ZT_TEST_POSTGRES_DIR: the folder of the ZT_TEST_POSTGRES server (scripts/postgres.sh)"
        )
    });
    let replica = PgServer::replica(&primary_dir);
    let replica_url = replica.database(&url);
    wait_until("the replica to catch up", Duration::from_secs(60), || {
        Store::open_read_only(&Location::Postgres(replica_url.clone()))
            .ok()
            .and_then(|s| s.epochs(None).ok())
            .is_some_and(|e| e.len() == 3)
    });
    let (code, report) = verify_db(&replica_url);
    assert_eq!((code, &report["records"]), (0, &json!(30)), "{report:#}");
    let (code, report) = reconcile(anvil, &replica_url, contract, &owner, "pg");
    assert_eq!(code, 0, "{report:#}");
    let app = zt_tui::app::App::new(
        Store::open_read_only(&Location::Postgres(replica_url.clone())).unwrap(),
    )
    .unwrap();
    assert_eq!(app.rows.len(), 30, "the browser's first page, newest first");
    assert_eq!(app.rows[0].position, Some(29));
    let one = tmp.path().join("one-more.jsonl");
    write_records(&one, &allowed("pg-replica", 0, 1, Hash32::ZERO));
    let out = bin().import(&replica_url, &v1_keyring(), &[&one]);
    assert_exit(&out, 2);
    assert!(
        both(&out).contains("read-only") || both(&out).contains("recovery"),
        "{}",
        both(&out)
    );
}

/// Two control planes, each with its own key and chain, store their decisions in one
/// PostgreSQL database at once; the store verifies under both keyrings, each chain whole.
#[test]
fn two_control_planes_share_one_store() {
    zt_tls::install_default_provider();
    let (db, url, tmp) = scratch_and_folder("zt_cps");
    let mut planes = Vec::new();
    for i in 0..2 {
        planes.push(control_plane(&tmp.path().join(format!("cp{i}")), &url, &[]));
    }
    let client = reqwest::blocking::Client::new();
    std::thread::scope(|s| {
        for cp in &planes {
            let base = &cp.base;
            let client = &client;
            s.spawn(move || {
                for n in 0..40 {
                    let r = client
                        .post(format!("{base}/actions"))
                        .json(&json!({"actor": "agent-pg", "action": "x.read", "resource": format!("r/{n}")}))
                        .send()
                        .unwrap();
                    // Deny by default: 403 is a decision too (on record, like an allow).
                    let status = r.status().as_u16();
                    let answer: Value = r.json().unwrap();
                    assert!(
                        matches!(status, 200 | 403) && answer["audit"].is_object(),
                        "{status} {answer}"
                    );
                }
            });
        }
    });
    let mut keys = Vec::new();
    for cp in planes {
        let ring: Value = serde_json::from_slice(&std::fs::read(cp.keyring()).unwrap()).unwrap();
        drop(cp);
        keys.extend(ring["keys"].as_array().unwrap().iter().cloned());
    }
    let both_rings = tmp.path().join("keyring.json");
    std::fs::write(&both_rings, json!({ "keys": keys }).to_string()).unwrap();
    let (code, report) = bin().verify_db(&url, &both_rings);
    assert_eq!(code, 0, "{report:#}");
    assert!(report["records"].as_u64().unwrap() >= 80, "{report:#}");
    // A control plane naming another's chain would fork it: refused at start while the chain's
    // writer runs.
    let taken = chain_names(&db)
        .into_iter()
        .find(|c| !c.ends_with("admin"))
        .unwrap();
    let holder = control_plane(&tmp.path().join("cp-again"), &url, &["--chain-id", &taken]);
    let twice = tmp.path().join("cp-twice");
    let out = bin().run([
        "control-plane",
        "--dir",
        s(&twice),
        "--db",
        &url,
        "--open",
        "--listen",
        "127.0.0.1:0",
        "--chain-id",
        &taken,
    ]);
    assert_exit_saying(&out, 2, "another control plane writes chain");
    drop(holder);
    let chains = chain_names(&db);
    assert!(
        chains.iter().filter(|c| !c.ends_with("admin")).count() >= 2,
        "{chains:?}"
    );
    let store = Store::open_read_only(db.location()).unwrap();
    assert_eq!(store.count_forks().unwrap(), 0);
}

/// The database restarts under a running receiver: the batch in flight fails (no 200, nothing
/// half-written), the receiver opens a new session, and what the exporter sends again lands;
/// the chain ends whole.
#[test]
fn a_receiver_rides_out_a_database_restart() {
    zt_tls::install_default_provider();
    let server = PgServer::start();
    let url = server.url.clone();
    let chain = allowed("pg-restart", 0, 40, Hash32::ZERO);
    let receiver = serve(&url);
    let endpoint = &receiver.url;
    let client = exporter();
    assert!(post(&client, endpoint, &chain[..20]));
    server.restart();
    // An exporter retries until acknowledged: the first attempt may meet the dead session.
    let mut attempts = 0;
    while !post(&client, endpoint, &chain[20..]) {
        attempts += 1;
        assert!(attempts < 20, "the receiver never recovered");
        std::thread::sleep(Duration::from_millis(250));
    }
    let (code, report) = verify_db(&url);
    assert_eq!((code, &report["records"]), (0, &json!(40)), "{report:#}");
}

/// The backup and restore the deployment guide gives: `pg_dump`, `pg_restore` into a new
/// database, and `verify --db` on the copy says what it said on the original; a copy edited
/// after the dump does not verify.
#[test]
fn a_restored_backup_verifies_as_the_original() {
    let (_db, url, tmp) = scratch_and_folder("zt_backup");
    let chain = allowed("pg-backup", 0, 25, Hash32::ZERO);
    import(&url, tmp.path(), &chain);
    // A PostgreSQL client program, which must succeed.
    let pg = |program: &str, args: &[&str]| {
        let out = Command::new(postgres_bin().join(program))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program}: {}",
            zt_testkit::stderr(&out)
        );
    };
    let dump = tmp.path().join("audit.dump");
    pg("pg_dump", &["--format=custom", "--file", s(&dump), &url]);
    let restored = scratch("zt_restored");
    pg(
        "pg_restore",
        &["--no-owner", "--dbname", &restored.url(), s(&dump)],
    );
    let (code, original) = verify_db(&url);
    let (rcode, copy) = verify_db(restored.url());
    assert_eq!((code, rcode), (0, 0), "{copy:#}");
    assert_eq!(copy["records"], 25);
    assert_eq!(original["chains"], copy["chains"]);
    // An edit in the restored copy (a decision flipped in the stored bytes) is found.
    let edit = "UPDATE records SET raw = convert_to(replace(convert_from(raw, 'UTF8'), \
                '\"decision\":\"allow\"', '\"decision\":\"deny\"'), 'UTF8') WHERE position = 7";
    pg("psql", &[&restored.url(), "-qc", edit]);
    let (code, report) = verify_db(restored.url());
    assert_eq!(code, 1, "{report:#}");
}

/// `sslmode=require`: the connection is TLS and the server's certificate is verified against
/// `PGSSLROOTCERT`; a server whose certificate another CA signed is refused, and so is a plain
/// connection to a server that requires TLS.
#[test]
fn tls_to_postgres_verifies_the_server() {
    let server = PgServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let ca = zt_tls::test_pki::Ca::with_uris("zt postgres test CA", &[]);
    let (cert, key) = ca.server().write(tmp.path(), "server");
    let ca_file = tmp.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let other = zt_tls::test_pki::Ca::with_uris("another CA", &[]);
    let other_file = tmp.path().join("other.pem");
    std::fs::write(&other_file, other.pem()).unwrap();
    postgres_sh(&["tls", s(server.dir.path()), s(&cert), s(&key)]);
    let file = tmp.path().join("tls.jsonl");
    write_records(&file, &allowed("pg-tls", 0, 5, Hash32::ZERO));
    let ring = v1_keyring();
    let run = |url: &str, root: &std::path::Path| {
        bin()
            .command(["import", "--db", url, "--keyring", s(&ring), s(&file)])
            .env("PGSSLROOTCERT", root)
            .output()
            .unwrap()
    };
    let tls_url = format!("{}?sslmode=require", server.url);
    assert_exit(&run(&tls_url, &ca_file), 0);
    let out = run(&tls_url, &other_file);
    assert_exit(&out, 2);
    assert!(
        both(&out).to_lowercase().contains("certificate"),
        "{}",
        both(&out)
    );
    let out = run(&server.url, &ca_file);
    assert_exit_saying(&out, 2, "no encryption");
    let out = bin()
        .command([
            "verify",
            "--format",
            "json",
            "--db",
            &tls_url,
            "--keyring",
            s(&ring),
        ])
        .env("PGSSLROOTCERT", &ca_file)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        (out.status.code(), &report["records"]),
        (Some(0), &json!(5)),
        "{}",
        both(&out)
    );
}
