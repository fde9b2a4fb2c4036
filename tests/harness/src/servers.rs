//! `zt-audit` servers as processes: started on a free port, ready once they print their URL.

use std::ffi::OsStr;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use crate::bin::Bin;
use crate::process;

/// A running server process (`serve`, `control-plane`, ...); killed on drop.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    /// The URL its first line of standard output ends with.
    pub url: String,
}

impl Server {
    /// Starts `cmd` (stdout and stderr piped) and reads the URL its first stdout line ends
    /// with (`... listening on http://127.0.0.1:PORT[/path]`): it serves from then on.
    pub fn start(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_owned();
        if !(url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:")) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "first line: {line:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Server { child, url }
    }

    /// `zt-audit serve --db DB --listen 127.0.0.1:0 --keyring KEYRING EXTRA...`; its URL is
    /// the OTLP endpoint (`.../v1/logs`). `db` is a path or a `postgres://` URL.
    pub fn serve(zt: Bin, db: impl AsRef<OsStr>, keyring: &Path, extra: &[&str]) -> Server {
        let mut c = zt.command(["serve", "--db"]);
        c.arg(db)
            .args(["--listen", "127.0.0.1:0", "--keyring"])
            .arg(keyring)
            .args(extra);
        Server::start(c)
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        crate::http::authority(&self.url)
    }

    pub fn port(&self) -> u16 {
        crate::http::port(&self.url)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` and waits for the exit: (exit code, stderr).
    pub fn signal(mut self, sig: &str) -> (Option<i32>, String) {
        process::signal_and_wait(&mut self.child, sig)
    }

    /// Its peak resident memory, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        process::peak_rss_kib(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `zt-audit control-plane`, its data in `dir`; killed on drop.
#[derive(Debug)]
pub struct ControlPlane {
    pub server: Server,
    /// Its URL (`http://127.0.0.1:PORT`, or https).
    pub base: String,
    pub dir: PathBuf,
    /// The admin token it wrote into `dir` (none in open mode, or with a token file of the
    /// caller's).
    pub admin: Option<String>,
}

impl ControlPlane {
    /// `zt-audit control-plane --dir DIR --listen 127.0.0.1:0 EXTRA...`.
    pub fn start(zt: Bin, dir: &Path, extra: &[&str]) -> ControlPlane {
        let mut c = zt.command(["control-plane", "--dir"]);
        c.arg(dir).args(["--listen", "127.0.0.1:0"]).args(extra);
        let server = Server::start(c);
        let admin = std::fs::read_to_string(dir.join("admin-token"))
            .ok()
            .map(|t| t.trim().to_owned());
        ControlPlane {
            base: server.url.clone(),
            server,
            dir: dir.to_owned(),
            admin,
        }
    }

    /// The admin token; panics in open mode.
    pub fn admin(&self) -> &str {
        self.admin.as_deref().expect("an admin token")
    }

    /// Its keyring (`keyring.json`).
    pub fn keyring(&self) -> PathBuf {
        self.dir.join("keyring.json")
    }

    /// Its store of decisions (`decisions.db`).
    pub fn db(&self) -> PathBuf {
        self.dir.join("decisions.db")
    }

    /// `METHOD path` with an optional token and JSON body: see [`crate::http::call`].
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        crate::http::call(method, &format!("{}{path}", self.base), token, body)
    }

    /// `POST path` of `body` with the admin token; asserts `201 Created`: the answer.
    pub fn admin_post(&self, path: &str, body: &Value) -> Value {
        let (st, v) = self.call("POST", path, self.admin.as_deref(), Some(body));
        assert_eq!(st, 201, "POST {path}: {v}");
        v
    }

    /// Registers agent `actor`: its token.
    pub fn register(&self, actor: &str) -> String {
        let v = self.admin_post("/agents", &json!({"actor": actor}));
        v["token"].as_str().unwrap().to_owned()
    }

    /// SIGTERM (it drains), then (exit code, stderr).
    pub fn terminate(self) -> (Option<i32>, String) {
        self.server.signal("-TERM")
    }
}
