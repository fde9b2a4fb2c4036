//! The browser on fixture stores, drawn on ratatui's TestBackend and pinned by snapshots
//! (insta); and its paging and live updates on a generated store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test crate: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use zt_core::keyring::Keyring;
use zt_core::Hash32;
use zt_store::{EpochRow, EpochState, LeafRow, Store};
use zt_testkit::fixtures;
use zt_testkit::text::{raw_chars, HOSTILE};
use zt_tui::app::{App, Key, View};
use zt_tui::ui::{self, Theme};

fn lines(rel: &str) -> Vec<Vec<u8>> {
    std::fs::read(fixtures().join(rel))
        .unwrap()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn ring(rel: &str) -> Keyring {
    Keyring::from_json(&std::fs::read(fixtures().join(rel)).unwrap()).unwrap()
}

/// The interop chain (12 records), the v1 vectors (valid and a fork), and one anchored epoch.
fn fixture_store(dir: &Path) -> PathBuf {
    let db = dir.join("fixture.db");
    let mut store = Store::open(&db).unwrap();
    let interop = ring("interop/zt-infra-full/keyring.json");
    zt_ingest::Pipeline::new(&interop)
        .ingest(
            &mut store,
            &lines("interop/zt-infra-full/valid.jsonl"),
            "import:valid.jsonl",
        )
        .unwrap();
    let v1 = ring("v1/keyring.json");
    for f in ["v1/valid.jsonl", "v1/fork.jsonl"] {
        zt_ingest::Pipeline::new(&v1)
            .ingest(&mut store, &lines(f), &format!("import:{f}"))
            .unwrap();
    }
    let heads = store.main_heads().unwrap();
    let leaves: Vec<LeafRow> = heads.into_iter().filter(|h| h.chain == "cp-east").collect();
    let tx = "0xd3360434838f607f417735ebd3fcf775d48407861989aa552825f3431cf434a5";
    let epoch = EpochRow {
        contract: Some("0x5fbdb2315678afecb367f032d93f642f64180aa3".into()),
        owner: Some("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266".into()),
        tx_hash: Some(tx.into()),
        block_hash: Some("0x01".into()),
        ..finalized("fixture-log", b"fixture root", &leaves)
    };
    store.insert_epoch(&epoch, &leaves).unwrap();
    db
}

/// Epoch 1 of `log` over `leaves`, finalized in block 2 of chain 84532 (nonce 0, one attempt).
fn finalized(log: &str, root: &[u8], leaves: &[LeafRow]) -> EpochRow {
    EpochRow {
        log: log.into(),
        epoch: 1,
        root: Hash32::digest(root),
        leaf_count: leaves.len() as u64,
        state: EpochState::Finalized,
        network_chain_id: Some(84532),
        contract: None,
        owner: None,
        tx_hash: None,
        raw_tx: None,
        nonce: Some(0),
        block_number: Some(2),
        block_hash: None,
        attempts: 1,
        note: None,
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

fn screen(app: &mut App, w: u16, h: u16, color: bool) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| ui::draw(f, app, "fixture.db", Theme { color }))
        .unwrap();
    format!("{}", t.backend())
}

fn keys(app: &mut App, ks: &[Key]) {
    for k in ks {
        app.key(*k).unwrap();
    }
}

fn typed(s: &str) -> Vec<Key> {
    s.chars().map(Key::Char).collect()
}

#[test]
fn decisions_filter_detail_chains_anchors_and_help_render() {
    let tmp = tempfile::tempdir().unwrap();
    let db = fixture_store(tmp.path());
    let mut app = App::new(Store::open(&db).unwrap()).unwrap();
    insta::assert_snapshot!("decisions_80x24", screen(&mut app, 80, 24, false));
    insta::assert_snapshot!("decisions_120x40", screen(&mut app, 120, 40, false));

    keys(&mut app, &[Key::Char('/')]);
    keys(&mut app, &typed("terminate_instances"));
    insta::assert_snapshot!("filter_typing_120x40", screen(&mut app, 120, 40, false));
    keys(&mut app, &[Key::Enter]);
    assert!(!app.rows.is_empty());
    assert!(app
        .rows
        .iter()
        .all(|r| r.action.contains("terminate_instances")));
    insta::assert_snapshot!("filtered_120x40", screen(&mut app, 120, 40, false));
    keys(&mut app, &[Key::Esc]);
    let all = app.rows.len();

    keys(&mut app, &[Key::Char('d')]);
    assert!(app.rows.iter().all(|r| r.decision == "deny"));
    assert!(app.rows.len() < all);
    keys(&mut app, &[Key::Char('d')]);
    assert_eq!(app.rows.len(), all);

    // The newest cp-east record is anchored in the fixture epoch.
    let i = app
        .rows
        .iter()
        .position(|r| r.chain.as_deref() == Some("cp-east"))
        .unwrap();
    app.cursor = i;
    keys(&mut app, &[Key::Enter]);
    assert_eq!(app.view, View::Detail);
    let detail = screen(&mut app, 120, 40, false);
    assert!(detail.contains("✓ hash"), "{detail}");
    assert!(detail.contains("epoch 1 (finalized)"), "{detail}");
    insta::assert_snapshot!("detail_120x40", detail);
    keys(&mut app, &[Key::Esc, Key::Char('c')]);
    insta::assert_snapshot!("chains_80x24", screen(&mut app, 80, 24, false));
    keys(&mut app, &[Key::Char('a')]);
    insta::assert_snapshot!("anchors_80x24", screen(&mut app, 80, 24, false));
    keys(&mut app, &[Key::Char('v'), Key::Char('?')]);
    insta::assert_snapshot!("help_80x24", screen(&mut app, 80, 24, false));
    keys(&mut app, &[Key::Char('x')]);
    assert!(!app.help);
    keys(&mut app, &[Key::Char('q')]);
    assert!(app.quit);
}

#[test]
fn colour_is_only_a_decoration() {
    let tmp = tempfile::tempdir().unwrap();
    let db = fixture_store(tmp.path());
    let mut app = App::new(Store::open(&db).unwrap()).unwrap();
    // Same characters with and without colour: nothing is said by colour alone.
    assert_eq!(
        screen(&mut app, 80, 24, true),
        screen(&mut app, 80, 24, false)
    );
}

fn generated(dir: &Path, n: u64) -> (PathBuf, Vec<Hash32>) {
    let db = dir.join("gen.db");
    let mut store = Store::open(&db).unwrap();
    store.set_synchronous(false).unwrap();
    let (recs, hashes) = chain("gen", 0, n, Hash32::ZERO);
    let ring = Keyring::new();
    zt_ingest::Pipeline::new(&ring)
        .ingest(&mut store, &recs, "test")
        .unwrap();
    (db, hashes)
}

fn chain(name: &str, start: u64, n: u64, prev: Hash32) -> (Vec<Vec<u8>>, Vec<Hash32>) {
    let sealed = zt_testkit::keys::seal_chain(start, n, prev, None, |seq| {
        zt_core::envelope::V1Draft {
            chain_id: name.into(),
            seq,
            actor: format!("agent-{}", seq % 7),
            action: if seq % 10 == 3 {
                "aws.ec2.terminate_instances"
            } else {
                "hello-world.say_hello"
            }
            .into(),
            resource: format!("r/{seq}"),
            decision: if seq % 10 == 3 { "deny" } else { "allow" }.into(),
            reason: "generated".into(),
            // one second apart, so newest-first is seq descending
            timestamp: zt_core::time::Timestamp::from_unix_nanos(
                1_790_000_000_000_000_000 + i128::from(seq) * 1_000_000_000,
            )
            .to_rfc3339_millis(),
            ..zt_core::envelope::V1Draft::default()
        }
    });
    sealed
        .into_iter()
        .map(|(json, hash)| (json.into_bytes(), hash))
        .unzip()
}

#[test]
fn scrolling_pages_through_thousands_of_rows_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, _) = generated(tmp.path(), 2500);
    let mut app = App::new(Store::open(&db).unwrap()).unwrap();
    app.page_rows = 30;
    let seq_of = |app: &App| app.selected().unwrap().position.unwrap();
    assert_eq!(seq_of(&app), 2499);
    for _ in 0..450 {
        app.key(Key::Down).unwrap();
    }
    assert_eq!(seq_of(&app), 2049);
    for _ in 0..60 {
        app.key(Key::PageDown).unwrap();
    }
    assert_eq!(seq_of(&app), 249);
    assert!(
        app.rows.len() <= 1200,
        "the window stays bounded: {}",
        app.rows.len()
    );
    for _ in 0..20 {
        app.key(Key::PageUp).unwrap();
    }
    assert_eq!(seq_of(&app), 849);
    app.key(Key::End).unwrap();
    assert_eq!(seq_of(&app), 0);
    app.key(Key::Down).unwrap();
    assert_eq!(seq_of(&app), 0, "nothing below the oldest");
    app.key(Key::Up).unwrap();
    assert_eq!(seq_of(&app), 1);
    app.key(Key::Home).unwrap();
    assert_eq!(seq_of(&app), 2499);
    // window rows are strictly newest first, no duplicate, no gap
    for _ in 0..40 {
        app.key(Key::PageDown).unwrap();
    }
    let seqs: Vec<i64> = app.rows.iter().map(|r| r.position.unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "{seqs:?}");
}

#[test]
fn records_written_by_a_running_ingest_appear_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, hashes) = generated(tmp.path(), 10);
    let mut app = App::new(Store::open(&db).unwrap()).unwrap();
    assert_eq!(app.rows.len(), 10);
    // Another connection (an ingest) appends while the browser is open.
    let mut writer = Store::open(&db).unwrap();
    let (more, _) = chain("gen", 10, 5, *hashes.last().unwrap());
    zt_ingest::Pipeline::new(&Keyring::new())
        .ingest(&mut writer, &more, "otlp")
        .unwrap();
    app.tick().unwrap();
    assert_eq!(app.rows.len(), 15);
    assert_eq!(app.rows[0].position, Some(14));
    // Scrolled away from the top: a note instead of a jump.
    app.key(Key::Down).unwrap();
    let (more, _) = chain("other", 0, 1, Hash32::ZERO);
    zt_ingest::Pipeline::new(&Keyring::new())
        .ingest(&mut writer, &more, "otlp")
        .unwrap();
    app.tick().unwrap();
    assert!(app.new_rows);
    assert_eq!(app.cursor, 1);
    app.key(Key::Char('r')).unwrap();
    assert_eq!(app.rows.len(), 16);
}

#[test]
fn a_text_filter_scans_in_bounded_steps_and_finds_every_match() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, _) = generated(tmp.path(), 3000);
    let mut app = App::new(Store::open(&db).unwrap()).unwrap();
    app.page_rows = 30;
    keys(&mut app, &[Key::Char('/')]);
    keys(&mut app, &typed("terminate"));
    keys(&mut app, &[Key::Enter]);
    // G: scan on to the end, idle step by idle step; the cursor lands on the oldest match.
    keys(&mut app, &[Key::End]);
    let mut steps = 0;
    while app.pump().unwrap() {
        steps += 1;
        assert!(steps < 10_000);
    }
    assert!(app.scan.is_none(), "the scan reached the oldest row");
    assert_eq!(app.scanned, 3000);
    assert_eq!(
        app.rows.len(),
        300,
        "every 10th generated record is a terminate"
    );
    assert_eq!(app.selected().unwrap().position, Some(3));
    let direct = Store::open(&db)
        .unwrap()
        .decisions(
            &zt_store::Filter::parse("terminate"),
            zt_store::Page::Newest,
            10_000,
        )
        .unwrap();
    assert_eq!(app.rows, direct);
    // A filter that matches nothing says so once the scan is done.
    keys(&mut app, &[Key::Esc, Key::Char('/')]);
    keys(&mut app, &typed("no-such-thing"));
    keys(&mut app, &[Key::Enter]);
    while app.pump().unwrap() {}
    while app.scan.is_some() {
        app.key(Key::Down).unwrap();
    }
    assert!(app.rows.is_empty());
    let s = screen(&mut app, 80, 24, false);
    assert!(s.contains("none match"), "{s}");
}

/// A store of one record whose every text member carries the sequences, anchored under a log
/// whose name carries them too.
fn hostile_store(dir: &Path) -> PathBuf {
    let db = dir.join("hostile.db");
    let mut store = Store::open(&db).unwrap();
    // Unsigned, and counted: this store's chains accept unsigned records, so the record is a
    // head and can be anchored (what is tested here is how its text is drawn).
    store.set_trust(zt_core::chain::TrustPolicy::allow_all_unsigned());
    let record = zt_core::envelope::V1Draft {
        chain_id: format!("cp{HOSTILE}"),
        seq: 0,
        actor: format!("agent{HOSTILE}"),
        action: format!("hello{HOSTILE}"),
        resource: "r\u{200b}\t/0".into(),
        decision: "allow".into(),
        reason: format!("fine\u{2066}{HOSTILE}\u{feff}\nOK: verified"),
        timestamp: "2026-10-01T08:00:00.000Z".into(),
        previous_hash: Hash32::ZERO,
        context: None,
    }
    .seal(None);
    zt_ingest::Pipeline::new(&Keyring::new())
        .ingest(
            &mut store,
            &[record.json.into_bytes()],
            &format!("import:evidence{HOSTILE}.jsonl"),
        )
        .unwrap();
    let leaves = store.main_heads().unwrap();
    let epoch = EpochRow {
        tx_hash: Some(format!("0x{HOSTILE}")),
        ..finalized(&format!("log{HOSTILE}"), b"hostile root", &leaves)
    };
    store.insert_epoch(&epoch, &leaves).unwrap();
    db
}

/// Draws `app` and returns the screen as text, after checking that no cell holds a character
/// the terminal would act on or hide, and whether any cell is drawn in the escapes' colour.
fn inert_screen(app: &mut App, color: bool) -> (String, bool) {
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    t.draw(|f| ui::draw(f, app, &format!("hostile{HOSTILE}.db"), Theme { color }))
        .unwrap();
    let buffer = t.backend().buffer();
    for cell in buffer.content() {
        let raw = raw_chars(cell.symbol(), false);
        assert!(raw.is_empty(), "{raw:?} drawn raw in {:?}", app.view);
    }
    let magenta = buffer
        .content()
        .iter()
        .any(|c| c.fg == ratatui::style::Color::Magenta);
    (format!("{}", t.backend()), magenta)
}

#[test]
fn hostile_text_is_drawn_as_escapes_and_never_raw() {
    let tmp = tempfile::tempdir().unwrap();
    let db = hostile_store(tmp.path());
    let mut app = App::new(Store::open(&db).unwrap()).unwrap();
    let shown = r"\u{1b}[2K\u{d}\u{202e}";

    let (s, _) = inert_screen(&mut app, false);
    assert!(s.contains(&format!("hostile{shown}.db")), "{s}");
    assert!(s.contains(r"r\u{200b}\u{9}/0"), "{s}");

    keys(&mut app, &[Key::Enter]);
    assert_eq!(app.view, View::Detail);
    let (detail, magenta) = inert_screen(&mut app, false);
    assert!(!magenta, "no colour without colour");
    for whole in [
        format!("by agent{shown} on r"),
        format!("chain cp{shown}"),
        format!("from import:evidence{shown}.jsonl"),
        format!("log log{shown}, epoch 1"),
        // The envelope's JSON escapes C0 itself; RLO, bidi isolates and BOM it leaves raw.
        r#""reason": "fine\u{2066}\u001b[2K\r\u{202e}\u{feff}\nOK: verified""#.to_owned(),
    ] {
        assert!(detail.contains(&whole), "{whole} not in\n{detail}");
    }
    insta::assert_snapshot!("hostile_detail_120x40", detail);
    let (_, magenta) = inert_screen(&mut app, true);
    assert!(magenta, "escapes stand out in colour");

    keys(&mut app, &[Key::Esc, Key::Char('c')]);
    let (chains, _) = inert_screen(&mut app, false);
    assert!(chains.contains(&format!("cp{shown}")), "{chains}");
    // Enter lists the chain's decisions: the filter line echoes the chain name.
    keys(&mut app, &[Key::Enter]);
    let (filtered, _) = inert_screen(&mut app, false);
    assert!(
        filtered.contains(&format!("filter: chain:cp{shown}")),
        "{filtered}"
    );

    keys(&mut app, &[Key::Char('a')]);
    let (anchors, _) = inert_screen(&mut app, false);
    assert!(anchors.contains(&format!("log{shown}")), "{anchors}");
}
