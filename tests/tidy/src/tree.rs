//! The workspace as the rules read it: each crate's name, dependencies and sources (comments
//! and strings blanked, tests left out).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::lex;

/// One workspace crate under `crates/`: its name, dependencies and library sources.
#[derive(Debug, Clone)]
pub struct Crate {
    /// The package name.
    pub name: String,
    /// Its folder, relative to the root (`crates/store`).
    pub dir: PathBuf,
    /// Normal dependencies (not dev or build), by package name.
    pub deps: BTreeSet<String>,
    /// Its `src/` files (relative to the root) with their text, tests left out.
    pub files: Vec<Source>,
    /// Whether it is a library (has `src/lib.rs`).
    pub is_lib: bool,
}

/// A source file: its path from the root, its text with comments and string literals blanked
/// (lines kept) and `#[cfg(test)]` modules removed.
#[derive(Debug, Clone)]
pub struct Source {
    /// From the root.
    pub path: PathBuf,
    /// The code, blanked.
    pub code: String,
}

impl Crate {
    /// Every crate of the workspace: the libraries and the binary under `root/crates`, the
    /// test crates under `root/tests` and the fuzz bodies.
    pub fn all(root: &Path) -> Vec<Crate> {
        let mut out = Vec::new();
        let mut dirs: Vec<PathBuf> = ["crates", "tests"]
            .iter()
            .filter_map(|d| std::fs::read_dir(root.join(d)).ok())
            .flat_map(|rd| rd.flatten().map(|e| e.path()))
            .chain(std::iter::once(root.join("fuzz/bodies")))
            .collect();
        dirs.sort();
        for dir in dirs {
            let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
                continue;
            };
            let rel = dir.strip_prefix(root).unwrap_or(&dir).to_path_buf();
            let mut files = Vec::new();
            let test_only = test_only_files(&dir.join("src"));
            for f in rust_files(&dir.join("src")) {
                if test_only.contains(&f) {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&f) else {
                    continue;
                };
                files.push(Source {
                    path: f.strip_prefix(root).unwrap_or(&f).to_path_buf(),
                    code: lex::without_tests(&lex::blank(&text)),
                });
            }
            out.push(Crate {
                name: package_name(&manifest).unwrap_or_default(),
                deps: dependencies(&manifest),
                is_lib: dir.join("src/lib.rs").is_file(),
                dir: rel,
                files,
            });
        }
        out
    }
}

/// Every file below `dir` (not in build output, installed tools or git), sorted.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if !p.is_dir() {
                out.push(p);
            } else if !matches!(
                p.file_name().and_then(|n| n.to_str()),
                Some("target" | "node_modules" | ".git")
            ) {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    files_below(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect()
}

fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_package = t == "[package]";
        } else if in_package {
            if let Some(v) = t.strip_prefix("name") {
                let v = v.trim_start().strip_prefix('=')?.trim();
                return Some(v.trim_matches('"').to_owned());
            }
        }
    }
    None
}

/// The names in `[dependencies]` and `[target.*.dependencies]` (a `package = ".."` rename
/// counts by its package).
fn dependencies(manifest: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut on = false;
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            on = t == "[dependencies]"
                || (t.starts_with("[target.") && t.ends_with(".dependencies]"));
            continue;
        }
        if !on || t.is_empty() || t.starts_with('#') {
            continue;
        }
        let Some((key, rest)) = t.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_end_matches(".workspace").trim();
        let name = rest
            .split("package")
            .nth(1)
            .and_then(|r| r.split('"').nth(1))
            .unwrap_or(key);
        out.insert(name.to_owned());
    }
    out
}

/// Files that only `#[cfg(test)] mod x;` declarations bring in (test helpers).
fn test_only_files(src: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for p in rust_files(src) {
        let Some(d) = p.parent().map(Path::to_path_buf) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let code = crate::lex::blank(&text);
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
        let dir = match stem.as_deref() {
            Some("lib" | "main" | "mod") => d.clone(),
            Some(s) => d.join(s),
            None => continue,
        };
        let mut rest = code.as_str();
        while let Some(k) = rest.find("#[cfg(test)]") {
            rest = &rest[k + "#[cfg(test)]".len()..];
            let decl = rest.trim_start();
            let decl = decl.strip_prefix("pub(crate) ").unwrap_or(decl);
            let Some(name) = decl.strip_prefix("mod ") else {
                continue;
            };
            let name: String = name
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() || !name_then(decl, &name, ';') {
                continue;
            }
            out.insert(dir.join(format!("{name}.rs")));
            out.insert(dir.join(&name).join("mod.rs"));
        }
    }
    out
}

/// `decl` is `mod NAME` followed by `end` (after spaces).
fn name_then(decl: &str, name: &str, end: char) -> bool {
    decl.strip_prefix("mod ")
        .and_then(|r| r.strip_prefix(name))
        .is_some_and(|r| r.trim_start().starts_with(end))
}
