//! The file-level import graph of a crate: which file refers to which, through `use` trees
//! and inline paths (`crate::`, `super::`, `self::`, a child module's name). A `mod`
//! declaration is not an edge; a name re-exported with `pub use` leads to the file that
//! defines it; `#[cfg(test)]` items are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::tree::{Crate, Source};

/// A file's module: its path in the crate (`[]` for the root) and the file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ModPath {
    /// Segments from the crate root.
    pub segments: Vec<String>,
    /// The file, from the repository root.
    pub file: PathBuf,
}

/// The module path of `file` under `src` (`lib.rs`/`main.rs` → root, `a/mod.rs` → `a`).
fn segments(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut s: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(s.last().map(String::as_str), Some("lib" | "main" | "mod")) {
        s.pop();
    }
    s
}

/// The edges of `c`'s import graph, file to files.
pub fn import_graph(c: &Crate) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let src = c.dir.join("src");
    // A crate with a library and a binary: the binary is its own crate root, which refers
    // to the library by name, so only the library's tree is one module graph.
    let files: Vec<&Source> = c
        .files
        .iter()
        .filter(|f| !(c.is_lib && f.path == src.join("main.rs")))
        .collect();
    let mods: BTreeMap<Vec<String>, &Source> = files
        .iter()
        .map(|f| (segments(&src, &f.path), *f))
        .collect();
    let modpath = |s: &Vec<String>| ModPath {
        segments: s.clone(),
        file: mods.get(s).map(|f| f.path.clone()).unwrap_or_default(),
    };
    // Re-exports: (module, name) -> the path it stands for, from that module.
    let mut reexports: BTreeMap<(Vec<String>, String), Vec<String>> = BTreeMap::new();
    for (m, f) in &mods {
        for (path, alias, public) in use_trees(&f.code) {
            if public {
                if let Some(full) = absolute(m, &path, &mods) {
                    reexports.insert((m.clone(), alias), full);
                }
            }
        }
    }
    let mut graph = BTreeMap::new();
    for (m, f) in &mods {
        let mut to = BTreeSet::new();
        let mut paths: Vec<Vec<String>> = use_trees(&f.code).into_iter().map(|u| u.0).collect();
        paths.extend(inline_paths(&f.code, m, &mods));
        for p in paths {
            let Some(full) = absolute(m, &p, &mods) else {
                continue;
            };
            if let Some(target) = resolve(&full, &mods, &reexports) {
                if &target != m {
                    to.insert(modpath(&target));
                }
            }
        }
        graph.insert(modpath(m), to);
    }
    graph
}

/// `path` as written in module `m`, made absolute; None for another crate's path.
fn absolute(
    m: &[String],
    path: &[String],
    mods: &BTreeMap<Vec<String>, &Source>,
) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    let mut base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => m.to_vec(),
        "super" => m[..m.len().checked_sub(1)?].to_vec(),
        name => {
            let mut child = m.to_vec();
            child.push(name.to_owned());
            if !mods.contains_key(&child) {
                return None;
            }
            return Some(child.into_iter().chain(rest.iter().cloned()).collect());
        }
    };
    let mut rest = rest;
    while let Some(("super", r)) = rest.split_first().map(|(a, r)| (a.as_str(), r)) {
        base.pop();
        rest = r;
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The file module an absolute path lands in, following re-exports (a few hops).
fn resolve(
    full: &[String],
    mods: &BTreeMap<Vec<String>, &Source>,
    reexports: &BTreeMap<(Vec<String>, String), Vec<String>>,
) -> Option<Vec<String>> {
    let mut full = full.to_vec();
    for _ in 0..8 {
        let k = (0..=full.len())
            .rev()
            .find(|&k| mods.contains_key(&full[..k]))?;
        let module = full[..k].to_vec();
        match full.get(k) {
            Some(name) => match reexports.get(&(module.clone(), name.clone())) {
                Some(target) if target != &full[..=k] => {
                    let mut next = target.clone();
                    next.extend(full[k + 1..].iter().cloned());
                    full = next;
                }
                _ => return Some(module),
            },
            None => return Some(module),
        }
    }
    None
}

/// Every `use` tree of `code`, expanded: (path, the name it binds, whether it is `pub`).
fn use_trees(code: &str) -> Vec<(Vec<String>, String, bool)> {
    let mut out = Vec::new();
    let b = code.as_bytes();
    let mut from = 0;
    while let Some(k) = code[from..].find("use ") {
        let at = from + k;
        from = at + 4;
        if at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_') {
            continue;
        }
        let before = code[..at].trim_end();
        let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        let Some(end) = code[at..].find(';') else {
            break;
        };
        // ` as ` survives as `@`, then whitespace goes: `a::{b as c, d}` -> `a::{b@c,d}`.
        let tree: String = code[at + 4..at + end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace(" as ", "@")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let tree = tree.trim_start_matches("::");
        for leaf in expand(tree) {
            let (path, alias) = match leaf.split_once('@') {
                Some((p, a)) => (p.to_owned(), a.to_owned()),
                None => (
                    leaf.clone(),
                    leaf.rsplit("::").next().unwrap_or("").to_owned(),
                ),
            };
            let segs: Vec<String> = path
                .split("::")
                .filter(|s| !s.is_empty() && *s != "*")
                .map(str::to_owned)
                .collect();
            let segs = if segs.last().map(String::as_str) == Some("self") {
                segs[..segs.len() - 1].to_vec()
            } else {
                segs
            };
            if !segs.is_empty() {
                out.push((segs, alias, public));
            }
        }
    }
    out
}

/// `a::{b, c::{d, e}}` -> `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        return vec![tree.to_owned()];
    };
    let prefix = &tree[..open];
    let inner = tree[open + 1..]
        .strip_suffix('}')
        .unwrap_or(&tree[open + 1..]);
    let mut parts = Vec::new();
    let (mut depth, mut cur) = (0, String::new());
    for ch in inner.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    parts.push(cur);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(&p).into_iter().map(move |e| format!("{prefix}{e}")))
        .collect()
}

/// Paths written inline: `crate::a::b`, `super::x`, `self::y`, `child::z` for a child
/// module of `m`.
fn inline_paths(
    code: &str,
    m: &[String],
    mods: &BTreeMap<Vec<String>, &Source>,
) -> Vec<Vec<String>> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let starts = c[i].is_alphabetic() || c[i] == '_';
        let prev_ok = i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_' || c[i - 1] == ':');
        if !(starts && prev_ok) {
            i += 1;
            continue;
        }
        let mut segs = Vec::new();
        let mut j = i;
        loop {
            let s = j;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            if s == j {
                break;
            }
            segs.push(c[s..j].iter().collect::<String>());
            if c.get(j) == Some(&':') && c.get(j + 1) == Some(&':') {
                j += 2;
            } else {
                break;
            }
        }
        if segs.len() > 1 {
            let first = segs[0].as_str();
            let mut child = m.to_vec();
            child.push(first.to_owned());
            if matches!(first, "crate" | "super" | "self") || mods.contains_key(&child) {
                out.push(segs);
            }
        }
        i = j.max(i + 1);
    }
    out
}

/// The loops of a graph: its strongly connected parts of more than one file.
pub fn loops(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct Tarjan<'g> {
        graph: &'g BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'g ModPath, usize>,
        low: BTreeMap<&'g ModPath, usize>,
        stack: Vec<&'g ModPath>,
        on: BTreeSet<&'g ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g ModPath) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let Some((w, _)) = self.graph.get_key_value(w) else {
                    continue;
                };
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low[v];
                    self.low.insert(v, lv.min(lw));
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low[v];
                    self.low.insert(v, lv.min(iw));
                }
            }
            if self.low[v] == self.index[v] {
                let mut part = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    part.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if part.len() > 1 {
                    part.sort();
                    self.out.push(part);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.out.sort();
    t.out
}
