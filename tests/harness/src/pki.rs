//! The certificates of one test, in files: a server CA (`servers.test`) for `localhost`, the
//! SPIFFE trust domain `td-a.test` for clients, and the flags and configurations that use them.

use std::path::PathBuf;
use std::sync::Arc;

use zt_tls::test_pki::{write_bundle, Ca, Validity};
use zt_tls::{ClientIdentity, ClientTls, ServerFiles, TlsServer};

/// A folder of certificates: the server CA and td-a.test's CA.
#[derive(Debug)]
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub td_a: Ca,
    pub server_ca: Ca,
}

impl Pki {
    pub fn new() -> Pki {
        Pki {
            dir: tempfile::tempdir().unwrap(),
            td_a: Ca::spiffe("td-a.test"),
            server_ca: Ca::spiffe("servers.test"),
        }
    }

    /// A file in the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The bundle that trusts the server CA (for clients).
    pub fn server_ca(&self) -> PathBuf {
        write_bundle(&self.path("server-ca.pem"), &[&self.server_ca])
    }

    /// An SVID of td-a.test naming `uris`, written as `NAME.pem` / `NAME.key`: (cert, key).
    pub fn svid(&self, name: &str, uris: &[&str], validity: Validity) -> (PathBuf, PathBuf) {
        self.td_a.svid(uris, validity).write(self.dir.path(), name)
    }

    /// A server certificate for localhost written as `NAME`, asking clients for certificates
    /// of `client_cas` (none: clients are anonymous).
    pub fn server_files(&self, name: &str, client_cas: &[&Ca]) -> ServerFiles {
        let (cert, key) = self.server_ca.server().write(self.dir.path(), name);
        let files = ServerFiles::new(cert, key);
        if client_cas.is_empty() {
            files
        } else {
            files.client_ca(write_bundle(
                &self.path(&format!("{name}-clients.pem")),
                client_cas,
            ))
        }
    }

    /// [`Pki::server_files`] loaded.
    pub fn server(&self, client_cas: &[&Ca]) -> Arc<TlsServer> {
        Arc::new(TlsServer::load(&self.server_files("server", client_cas)).unwrap())
    }

    /// The flags of a `zt-audit` server: `--tls-cert F --tls-key F`, and `--client-ca F` (the
    /// bundle of td-a.test) when `client_ca`.
    pub fn server_flags(&self, name: &str, client_ca: bool) -> Vec<String> {
        let (cert, key) = self.server_ca.server().write(self.dir.path(), name);
        let mut flags = vec![
            "--tls-cert".to_owned(),
            crate::s(&cert).to_owned(),
            "--tls-key".to_owned(),
            crate::s(&key).to_owned(),
        ];
        if client_ca {
            let bundle = write_bundle(&self.path("bundle.pem"), &[&self.td_a]);
            flags.extend(["--client-ca".to_owned(), crate::s(&bundle).to_owned()]);
        }
        flags
    }

    /// A client's TLS: trusting the server CA, with an SVID of td-a.test (`(name, uris,
    /// validity)`) or none.
    pub fn client_tls(&self, svid: Option<(&str, &[&str], Validity)>) -> ClientTls {
        ClientTls {
            ca: Some(self.server_ca()),
            identity: svid.map(|(name, uris, validity)| {
                let (cert, key) = self.svid(name, uris, validity);
                ClientIdentity { cert, key }
            }),
        }
    }
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}

/// A reqwest client over `tls`.
pub fn reqwest_client(tls: &ClientTls) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls.config().unwrap())
        .build()
        .unwrap()
}
