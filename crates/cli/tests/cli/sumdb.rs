//! Signed notes and checkpoints (`zt_core::note`) and RFC 6962 trees and proofs
//! (`zt_core::merkle`) against the reference implementation we did not write: Go's
//! `golang.org/x/mod/sumdb` (`note` and `tlog`, pinned in tests/go/sumdb-peer), what Go's
//! checksum database and the transparency-log witnesses use. Each side signs, the other
//! verifies; each side's verifier keys are read by the other; a tampered note is refused by
//! both; the two compute the same roots and proofs, and each accepts the other's.

use std::io::Write;
use std::process::{Command, Stdio};

use zt_core::merkle;
use zt_core::note::{self, Checkpoint, NoteError, NoteSigner, VerifierKey};
use zt_core::Hash32;

/// Runs the Go peer with `args`, `input` on its standard input: (exit code, stdout, stderr).
fn peer(args: &[&str], input: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(zt_testkit::tools::go_peer("sumdb-peer"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn go_verifies_our_checkpoints_and_refuses_them_edited() {
    let log = NoteSigner::generate("zt-audit.test/log").unwrap();
    let witness = NoteSigner::generate("witness.test/w1").unwrap();
    let checkpoint = Checkpoint {
        origin: "zt-audit.test/log".into(),
        size: 1_000_001,
        root: Hash32::digest(b"root"),
        extensions: Vec::new(),
    };
    let signed = note::sign(&checkpoint.to_text(), &[&log, &witness]).unwrap();
    let vkey = log.verifier().to_string();

    let (code, text, err) = peer(&["verify", &vkey], &signed);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(text, checkpoint.to_text());
    // Go counts the witness's line as a signature by an unknown key, as we do.
    assert!(err.contains("verified 1, unverified 1"), "{err}");

    // One digit of the size changed: Go refuses it, and so do we.
    let edited = signed.replacen("1000001", "1000002", 1);
    let (code, _, err) = peer(&["verify", &vkey], &edited);
    assert_eq!(code, Some(1), "Go accepted an edited checkpoint: {err}");
    assert!(matches!(
        note::open(edited.as_bytes(), &[log.verifier().clone()]),
        Err(NoteError::BadSignature { .. })
    ));
    // Under the witness's key alone Go verifies it too: both lines are genuine.
    let (code, _, err) = peer(&["verify", &witness.verifier().to_string()], &signed);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn we_verify_what_go_signs_under_the_key_it_prints() {
    let text = "go.test/log\n7\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let (code, out, err) = peer(&["sign", "go.test/log"], text);
    assert_eq!(code, Some(0), "{err}");
    let (vkey, signed) = out.split_once('\n').unwrap();
    let vkey: VerifierKey = vkey.parse().unwrap();
    assert_eq!(vkey.name(), "go.test/log");
    let opened = note::open(signed.as_bytes(), std::slice::from_ref(&vkey)).unwrap();
    assert_eq!(opened.note.text, text);
    assert_eq!(opened.verified_by, [("go.test/log".to_owned(), vkey.id())]);
    let cp = Checkpoint::parse(&opened.note.text).unwrap();
    assert_eq!((cp.origin.as_str(), cp.size), ("go.test/log", 7));
    // Our reading of its note writes the same bytes back.
    assert_eq!(
        note::Note::parse(signed.as_bytes()).unwrap().to_text(),
        signed
    );
    // Someone else's key of the same name is not Go's: nothing verifies.
    let other = NoteSigner::generate("go.test/log").unwrap();
    assert_eq!(
        note::open(signed.as_bytes(), &[other.verifier().clone()]),
        Err(NoteError::Unverified)
    );
}

#[test]
fn where_we_read_the_specification_more_strictly_than_go_it_is_named() {
    let log = NoteSigner::generate("zt-audit.test/log").unwrap();
    let vkey = log.verifier().to_string();
    // DEL is not below U+0020: both accept it.
    let del = note::sign("rub\u{7f}out\n", &[&log]).unwrap();
    assert_eq!(peer(&["verify", &vkey], &del).0, Some(0));
    assert!(note::open(del.as_bytes(), &[log.verifier().clone()]).is_ok());
    // A genuine line, then a forged repeat under the same key: Go checks only the first line
    // of a key and accepts; the specification says a known key's signature MUST be verified
    // and a failing one SHOULD reject the note, and we reject it.
    let mut forged = note::Note::parse(del.as_bytes()).unwrap();
    let mut bad = forged.signatures[0].clone();
    bad.signature[10] ^= 0x40;
    forged.signatures.push(bad);
    let text = forged.to_text();
    assert_eq!(
        peer(&["verify", &vkey], &text).0,
        Some(0),
        "Go's reading changed"
    );
    assert!(matches!(
        note::open(text.as_bytes(), &[log.verifier().clone()]),
        Err(NoteError::BadSignature { .. })
    ));
}

/// Go's tree of `n` records `leaf-<i>`: roots at `n` and `m`, the inclusion proof of `i`, the
/// consistency proof from `m` to `n`.
fn go_tree(n: usize, m: usize, i: usize) -> serde_json::Value {
    let (code, out, err) = peer(
        &["tree", &n.to_string(), &m.to_string(), &i.to_string()],
        "",
    );
    assert_eq!(code, Some(0), "{err}");
    serde_json::from_str(&out).unwrap()
}

fn hexes(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn our_trees_and_proofs_are_gos_and_each_side_accepts_the_others() {
    // Sizes around the powers of two, where the shapes of trees and proofs change.
    for (n, m, i) in [
        (1, 1, 0),
        (2, 1, 1),
        (7, 4, 6),
        (8, 6, 3),
        (9, 8, 8),
        (33, 17, 20),
        (300, 255, 299),
    ] {
        let leaves: Vec<Hash32> = (0..n)
            .map(|k| merkle::leaf_hash(format!("leaf-{k}").as_bytes()))
            .collect();
        let go = go_tree(n, m, i);
        let (root_n, root_m) = (merkle::root(&leaves), merkle::root(&leaves[..m]));
        assert_eq!(go["root_n"], root_n.to_hex(), "root of {n}");
        assert_eq!(go["root_m"], root_m.to_hex(), "root of {m}");
        let ours = |p: Vec<Hash32>| p.iter().map(Hash32::to_hex).collect::<Vec<_>>();
        let inclusion = merkle::inclusion_proof(&leaves, i).unwrap();
        let consistency = merkle::consistency_proof(&leaves, m).unwrap();
        assert_eq!(
            hexes(&go["inclusion"]),
            ours(inclusion),
            "inclusion of {i} in {n}"
        );
        assert_eq!(
            hexes(&go["consistency"]),
            ours(consistency.clone()),
            "{m} to {n}"
        );
        // Go's proofs verify under ours.
        let parse = |v: &serde_json::Value| -> Vec<Hash32> {
            hexes(v)
                .iter()
                .map(|h| Hash32::from_hex(h).unwrap())
                .collect()
        };
        assert!(merkle::verify_inclusion(
            i as u64,
            n as u64,
            &leaves[i],
            &parse(&go["inclusion"]),
            &root_n
        ));
        assert!(merkle::verify_consistency(
            m as u64,
            n as u64,
            &root_m,
            &root_n,
            &parse(&go["consistency"])
        ));
        // Ours verify under Go's, and a proof for other roots does not.
        let mut args = vec![
            m.to_string(),
            n.to_string(),
            root_m.to_hex(),
            root_n.to_hex(),
        ];
        args.extend(ours(consistency));
        let check = |args: &[String]| {
            let mut all = vec!["check-tree"];
            all.extend(args.iter().map(String::as_str));
            peer(&all, "").0
        };
        assert_eq!(
            check(&args),
            Some(0),
            "Go refused our proof from {m} to {n}"
        );
        if m < n {
            args[2] = Hash32::digest(b"another tree").to_hex();
            assert_eq!(check(&args), Some(1), "Go accepted another old root");
        }
    }
}

#[test]
fn our_tiles_are_gos_tiles() {
    // Around the edges of full tiles at levels 0 and 1.
    for n in [1u64, 255, 256, 257, 511, 512, 70_000] {
        let (code, out, err) = peer(&["tiles", &n.to_string()], "");
        assert_eq!(code, Some(0), "{err}");
        let go: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        let mut go: Vec<(String, String)> = go
            .iter()
            .map(|t| {
                // tlog writes the height into its paths (tile/8/L/N); tlog-tiles does not.
                let path = t["path"].as_str().unwrap().replacen("tile/8/", "tile/", 1);
                (path, t["data"].as_str().unwrap().to_owned())
            })
            .collect();
        go.sort();
        let leaves: Vec<Hash32> = (0..n)
            .map(|k| merkle::leaf_hash(format!("leaf-{k}").as_bytes()))
            .collect();
        let mut ours: Vec<(String, String)> = zt_core::tiles::tiles(n)
            .iter()
            .map(|t| {
                let data = zt_core::tiles::tile_data(&leaves, t).unwrap();
                let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
                (t.path(), hex)
            })
            .collect();
        ours.sort();
        assert_eq!(ours.len(), go.len(), "tiles of {n}");
        assert_eq!(ours, go, "tiles of {n}");
    }
}
