//! The house rules of the source tree, as code (rust-analyzer's tidy tests are the model).
//!
//! ARCHITECTURE.md states what must stay true; the rules here are the ones a machine can
//! check, so they stop being only words. Each returns [`Violation`]s naming the place and the
//! rule; `tests/tidy.rs` runs them all on this repository (and `scripts/test.sh` with it), and
//! plants a violation of each in a scratch tree to show that the rule can fail.
//!
//! - [`layers`]: a crate depends only on crates on a lower floor ([`FLOORS`]); `zt-core` does
//!   no I/O; the verifier builds no store.
//! - [`tls_home`]: only `zt-tls` builds rustls configurations.
//! - [`sql_edge`]: only the SQL edge modules ([`SQL_EDGE`]) name `rusqlite` or `postgres` types.
//! - [`canonical_envelopes`]: envelopes are never serialized with `serde_json` (their bytes are
//!   RFC 8785's, through `zt_core::json`).
//! - [`import_loops`]: no file-level import loop inside a crate.
//! - [`architecture_paths`]: every path ARCHITECTURE.md names exists.
//! - [`string_errors`]: no public function of a library crate returns `Result<_, String>`.
//!
//! The reading is lexical (comments and string literals blanked, `#[cfg(test)]` modules left
//! out), which is enough for these rules and needs no compiler.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

mod lex;
mod modules;
mod tree;

pub use modules::{import_graph, loops, ModPath};
pub use tree::{Crate, Source};

/// Which rule a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// A dependency on a crate of the same or a higher floor, or an I/O crate below I/O.
    Layer,
    /// A rustls configuration built outside `zt-tls`.
    TlsHome,
    /// An engine's types named outside the SQL edge.
    SqlEdge,
    /// An envelope serialized with `serde_json`.
    CanonicalEnvelope,
    /// Files of one crate that import each other.
    ImportLoop,
    /// ARCHITECTURE.md names a path that does not exist.
    ArchitecturePath,
    /// A public function returns `Result<_, String>`.
    StringError,
}

/// One broken rule, and where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// Where: a file (and line), or a crate.
    pub place: String,
    /// What.
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}: {}", self.rule, self.place, self.what)
    }
}

/// Every rule over the tree at `root`.
pub fn check(root: &Path) -> Vec<Violation> {
    let crates = Crate::all(root);
    let mut v = Vec::new();
    v.extend(layers(&crates));
    v.extend(tls_home(&crates));
    v.extend(sql_edge(&crates));
    v.extend(canonical_envelopes(&crates));
    v.extend(import_loops(&crates));
    v.extend(architecture_paths(root));
    v.extend(string_errors(&crates));
    v.sort();
    v
}

/// The floors of the workspace's crates: a crate may depend only on crates of a lower floor.
/// A new crate gets a floor here and a row in ARCHITECTURE.md's code map.
pub const FLOORS: &[(&str, u8)] = &[
    ("zt-core", 0),
    ("zt-verifier", 1),
    ("zt-tls", 1),
    ("zt-store", 2),
    ("zt-export", 2),
    ("zt-ingest", 3),
    ("zt-client", 3),
    ("zt-anchor", 3),
    ("zt-tui", 3),
    ("zt-conformance", 3),
    ("zt-broker", 4),
    ("zt-control-plane", 5),
    ("zt-demo", 6),
    ("zt-bench", 6),
    ("zt-audit", 7),
];

/// Crates that do I/O (network, database, terminal, processes): never below I/O.
const IO_CRATES: &[&str] = &[
    "tokio",
    "reqwest",
    "rusqlite",
    "postgres",
    "tokio-postgres",
    "axum",
    "hyper",
    "hyper-util",
    "rustls",
    "tokio-rustls",
    "alloy",
    "opentelemetry-otlp",
    "tower",
    "tower-http",
    "nix",
    "ratatui",
];

/// The modules that may name an engine's types (`rusqlite::`, `postgres::`): the store's SQL
/// edge and its PostgreSQL schema, and the control plane's own state database.
pub const SQL_EDGE: &[&str] = &[
    "crates/store/src/sql.rs",
    "crates/store/src/pgschema.rs",
    "crates/control-plane/src/db.rs",
];

fn violation(rule: Rule, place: impl Into<String>, what: impl Into<String>) -> Violation {
    Violation {
        rule,
        place: place.into(),
        what: what.into(),
    }
}

/// Lines of `code` (1-based) containing `needle`.
fn lines_with<'a>(code: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    code.lines()
        .enumerate()
        .filter(move |(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
}

/// Dependencies run down the floors only; the contract does no I/O; the verifier builds no
/// store.
pub fn layers(crates: &[Crate]) -> Vec<Violation> {
    let floor: BTreeMap<&str, u8> = FLOORS.iter().copied().collect();
    let mut v = Vec::new();
    let test_crates: BTreeSet<&str> = crates
        .iter()
        .filter(|c| !c.dir.starts_with("crates"))
        .map(|c| c.name.as_str())
        .collect();
    for c in crates.iter().filter(|c| c.dir.starts_with("crates")) {
        for d in c.deps.iter().filter(|d| test_crates.contains(d.as_str())) {
            v.push(violation(
                Rule::Layer,
                &c.name,
                format!("depends on {d}, a test crate (a dev-dependency at most)"),
            ));
        }
        let Some(&mine) = floor.get(c.name.as_str()) else {
            v.push(violation(
                Rule::Layer,
                &c.name,
                "a crate with no floor: give it one in zt-tidy's FLOORS (and a row in ARCHITECTURE.md)",
            ));
            continue;
        };
        for d in &c.deps {
            if let Some(&theirs) = floor.get(d.as_str()) {
                if theirs >= mine {
                    v.push(violation(
                        Rule::Layer,
                        &c.name,
                        format!("depends on {d} (floor {theirs}), not below its own floor {mine}"),
                    ));
                }
            } else if d.starts_with("zt-") && !test_crates.contains(d.as_str()) {
                v.push(violation(
                    Rule::Layer,
                    &c.name,
                    format!("depends on {d}, which is not a library of the floors"),
                ));
            }
        }
        let forbidden: &[&str] = match c.name.as_str() {
            "zt-core" => IO_CRATES,
            "zt-verifier" => &[
                "zt-store", "rusqlite", "postgres", "tokio", "reqwest", "axum",
            ],
            _ => &[],
        };
        for d in forbidden.iter().filter(|d| c.deps.contains(**d)) {
            v.push(violation(
                Rule::Layer,
                &c.name,
                format!("depends on {d}, which its layer forbids"),
            ));
        }
    }
    v
}

/// Only `zt-tls` builds rustls configurations (client or server).
pub fn tls_home(crates: &[Crate]) -> Vec<Violation> {
    let mut v = Vec::new();
    for c in crates.iter().filter(|c| c.name != "zt-tls") {
        for f in &c.files {
            for needle in [
                "ClientConfig::builder",
                "ServerConfig::builder",
                "builder_with_provider",
            ] {
                for line in lines_with(&f.code, needle) {
                    v.push(violation(
                        Rule::TlsHome,
                        format!("{}:{line}", f.path.display()),
                        format!("{needle}: rustls configurations are built by zt-tls only"),
                    ));
                }
            }
        }
    }
    v
}

/// Only the SQL edge names an engine's types.
pub fn sql_edge(crates: &[Crate]) -> Vec<Violation> {
    let mut v = Vec::new();
    // Test crates read and edit stores behind the store's back on purpose.
    for c in crates.iter().filter(|c| c.dir.starts_with("crates")) {
        for f in &c.files {
            if SQL_EDGE.iter().any(|e| f.path == Path::new(e)) {
                continue;
            }
            for needle in ["rusqlite", "postgres::", "tokio_postgres"] {
                for line in lines_with(&f.code, needle) {
                    v.push(violation(
                        Rule::SqlEdge,
                        format!("{}:{line}", f.path.display()),
                        format!("names {needle}: only the SQL edge (zt-tidy's SQL_EDGE) does"),
                    ));
                }
            }
        }
    }
    v
}

/// Envelopes are never serialized with `serde_json`: their bytes are RFC 8785's.
pub fn canonical_envelopes(crates: &[Crate]) -> Vec<Violation> {
    let mut v = Vec::new();
    for c in crates {
        for f in &c.files {
            for (i, l) in f.code.lines().enumerate() {
                for call in [
                    "serde_json::to_vec(",
                    "serde_json::to_string(",
                    "serde_json::to_writer(",
                ] {
                    let Some(at) = l.find(call) else { continue };
                    let arg = &l[at + call.len()..];
                    if arg.to_ascii_lowercase().contains("envelope") {
                        v.push(violation(
                            Rule::CanonicalEnvelope,
                            format!("{}:{}", f.path.display(), i + 1),
                            format!(
                                "{call}..) of an envelope: its bytes are RFC 8785's (zt_core::json)"
                            ),
                        ));
                    }
                }
            }
        }
    }
    v
}

/// No file-level import loop inside a crate.
pub fn import_loops(crates: &[Crate]) -> Vec<Violation> {
    let mut v = Vec::new();
    for c in crates {
        let graph = import_graph(c);
        for l in loops(&graph) {
            let files: Vec<String> = l.iter().map(|m| m.file.display().to_string()).collect();
            v.push(violation(
                Rule::ImportLoop,
                &c.name,
                format!("these files import each other: {}", files.join(", ")),
            ));
        }
    }
    v
}

/// Every path ARCHITECTURE.md, the README and `docs/` name in backquotes exists: from the
/// root, under a crate (`crates/*/` or `crates/*/src/`) for the code map's short names, and a
/// bare file name (`build.mjs`) anywhere in the tree; what `.gitignore` says the scripts make
/// is exempt.
pub fn architecture_paths(root: &Path) -> Vec<Violation> {
    if !root.join("ARCHITECTURE.md").is_file() {
        return vec![violation(
            Rule::ArchitecturePath,
            "ARCHITECTURE.md",
            "missing",
        )];
    }
    let mut docs = vec![PathBuf::from("ARCHITECTURE.md"), PathBuf::from("README.md")];
    if let Ok(rd) = std::fs::read_dir(root.join("docs")) {
        let mut more: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .filter_map(|p| Some(p.strip_prefix(root).ok()?.to_path_buf()))
            .collect();
        more.sort();
        docs.extend(more);
    }
    let crate_dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    let bases: Vec<PathBuf> = std::iter::once(root.to_path_buf())
        .chain(crate_dirs.iter().flat_map(|d| [d.clone(), d.join("src")]))
        .collect();
    let names = file_names(root);
    let generated = ignored_roots(root);
    let mut v = Vec::new();
    for doc in docs {
        let Ok(text) = std::fs::read_to_string(root.join(&doc)) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            for token in line.split('`').skip(1).step_by(2) {
                let Some(path) = named_path(token) else {
                    continue;
                };
                // What the scripts make (`node_modules/`, `target/`) is named before it exists.
                if generated
                    .iter()
                    .any(|g| path == g || path.starts_with(&format!("{g}/")))
                {
                    continue;
                }
                let found = if path.contains('/') {
                    // A slash that is not a path (`application/json`): its first part is no
                    // folder anywhere the map speaks of.
                    let first = path.split('/').next().unwrap_or("");
                    if !has_extension(path) && !root.join(first).is_dir() {
                        continue;
                    }
                    bases.iter().any(|b| b.join(path).exists())
                } else {
                    names.contains(path) || bases.iter().any(|b| b.join(path).exists())
                };
                if !found {
                    v.push(violation(
                        Rule::ArchitecturePath,
                        format!("{}:{}", doc.display(), i + 1),
                        format!("names {path}, which does not exist"),
                    ));
                }
            }
        }
    }
    v
}

/// The paths `.gitignore` leaves out of the tree (`/target`, `node_modules/`, `/fuzz/corpus`):
/// what the scripts make.
fn ignored_roots(root: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(root.join(".gitignore"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().trim_start_matches('/').trim_end_matches('/'))
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.contains(['*', '!']))
        .map(str::to_owned)
        .collect()
}

/// The names of every file in the tree (not in build output, installed tools or git).
fn file_names(root: &Path) -> BTreeSet<String> {
    tree::files_below(root)
        .iter()
        .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
        .collect()
}

const EXTENSIONS: &[&str] = &[
    ".rs", ".md", ".sh", ".toml", ".mjs", ".py", ".sol", ".go", ".json", ".txt",
];

fn has_extension(t: &str) -> bool {
    EXTENSIONS.iter().any(|x| t.ends_with(x))
}

/// The file or folder a backquoted token names, if it names one: a relative path with a
/// slash, or a file name with a source or document extension; commands, URLs, globs and
/// Rust paths are not paths.
fn named_path(token: &str) -> Option<&str> {
    let t = token.trim();
    if t.is_empty()
        || t.contains(char::is_whitespace)
        || t.contains("://")
        || t.contains("::")
        || t.contains(['*', '<', '>', '{', '}', '$', '(', ')', '=', ',', '[', ']'])
        || t.starts_with('/')
        || t.starts_with('-')
        || t.starts_with('.') && !t.starts_with("./") && !t.starts_with(".ci")
    {
        return None;
    }
    let dir_like = t.contains('/')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c));
    (has_extension(t) || dir_like).then_some(t.trim_end_matches('/'))
}

/// No `pub fn` of a library crate returns `Result<_, String>` (or `&str`): errors that cross a
/// crate's boundary are typed.
pub fn string_errors(crates: &[Crate]) -> Vec<Violation> {
    let mut v = Vec::new();
    for c in crates
        .iter()
        .filter(|c| c.is_lib && c.dir.starts_with("crates"))
    {
        for f in &c.files {
            for (line, sig) in lex::pub_fn_signatures(&f.code) {
                let ret = sig.split("->").nth(1).unwrap_or("").replace(' ', "");
                if ret.contains("Result<")
                    && (ret.ends_with(",String>")
                        || ret.ends_with(",&str>")
                        || ret.ends_with(",&'staticstr>"))
                {
                    v.push(violation(
                        Rule::StringError,
                        format!("{}:{line}", f.path.display()),
                        format!("a public function returns a String error: {}", sig.trim()),
                    ));
                }
            }
        }
    }
    v
}
