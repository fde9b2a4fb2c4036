//! Just enough lexing for the rules: comments and string literals blanked (lines kept, so
//! line numbers stay true), test-only items removed, public signatures found.

/// `text` with every comment and the inside of every string and char literal replaced by
/// spaces; newlines are kept.
pub fn blank(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let keep = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    while i < c.len() {
        let at = |k: usize| c.get(i + k).copied().unwrap_or('\0');
        if at(0) == '/' && at(1) == '/' {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if at(0) == '/' && at(1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(keep(c[i]));
                    i += 1;
                }
            }
        } else if (at(0) == 'r' || (at(0) == 'b' && at(1) == 'r'))
            && !prev_is_ident(&c, i)
            && raw_start(&c, i + usize::from(at(0) == 'b') + 1).is_some()
        {
            let start = i + usize::from(at(0) == 'b') + 1;
            let hashes = raw_start(&c, start).unwrap_or(0);
            // r, #..#, "
            while i < start + hashes + 1 {
                out.push(c[i]);
                i += 1;
            }
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while i < c.len() && !c[i..].starts_with(&close) {
                out.push(keep(c[i]));
                i += 1;
            }
            for _ in 0..close.len().min(c.len() - i) {
                out.push(c[i]);
                i += 1;
            }
        } else if at(0) == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' && i + 1 < c.len() {
                    out.push(' ');
                    i += 1;
                }
                out.push(keep(c[i]));
                i += 1;
            }
            if i < c.len() {
                out.push('"');
                i += 1;
            }
        } else if at(0) == '\'' && is_char_literal(&c, i) {
            out.push('\'');
            i += 1;
            while i < c.len() && c[i] != '\'' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    out.push(' ');
                    i += 1;
                }
            }
            if i < c.len() {
                out.push('\'');
                i += 1;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn prev_is_ident(c: &[char], i: usize) -> bool {
    i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_')
}

/// At `i`: `#*"` opening a raw string; the number of hashes.
fn raw_start(c: &[char], i: usize) -> Option<usize> {
    let mut k = i;
    while c.get(k) == Some(&'#') {
        k += 1;
    }
    (c.get(k) == Some(&'"')).then_some(k - i)
}

/// A `'` at `i` opens a char literal (`'a'`, `'\n'`, `'\u{..}'`), not a lifetime.
fn is_char_literal(c: &[char], i: usize) -> bool {
    match c.get(i + 1) {
        Some('\\') => true,
        Some(_) => c.get(i + 2) == Some(&'\''),
        None => false,
    }
}

/// `code` (already blanked) without the items under `#[cfg(test)]`: a test module's block, a
/// test-only function, `use` or `mod` declaration. Lines are kept.
pub fn without_tests(code: &str) -> String {
    let mut out: Vec<char> = code.chars().collect();
    let marker: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + marker.len() <= out.len() {
        if out[i..].starts_with(&marker) {
            let end = item_end(&out, i + marker.len());
            for ch in &mut out[i..end] {
                if *ch != '\n' {
                    *ch = ' ';
                }
            }
            i = end;
        } else {
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// Where the item starting at `i` ends: after its `;` or its block's closing brace.
fn item_end(c: &[char], mut i: usize) -> usize {
    let mut depth = 0i32;
    while i < c.len() {
        match c[i] {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            ';' if depth == 0 => return i + 1,
            '{' if depth == 0 => {
                let mut braces = 0i32;
                while i < c.len() {
                    match c[i] {
                        '{' => braces += 1,
                        '}' => {
                            braces -= 1;
                            if braces == 0 {
                                return i + 1;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                return c.len();
            }
            _ => {}
        }
        i += 1;
    }
    c.len()
}

/// The signatures of `pub fn`s (not `pub(crate)` or narrower), with their 1-based line: from
/// `pub` to the body's `{` (or the `;` of a declaration).
pub fn pub_fn_signatures(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(k) = code[from..].find("pub ") {
        let at = from + k;
        from = at + 4;
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let rest = &code[at + 4..];
        let head = rest.trim_start();
        let head = ["const ", "async ", "unsafe "]
            .iter()
            .fold(head, |h, q| h.strip_prefix(q).map_or(h, str::trim_start));
        if !head.starts_with("fn ") {
            continue;
        }
        let end = rest.find(['{', ';']).map_or(rest.len(), |e| e);
        let line = code[..at].matches('\n').count() + 1;
        let sig: String = rest[..end].split_whitespace().collect::<Vec<_>>().join(" ");
        let sig = sig.split(" where ").next().unwrap_or("").to_owned();
        out.push((line, format!("pub {sig}")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_comments_and_strings_but_not_lifetimes() {
        let src = "fn a<'x>(s: &'x str) -> char { // crate::b\n let _ = \"crate::c\"; r#\"crate::d\"#; '\\'' }";
        let b = blank(src);
        assert!(!b.contains("crate::"), "{b}");
        assert!(b.contains("<'x>") && b.contains("&'x str"), "{b}");
        assert_eq!(b.lines().count(), src.lines().count());
    }

    #[test]
    fn removes_test_items_only() {
        let code = "use crate::a;\n#[cfg(test)]\nmod tests {\n use crate::b;\n}\n#[cfg(test)]\nuse crate::c;\nfn keep() {}\n";
        let out = without_tests(code);
        assert!(out.contains("crate::a") && out.contains("fn keep"), "{out}");
        assert!(
            !out.contains("crate::b") && !out.contains("crate::c"),
            "{out}"
        );
    }

    #[test]
    fn finds_public_signatures_over_lines() {
        let code = "pub(crate) fn hidden() -> Result<(), String> {}\npub fn shown(\n  a: u8,\n) -> Result<u8, String>\nwhere T: X {\n}\n";
        let sigs = pub_fn_signatures(code);
        assert_eq!(sigs.len(), 1, "{sigs:?}");
        assert_eq!(sigs[0].0, 2);
        assert!(sigs[0].1.ends_with("Result<u8, String>"), "{sigs:?}");
    }
}
