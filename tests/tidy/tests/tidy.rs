//! The house rules hold on this tree, and each rule can fail: a violation of each is planted
//! in a scratch tree and must be named (with things that look alike but are allowed beside
//! it, which must not be).

#![allow(clippy::expect_used, reason = "tests")]

use std::path::{Path, PathBuf};

use zt_tidy::{check, Rule, Violation};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_tree_keeps_the_house_rules() {
    let v = check(&repo());
    let text: Vec<String> = v.iter().map(Violation::to_string).collect();
    assert!(
        v.is_empty(),
        "{} house rule(s) broken:\n{}",
        v.len(),
        text.join("\n")
    );
}

/// A scratch tree: crates with manifests and sources, and an ARCHITECTURE.md.
struct Tree(tempfile::TempDir);

impl Tree {
    fn new() -> Self {
        let t = Self(tempfile::tempdir().expect("temp dir"));
        t.write("ARCHITECTURE.md", "# Architecture\n");
        t
    }

    fn write(&self, path: &str, text: &str) -> &Self {
        let p = self.0.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
        self
    }

    /// A library crate in `crates/DIR` named NAME with these `[dependencies]` lines.
    fn krate(&self, dir: &str, name: &str, deps: &[&str]) -> &Self {
        self.write(
            &format!("crates/{dir}/Cargo.toml"),
            &format!(
                "[package]\nname = \"{name}\"\n\n[dependencies]\n{}\n\n[dev-dependencies]\nrusqlite = \"1\"\nzt-audit = {{ path = \"../cli\" }}\n",
                deps.join("\n")
            ),
        );
        self.write(&format!("crates/{dir}/src/lib.rs"), "//! A crate.\n")
    }

    fn violations(&self, rule: Rule) -> Vec<Violation> {
        check(self.0.path())
            .into_iter()
            .filter(|v| v.rule == rule)
            .collect()
    }
}

fn places(v: &[Violation]) -> Vec<&str> {
    v.iter().map(|v| v.place.as_str()).collect()
}

#[test]
fn a_dependency_up_the_floors_or_io_in_the_contract_is_named() {
    let t = Tree::new();
    t.krate(
        "core",
        "zt-core",
        &["serde.workspace = true", "tokio.workspace = true"],
    )
    .krate(
        "store",
        "zt-store",
        &[
            "zt-core.workspace = true",
            "zt-control-plane = { path = \"../control-plane\" }",
        ],
    )
    .krate("tls", "zt-tls", &["zt-core.workspace = true"])
    .krate("extra", "zt-extra", &[]);
    let v = t.violations(Rule::Layer);
    let text: Vec<String> = v.iter().map(Violation::to_string).collect();
    assert_eq!(v.len(), 3, "{text:#?}");
    assert!(
        text.iter()
            .any(|t| t.contains("zt-core") && t.contains("tokio")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("zt-store") && t.contains("zt-control-plane")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("zt-extra") && t.contains("no floor")),
        "{text:#?}"
    );
}

#[test]
fn a_rustls_config_built_outside_zt_tls_is_named() {
    let t = Tree::new();
    t.krate("tls", "zt-tls", &[])
        .write("crates/tls/src/lib.rs", "pub fn c() { rustls::ClientConfig::builder(); }\n")
        .krate("store", "zt-store", &[])
        .write(
            "crates/store/src/lib.rs",
            "// rustls::ClientConfig::builder() in a comment\nfn s() -> &'static str { \"ServerConfig::builder\" }\nfn c() {\n    let cfg = rustls::ClientConfig::builder()\n        .with_root_certificates(r);\n}\n",
        );
    assert_eq!(
        places(&t.violations(Rule::TlsHome)),
        ["crates/store/src/lib.rs:4"]
    );
}

#[test]
fn an_engine_type_outside_the_sql_edge_is_named() {
    let t = Tree::new();
    t.krate("store", "zt-store", &[])
        .write(
            "crates/store/src/sql.rs",
            "pub fn c(_: &rusqlite::Connection) {}\n",
        )
        .write(
            "crates/store/src/lib.rs",
            "mod sql;\n#[cfg(test)]\nmod tests {\n    fn t(_: rusqlite::Connection) {}\n}\n",
        )
        .krate("tui", "zt-tui", &[])
        .write(
            "crates/tui/src/lib.rs",
            "//! rusqlite in a comment\n\nfn f(c: &postgres::Client) {}\n",
        );
    assert_eq!(
        places(&t.violations(Rule::SqlEdge)),
        ["crates/tui/src/lib.rs:3"]
    );
}

#[test]
fn an_envelope_serialized_by_serde_json_is_named() {
    let t = Tree::new();
    t.krate("control-plane", "zt-control-plane", &[]).write(
        "crates/control-plane/src/lib.rs",
        "fn a(e: &Envelope) -> Vec<u8> {\n    serde_json::to_vec(&e.summary).unwrap_or_default();\n    serde_json::to_vec(&sealed_envelope).unwrap_or_default()\n}\n",
    );
    assert_eq!(
        places(&t.violations(Rule::CanonicalEnvelope)),
        ["crates/control-plane/src/lib.rs:3"]
    );
}

#[test]
fn files_that_import_each_other_are_named_and_a_facade_is_not() {
    let t = Tree::new();
    // a and b import each other (one through a grouped use, one inline); the root only
    // declares and re-exports, and c uses a's type through the root's re-export.
    t.krate("x", "zt-core", &[])
        .write(
            "crates/x/src/lib.rs",
            "mod a;\nmod b;\nmod c;\npub use a::A;\npub use b::B as Bee;\n",
        )
        .write(
            "crates/x/src/a.rs",
            "use crate::{b::B};\npub struct A(B);\n",
        )
        .write(
            "crates/x/src/b.rs",
            "pub struct B;\nfn f() -> crate::a::A { todo() }\n",
        )
        .write(
            "crates/x/src/c.rs",
            "use crate::A;\nfn g(_: crate::Bee) {}\n",
        );
    let v = t.violations(Rule::ImportLoop);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].what.contains("crates/x/src/a.rs") && v[0].what.contains("crates/x/src/b.rs"),
        "{v:#?}"
    );
    // c reaches a and b only through lib.rs's re-exports, which lead to the files that
    // define them: c -> a, c -> b, and c is in no loop.
    assert!(
        !v[0].what.contains("c.rs") && !v[0].what.contains("lib.rs"),
        "{v:#?}"
    );

    // Break the loop: b no longer names a.
    t.write("crates/x/src/b.rs", "pub struct B;\n");
    assert!(t.violations(Rule::ImportLoop).is_empty());
    // A parent whose children use what it defines, while it uses them, is a loop too.
    t.write(
        "crates/x/src/lib.rs",
        "mod a;\nmod b;\nmod c;\npub struct Root;\npub fn f() { a::g(); }\n",
    )
    .write(
        "crates/x/src/a.rs",
        "pub fn g() -> crate::Root { crate::Root }\n",
    );
    let v = t.violations(Rule::ImportLoop);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].what.contains("crates/x/src/lib.rs"), "{v:#?}");
}

#[test]
fn a_path_architecture_or_the_docs_name_that_does_not_exist_is_named() {
    let t = Tree::new();
    t.krate("store", "zt-store", &[])
        .write("crates/store/src/sql.rs", "\n")
        .write(".gitignore", "/target\nnode_modules/\n")
        .write(
            "ARCHITECTURE.md",
            "# Architecture\n\n`crates/store` holds `sql.rs` and `src/sql.rs`; `zt_store::sql` and `zt-audit verify --db` are not paths; `node_modules/.bin/anvil` is made by a script.\n\nIt also names `crates/store/src/gone.rs` and `scripts/missing.sh`.\n",
        );
    // The docs are held to the same: a page naming a test that moved.
    t.write(
        "docs/guide.md",
        "# Guide\n\nSee `crates/cli/tests/slow_clients` (moved) and `application/json`.\n",
    );
    let v = t.violations(Rule::ArchitecturePath);
    let what: Vec<&str> = v.iter().map(|v| v.what.as_str()).collect();
    assert_eq!(
        what,
        [
            "names crates/store/src/gone.rs, which does not exist",
            "names scripts/missing.sh, which does not exist",
            "names crates/cli/tests/slow_clients, which does not exist",
        ]
    );
    assert_eq!(
        places(&v),
        ["ARCHITECTURE.md:5", "ARCHITECTURE.md:5", "docs/guide.md:3"]
    );
}

#[test]
fn a_public_function_with_a_string_error_is_named() {
    let t = Tree::new();
    t.krate("conformance", "zt-conformance", &[]).write(
        "crates/conformance/src/lib.rs",
        "pub(crate) fn inner() -> Result<(), String> { Ok(()) }\nfn private() -> Result<(), String> { Ok(()) }\npub fn typed() -> Result<(), Error> { Ok(()) }\npub fn check(\n    x: u8,\n) -> Result<u8, String> {\n    Ok(x)\n}\npub async fn lookup(name: &str) -> Result<Vec<u8>, &'static str> { Err(\"no\") }\n",
    );
    assert_eq!(
        places(&t.violations(Rule::StringError)),
        [
            "crates/conformance/src/lib.rs:4",
            "crates/conformance/src/lib.rs:9"
        ]
    );
}
