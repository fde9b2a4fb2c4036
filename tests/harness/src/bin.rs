//! The `zt-audit` under test, run once or as a server, and what it printed.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `zt-audit` binary under test.
#[derive(Debug, Clone, Copy)]
pub struct Bin(&'static OsStr);

impl Bin {
    /// `built` (the test binary's `env!("CARGO_BIN_EXE_zt-audit")`), or the binary
    /// `ZT_AUDIT_UNDER_TEST` names: how attack tests are run against the commit before a fix,
    /// to watch each attack succeed.
    pub fn under_test(built: &'static str) -> Bin {
        static PATH: OnceLock<OsString> = OnceLock::new();
        Bin(PATH.get_or_init(|| std::env::var_os("ZT_AUDIT_UNDER_TEST").unwrap_or(built.into())))
    }

    /// Its path.
    pub fn path(self) -> &'static Path {
        Path::new(self.0)
    }

    /// A command running it with `args`.
    pub fn command<A: AsRef<OsStr>>(self, args: impl IntoIterator<Item = A>) -> Command {
        let mut c = Command::new(self.0);
        c.args(args);
        c
    }

    /// Runs it with `args` to the end; asserts it did not panic.
    pub fn run<A: AsRef<OsStr>>(self, args: impl IntoIterator<Item = A>) -> Output {
        output(&mut self.command(args))
    }

    /// Runs it with `args` and `ZT_ANCHOR_KEY=key` (none: the variable and `ZT_ANCHOR_RPC`
    /// are removed, whatever the caller's environment holds); asserts it did not panic.
    pub fn run_anchor<A: AsRef<OsStr>>(
        self,
        key: Option<&str>,
        args: impl IntoIterator<Item = A>,
    ) -> Output {
        let mut c = self.command(args);
        c.env_remove("ZT_ANCHOR_KEY").env_remove("ZT_ANCHOR_RPC");
        if let Some(k) = key {
            c.env("ZT_ANCHOR_KEY", k);
        }
        output(&mut c)
    }

    /// `zt-audit verify --format json ARGS`: (exit code, the report).
    pub fn verify_json<A: AsRef<OsStr>>(
        self,
        args: impl IntoIterator<Item = A>,
    ) -> (i32, serde_json::Value) {
        let out = self.run(
            ["verify", "--format", "json"]
                .map(OsString::from)
                .into_iter()
                .chain(args.into_iter().map(|a| a.as_ref().to_owned())),
        );
        let code = out.status.code().expect("exit code");
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("report is not JSON ({e}): {}", both(&out)));
        (code, v)
    }

    /// `zt-audit verify --format json --db DB --keyring KEYRING` (`db` a path or a
    /// `postgres://` URL): (exit code, the report).
    pub fn verify_db(self, db: impl AsRef<OsStr>, keyring: &Path) -> (i32, serde_json::Value) {
        let args: [&OsStr; 4] = [
            "--db".as_ref(),
            db.as_ref(),
            "--keyring".as_ref(),
            keyring.as_os_str(),
        ];
        self.verify_json(args)
    }

    /// `zt-audit keygen --out OUT --key-id KEY_ID`; asserts it succeeded: the private key.
    pub fn keygen(self, out: &Path, key_id: &str) -> zt_core::crypto::SigningKey {
        let o = self.run(
            [OsStr::new("keygen"), "--out".as_ref(), out.as_os_str()]
                .into_iter()
                .chain(["--key-id", key_id].map(OsStr::new)),
        );
        assert!(o.status.success(), "keygen: {}", stderr(&o));
        let pem = std::fs::read_to_string(out.join("private.pem")).unwrap();
        zt_core::crypto::SigningKey::from_pkcs8_pem(&pem).unwrap()
    }

    /// `zt-audit import --db DB --keyring KEYRING FILES...` (`db` a path or a `postgres://`
    /// URL).
    pub fn import(self, db: impl AsRef<OsStr>, keyring: &Path, files: &[&Path]) -> Output {
        let mut c = self.command(["import", "--db"]);
        c.arg(db).arg("--keyring").arg(keyring).args(files);
        output(&mut c)
    }
}

/// Runs `cmd` to the end; asserts it did not panic.
pub fn output(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", cmd.get_program()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked"),
        "{:?} panicked: {err}",
        cmd.get_program()
    );
    out
}

/// Asserts `out` exited with `code` (showing what it printed otherwise); returns it.
pub fn assert_exit(out: &Output, code: i32) -> &Output {
    assert_eq!(out.status.code(), Some(code), "{}", both(out));
    out
}

/// Asserts `out` exited with `code` and printed `want` (on stdout or stderr).
pub fn assert_exit_saying(out: &Output, code: i32, want: &str) {
    assert_exit(out, code);
    assert!(both(out).contains(want), "no {want:?} in: {}", both(out));
}

/// Standard output, as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Standard output then standard error, as text (for failure messages).
pub fn both(o: &Output) -> String {
    stdout(o) + &stderr(o)
}
