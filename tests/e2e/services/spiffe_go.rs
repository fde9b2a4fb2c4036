//! The control plane against the reference SPIFFE library: a Go client built on
//! `github.com/spiffe/go-spiffe/v2` (pinned, `tests/go/spiffe-client`) asks over mTLS. Each
//! side authorizes the other by SPIFFE ID: the client accepts only the server SVID
//! `spiffe://cp.test/control-plane`, the control plane decides by the client's SVID. Two
//! client trust domains at once: td-a from an ordinary PKI's CA (no SPIFFE URI SAN) given as a
//! SPIFFE bundle (JWK Set) by `--trust-bundle`, td-b a SPIRE-style CA by `--client-ca`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use zt_tls::test_pki::{write_bundle, write_spiffe_bundle, Ca, Validity};

use crate::{control_plane, s};

const A: &str = "spiffe://td-a.test/agent/a";
const B: &str = "spiffe://td-b.test/agent/b";
const SERVER: &str = "spiffe://cp.test/control-plane";
const ADMIN: &str = "admin-secret-for-tests";

struct Peer {
    bin: PathBuf,
    url: String,
    /// `--bundle` flags: the trust domain that vouches for the server.
    server_bundle: String,
}

impl Peer {
    /// Runs the Go client: Ok((status, body)) on an HTTP answer, Err(stderr) when it got
    /// none (a refused handshake, a server it does not authorize).
    fn ask(
        &self,
        svid: &(PathBuf, PathBuf),
        server_id: &str,
        path: &str,
        body: &Value,
        admin: bool,
    ) -> Result<(u16, Value), String> {
        let mut c = Command::new(&self.bin);
        c.args(["--url", &format!("{}{path}", self.url)])
            .arg("--svid")
            .arg(&svid.0)
            .arg("--key")
            .arg(&svid.1)
            .args(["--bundle", &self.server_bundle, "--server-id", server_id])
            .args(["--method", "POST", "--body", &body.to_string()]);
        if admin {
            c.args(["--header", &format!("Authorization: Bearer {ADMIN}")]);
        }
        let out = c.output().unwrap();
        if out.status.code() != Some(0) {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let body = v["body"].as_str().unwrap();
        Ok((
            u16::try_from(v["status"].as_u64().unwrap()).unwrap(),
            serde_json::from_str(body).unwrap_or(Value::String(body.into())),
        ))
    }
}

#[test]
fn go_spiffe_client_and_control_plane_authorize_each_other_by_spiffe_id() {
    let bin = zt_testkit::tools::go_peer("spiffe-client");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (cp_ca, corp, td_b) = (
        Ca::spiffe("cp.test"),
        Ca::plain("corp root"),
        Ca::spiffe("td-b.test"),
    );
    // The server presents an SVID as its certificate.
    let (cert, key) = cp_ca.svid(&[SERVER], Validity::Now).write(dir, "server");
    let td_a_bundle = write_spiffe_bundle(&dir.join("td-a.json"), &[&corp], Some(3));
    let td_b_pem = write_bundle(&dir.join("td-b.pem"), &[&td_b]);
    let cp_pem = write_bundle(&dir.join("cp.pem"), &[&cp_ca]);
    let admin_file = dir.join("admin-token");
    std::fs::write(&admin_file, format!("{ADMIN}\n")).unwrap();
    let cp_dir = dir.join("cp");
    let td_a = format!("spiffe://td-a.test={}", s(&td_a_bundle));
    let cp = control_plane(
        &cp_dir,
        &[
            "--admin-token-file",
            s(&admin_file),
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "--trust-bundle",
            &td_a,
            "--client-ca",
            s(&td_b_pem),
        ],
    );
    let peer = Peer {
        bin,
        url: cp.base.clone(),
        server_bundle: format!("spiffe://cp.test={}", s(&cp_pem)),
    };
    let svid_a = corp.svid(&[A], Validity::Now).write(dir, "a");
    let svid_b = td_b.svid(&[B], Validity::Now).write(dir, "b");

    for (actor, id) in [("agent-a", A), ("agent-b", B)] {
        let (st, v) = peer
            .ask(
                &svid_a,
                SERVER,
                "/agents",
                &json!({"actor": actor, "spiffe_id": id}),
                true,
            )
            .unwrap();
        assert_eq!(st, 201, "{v}");
    }
    let (st, v) = peer
        .ask(
            &svid_a,
            SERVER,
            "/policies",
            &json!({"action": "x.run"}),
            true,
        )
        .unwrap();
    assert_eq!(st, 201, "{v}");

    // Each agent's SVID, verified against its own trust domain's bundle, decides who asks.
    for (svid, actor, id) in [(&svid_a, "agent-a", A), (&svid_b, "agent-b", B)] {
        let (st, v) = peer
            .ask(
                svid,
                SERVER,
                "/actions",
                &json!({"actor": actor, "action": "x.run"}),
                false,
            )
            .unwrap();
        assert_eq!((st, v["decision"].as_str()), (200, Some("allow")), "{v}");
        assert_eq!(v["audit"]["context"]["identity"], id, "{v}");
    }
    // agent-a asks to run x.run, with `svid`, expecting the server to be `server_id`.
    let ask_a = |svid: &(PathBuf, PathBuf), server_id: &str| {
        let body = json!({"actor": "agent-a", "action": "x.run"});
        peer.ask(svid, server_id, "/actions", &body, false)
    };
    // The client authorizes the server: another expected ID, and go-spiffe refuses it.
    let e = ask_a(&svid_a, "spiffe://cp.test/other").unwrap_err();
    assert!(e.contains("spiffe://cp.test/control-plane"), "{e}");
    // td-b's CA minting td-a's agent: verified in the handshake, refused as an identity.
    let forged = td_b.svid(&[A], Validity::Now).write(dir, "forged");
    let (st, v) = ask_a(&forged, SERVER).unwrap();
    assert_eq!(st, 401, "{v}");
    // A CA the control plane holds no bundle of: no handshake.
    let stranger = Ca::plain("stranger")
        .svid(&[A], Validity::Now)
        .write(dir, "stranger");
    assert!(ask_a(&stranger, SERVER).is_err());

    let (_, stderr) = cp.terminate();
    assert!(
        stderr.contains("td-a.test (1 CA, sequence 3), td-b.test (1 CA)"),
        "the start-up line names the trust domains: {stderr}"
    );
}
