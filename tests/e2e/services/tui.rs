//! The real binary in a real terminal: `zt-audit tui` inside tmux (installed by
//! scripts/test.sh), keys in, screen out.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use zt_testkit::{fixture, wait_until};

use crate::{bin, zt};

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(cmd: &str) -> Tmux {
        let socket = format!("zt-tui-test-{}", std::process::id());
        let t = Tmux { socket };
        let st = t
            .tmux(&["new-session", "-d", "-s", "t", "-x", "120", "-y", "40", cmd])
            .status
            .success();
        assert!(
            st,
            "tmux new-session failed (is tmux installed? scripts/test.sh installs it)"
        );
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux (scripts/test.sh installs it)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        assert!(self.tmux(&args).status.success());
    }

    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let mut screen = String::new();
        wait_until(what, Duration::from_secs(20), || {
            screen = self.screen();
            ok(&screen)
        });
        screen
    }

    fn alive(&self) -> bool {
        self.tmux(&["has-session", "-t", "t"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

fn import(db: &Path, ring: &str, file: &str) {
    let out = bin().import(db, &fixture(ring), &[&fixture(file)]);
    assert_eq!(out.status.code(), Some(0), "{}", zt_testkit::stderr(&out));
}

/// The table's rows on a captured screen: the lines between the column header and the footer.
fn table_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .skip_while(|l| !l.contains("time") || !l.contains("decision"))
        .skip(1)
        .take_while(|l| !l.contains("q quit"))
        .filter(|l| !l.trim().is_empty() && !l.starts_with("filter:"))
        .collect()
}

#[test]
fn in_a_120x40_tmux_it_lists_filters_and_quits() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("tui.db");
    import(
        &db,
        "interop/zt-infra-full/keyring.json",
        "interop/zt-infra-full/valid.jsonl",
    );
    import(&db, "v1/keyring.json", "v1/valid.jsonl");
    let cmd = format!("{} tui --db {}", bin().path().display(), db.display());
    let t = Tmux::new(&cmd);
    let first = t.wait_for("the decisions list", |s| {
        s.contains("decisions, newest first")
    });
    let rows = table_rows(&first);
    assert!(rows.len() >= 20, "rows listed:\n{first}");
    assert!(rows.iter().any(|r| r.contains("hello-world")), "{first}");

    t.keys(&["/terminate_instances", "Enter"]);
    let filtered = t.wait_for("the filter", |s| s.contains("filter: terminate_instances"));
    let rows = table_rows(&filtered);
    assert!(!rows.is_empty(), "{filtered}");
    assert!(
        rows.iter().all(|r| r.contains("aws.ec2.termina")),
        "only terminate_instances rows:\n{filtered}"
    );

    t.keys(&["Enter"]);
    t.wait_for("the detail view", |s| {
        s.contains("verification") && s.contains("envelope")
    });
    t.keys(&["Escape", "q"]);
    wait_until("q to quit", Duration::from_secs(10), || !t.alive());
}

#[test]
fn a_missing_store_is_an_error_not_a_blank_screen() {
    let out = zt(&["tui", "--db", "/nonexistent/zt.db"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store at /nonexistent/zt.db"));
}
