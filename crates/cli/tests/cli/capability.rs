//! `zt-audit capability`: offline attenuation only narrows, and `show` verifies under the
//! keyring it is given, never under a key the token names.

use zt_core::capability::{self, Grants, Issue};
use zt_core::time::Timestamp;

use crate::{bin, s, zt};

fn text(o: &std::process::Output) -> (String, String) {
    (zt_testkit::stdout(o), zt_testkit::stderr(o))
}

#[test]
fn attenuate_narrows_and_show_verifies_under_the_given_keyring() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("k");
    let key = bin().keygen(&out, "cp-test");
    let now = Timestamp::now();
    let token = capability::issue(
        &Issue {
            id: "cap-cli".into(),
            actor: "agent-a".into(),
            action: "files.read".into(),
            resource: "data/x".into(),
            grants: Grants {
                read: vec!["/srv/data".into()],
                write: vec!["/srv/out".into()],
                exec: vec!["/usr/bin".into()],
                net: true,
                ..Grants::default()
            },
            issued_at: now,
            not_after: Timestamp::from_unix_nanos(now.unix_nanos() + 3_600_000_000_000),
            issuer_key_id: "cp-test".into(),
        },
        |d| Ok::<_, ()>(key.sign_digest(d)),
    )
    .unwrap();
    let ring = out.join("keyring.json");

    let o = zt(&[
        "capability",
        "attenuate",
        &token,
        "--read",
        "/srv/data/q3",
        "--exec",
        "/usr/bin/cat",
        "--drop",
        "write",
        "--no-net",
        "--ttl-s",
        "60",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let narrowed = stdout.trim().to_owned();
    assert!(narrowed.starts_with("ztcap1.") && narrowed != token);

    let o = zt(&["capability", "show", &narrowed, "--keyring", s(&ring)]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("read /srv/data/q3; write -; exec /usr/bin/cat; net off; sandbox nono"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("VALID under keyring {}", ring.display())),
        "{stdout}"
    );
    assert!(stdout.contains("1 attenuation"), "{stdout}");

    // widening is refused, naming the path
    let o = zt(&["capability", "attenuate", &narrowed, "--read", "/srv"]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("widens") && stderr.contains("/srv"),
        "{stderr}"
    );

    // another keyring (a key of the same id): not verified, exit 1
    let other = tmp.path().join("other");
    bin().keygen(&other, "cp-test");
    let o = zt(&[
        "capability",
        "show",
        &narrowed,
        "--keyring",
        s(&other.join("keyring.json")),
        "--format",
        "json",
    ]);
    let (stdout, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["verified"], false);
    assert!(v["problem"].as_str().unwrap().contains("signature"), "{v}");

    // garbage: a clear error, exit 2
    let o = zt(&["capability", "show", "ztcap1.nonsense"]);
    assert_eq!(o.status.code(), Some(2));
}
