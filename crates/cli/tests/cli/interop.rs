//! Every case of the shared interop vectors (`fixtures/interop/zt-infra-full/EXPECT.json`),
//! through the real binary: verdict, exit code, first finding's index and kind.

use crate::{first_finding, fixtures, s, verify_json};

#[test]
fn every_expect_case_holds() {
    let dir = fixtures().join("interop/zt-infra-full");
    let expect: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("EXPECT.json")).unwrap()).unwrap();
    let keyring = dir.join("keyring.json");
    let cases = expect["cases"].as_object().unwrap();
    assert!(cases.len() >= 14, "EXPECT.json lost cases");
    for (file, case) in cases {
        let path = dir.join(file);
        let (code, report) = verify_json(&["--keyring", s(&keyring), s(&path)]);
        let ok = case["ok"].as_bool().unwrap();
        assert_eq!(
            report["ok"].as_bool(),
            Some(ok),
            "{file}: verdict; report {report:#}"
        );
        assert_eq!(code, if ok { 0 } else { 1 }, "{file}: exit code");
        assert_eq!(
            report["errors"].as_array().unwrap().is_empty(),
            ok,
            "{file}: errors"
        );
        if !ok {
            let (index, kind) =
                first_finding(&report).unwrap_or_else(|| panic!("{file}: no finding"));
            assert_eq!(
                index,
                case["first_bad_index"].as_u64().unwrap(),
                "{file}: first index"
            );
            let want = case["kind"].as_str().unwrap();
            // README of the vectors: fork.jsonl may be reported as `fork` or `broken_link`.
            if file == "fork.jsonl" {
                assert!(
                    kind == "fork" || kind == "broken_link",
                    "{file}: kind {kind}"
                );
            } else {
                assert_eq!(kind, want, "{file}: first kind");
            }
        }
        if let Some(head) = case["expect_head"].as_str() {
            let expecting = |file: &std::path::Path| {
                verify_json(&["--keyring", s(&keyring), "--expect-head", head, s(file)])
            };
            let (code, report) = expecting(&path);
            assert_eq!(code, 1, "{file} with --expect-head must fail");
            assert_eq!(first_finding(&report).unwrap().1, "truncated");
            // and the full chain reaches that head
            let (code, _) = expecting(&dir.join("valid.jsonl"));
            assert_eq!(code, 0, "valid.jsonl reaches {head}");
        }
    }
}

#[test]
fn keys_given_on_the_command_line_work_like_a_keyring() {
    let dir = fixtures().join("interop/zt-infra-full");
    let a = "arn:aws:kms:us-east-2:111122223333:key/6bf5d0dd-6104-4694-8e20-4574d2183607";
    let pem = dir.join(
        "keys/arn_aws_kms_us-east-2_111122223333_key_6bf5d0dd-6104-4694-8e20-4574d2183607.pem",
    );
    let spec = format!("{a}={}", pem.display());
    let (code, _) = verify_json(&["--key", &spec, dir.join("valid.jsonl").to_str().unwrap()]);
    assert_eq!(code, 0);
    // rotated-key needs the second key too
    let (code, report) = verify_json(&["--key", &spec, s(&dir.join("rotated-key.jsonl"))]);
    assert_eq!(code, 1);
    assert_eq!(first_finding(&report), Some((6, "unknown_key".into())));
}

#[test]
fn without_keys_nothing_is_verified() {
    let dir = fixtures().join("interop/zt-infra-full");
    let (code, report) = verify_json(&[dir.join("valid.jsonl").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(first_finding(&report), Some((0, "unknown_key".into())));
}

#[test]
fn several_files_keep_their_own_positions_in_file_order() {
    let dir = fixtures().join("interop/zt-infra-full");
    let k = dir.join("keyring.json");
    let (code, report) = verify_json(&[
        "--keyring",
        s(&k),
        s(&dir.join("forged-signature.jsonl")),
        s(&dir.join("edited-decision.jsonl")),
    ]);
    assert_eq!(code, 1);
    let f = report["findings"].as_array().unwrap();
    assert!(f[0]["file"]
        .as_str()
        .unwrap()
        .ends_with("forged-signature.jsonl"));
    assert_eq!(f[0]["index"], 9);
    assert!(f[1]["file"]
        .as_str()
        .unwrap()
        .ends_with("edited-decision.jsonl"));
    assert_eq!(f[1]["index"], 4);
    assert_eq!(report["records"], 24);
    // Both are logs of one genesis: one lineage chain. The genuine copy of record 9 in the
    // second file takes the place the forged one could not, as a store would have it.
    let chains = report["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 1);
    assert_eq!(chains[0]["chain"], "lineage-f2cd5d9e431f4aa4");
    assert_eq!(
        chains[0]["head"],
        "2bfe9e1c8916259aacf158ef085941f00d6de71c573246d62456876dae784d11"
    );
    assert_eq!(f.len(), 2);
}

#[test]
fn text_output_names_position_expected_and_found() {
    let dir = fixtures().join("interop/zt-infra-full");
    let out = crate::zt(&[
        "verify",
        "--keyring",
        s(&dir.join("keyring.json")),
        s(&dir.join("edited-decision.jsonl")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("FAIL"), "{text}");
    assert!(text.contains("record 4 (line 5)"), "{text}");
    assert!(text.contains("hash_mismatch"), "{text}");
    assert!(
        text.contains("expected") && text.contains("found"),
        "{text}"
    );
    assert!(
        !text.contains("\x1b["),
        "no colour when stdout is not a terminal"
    );
}
