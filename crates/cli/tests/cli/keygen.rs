//! `zt-audit keygen`: files, modes, and that the key it makes verifies what it signs.

use crate::{s, zt};

#[test]
fn keygen_writes_a_usable_key_pair_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("k");
    let o = zt(&["keygen", "--out", s(&out), "--key-id", "cp-test"]);
    assert!(o.status.success(), "{}", zt_testkit::stderr(&o));
    let private = std::fs::read_to_string(out.join("private.pem")).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("private.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let ring =
        zt_core::keyring::Keyring::from_json(&std::fs::read(out.join("keyring.json")).unwrap())
            .unwrap();
    let entry = ring.get("cp-test").unwrap();
    let key = zt_core::crypto::SigningKey::from_pkcs8_pem(&private).unwrap();
    assert_eq!(entry.public_key, key.public_key());
    let pem = std::fs::read_to_string(out.join("public.pem")).unwrap();
    assert_eq!(
        zt_core::crypto::PublicKey::from_pem(&pem).unwrap(),
        key.public_key()
    );

    let again = zt(&["keygen", "--out", s(&out)]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(
        std::fs::read_to_string(out.join("private.pem")).unwrap(),
        private,
        "key untouched"
    );
}
