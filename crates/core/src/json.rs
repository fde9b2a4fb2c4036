//! JSON values as the evidence formats need them, and RFC 8785 canonical JSON.
//!
//! Parsing follows I-JSON (RFC 7493), which RFC 8785 builds on: UTF-8 only, no lone surrogates,
//! and **no duplicate member names** (a parser differential on `"decision"` twice in one record is
//! exactly the kind of ambiguity evidence must not have). Numbers are IEEE 754 doubles, as in
//! RFC 8785 §3.2.2.3; they are parsed with correct rounding.
//!
//! **Numbers and their readers.** Readers differ on one kind of number text only: an
//! integer-form text (no fraction, no exponent) that no double holds exactly. ECMAScript reads
//! `9007199254740993` as the double 9007199254740992; Python's `json`, Go's `json.Number` or a
//! `BigInt` reader keep it exact. Such a text is refused at parse ([`parse`]): two readers of one
//! record would hold two values while one hash covers them. Every other number text is fine,
//! however large: `1e+21` (the double 10^21, as `JSON.stringify` writes it), `1e20`,
//! `100000000000000000000` (10^20 exactly) and `0.1` all mean one double to every reader. What is
//! produced is checked the same way ([`first_inexact_number`]): a double whose RFC 8785 text is
//! such an integer (2^68 is `295147905179352830000`) has no text every reader agrees on.
//!
//! Serialization:
//! - [`canonicalize`]: RFC 8785. Members sorted by their UTF-16 code units, strings escaped per
//!   §3.2.2.2 (only `"`, `\`, and U+0000..U+001F; `\b \t \n \f \r` short forms, other controls as
//!   lowercase `\u00xx`), numbers in ECMAScript `Number.prototype.toString` form (§3.2.2.3).
//! - [`write_ordered_object`]: the same value rules with members in the caller's order, which is
//!   what JavaScript's `JSON.stringify` of an object literal gives (the hello-world profile).
//!
//! Both writers are byte-exact with the zt-infra lineage's `stableJson` for the records it
//! produces (string members only), which the interop vectors pin.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::JsonError;

/// A parsed JSON value. Object members keep their input order; duplicates were rejected.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// Every JSON number is an IEEE 754 double (RFC 8785 §3.2.2.3).
    Number(f64),
    /// A string (valid Unicode: lone surrogates are rejected at parse time).
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, members in input order.
    Object(Map),
}

/// Object members in input order. Lookups are linear: evidence records have a dozen members.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

impl Map {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// The member called `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether a member called `key` exists.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// Members in input order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the object has no members.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends a member; the caller guarantees `key` is not present yet.
    pub fn push(&mut self, key: String, value: Value) {
        self.entries.push((key, value));
    }

    /// Removes and returns the member called `key`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let pos = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(pos).1)
    }
}

impl Value {
    /// The JSON type name, for error messages ("expected string, found number").
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }
}

/// Parses one JSON text (I-JSON rules: duplicate member names are an error).
///
/// Nesting deeper than 128 levels is refused (serde_json's recursion limit), so hostile input
/// cannot exhaust the stack.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Value::deserialize(&mut de).map_err(JsonError::from_serde)?;
    de.end().map_err(JsonError::from_serde)?;
    if let Some(e) = inexact_integer_text(bytes, &value) {
        return Err(e);
    }
    Ok(value)
}

/// The rules of [`parse`] but its number rule: one JSON text, no duplicate member, no lone
/// surrogate, at most 128 levels. For wire formats whose numbers are never sealed into a
/// record as read: OTLP/JSON, whose 64-bit integers (`timeUnixNano`) the protobuf JSON
/// mapping allows as numbers past 2^53.
pub fn check_wire(bytes: &[u8]) -> Result<(), JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Value::deserialize(&mut de).map_err(JsonError::from_serde)?;
    de.end().map_err(JsonError::from_serde)
}

/// Whether an integer-form number text (`-?[0-9]+`) reads exactly as the double it rounds to:
/// a reader that keeps integers exact then holds the same value as one that reads doubles.
pub fn integer_text_is_exact(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    // Every integer below 10^15 is exact (2^53 is about 9.007e15).
    if digits.len() <= 15 {
        return true;
    }
    match text.parse::<f64>() {
        // `{:.0}` of a double that is an integer is its exact decimal expansion.
        Ok(f) if f.is_finite() => format!("{:.0}", f.abs()) == digits,
        _ => false,
    }
}

/// Whether a number text is integer-form (no fraction, no exponent).
fn integer_form(text: &str) -> bool {
    !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// The number tokens of a JSON text that parsed, in order: (byte offset, text).
fn number_texts(bytes: &[u8]) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                out.push((start, std::str::from_utf8(&bytes[start..i]).unwrap_or("")));
            }
            _ => i += 1,
        }
    }
    out
}

/// The paths of the numbers in `v`, in text order (depth first, members in order).
fn number_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Number(_) => out.push(prefix.to_owned()),
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                number_paths(x, &format!("{prefix}[{i}]"), out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m.iter() {
                let p = if prefix.is_empty() {
                    k.to_owned()
                } else {
                    format!("{prefix}.{k}")
                };
                number_paths(x, &p, out);
            }
        }
        _ => {}
    }
}

/// The refusal of the first integer-form number text of `bytes` that no double holds exactly.
fn inexact_integer_text(bytes: &[u8], value: &Value) -> Option<JsonError> {
    // Most texts have no run of 16 digits at all: one pass over the bytes, nothing allocated.
    let mut run = 0;
    if !bytes.iter().any(|b| {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        run > 15
    }) {
        return None;
    }
    let texts = number_texts(bytes);
    let (n, (offset, text)) = texts
        .iter()
        .enumerate()
        .find(|(_, (_, t))| integer_form(t) && !integer_text_is_exact(t))?;
    let mut paths = Vec::with_capacity(texts.len());
    number_paths(value, "", &mut paths);
    let path = paths.get(n).cloned().unwrap_or_default();
    let before = &bytes[..*offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = offset
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    let mut rounded = Vec::new();
    write_number(text.parse::<f64>().unwrap_or(0.0), &mut rounded);
    Some(JsonError {
        message: format!(
            "number {}{} is an integer no double holds exactly: read exactly it is another value than the double {} that a hash covers (I-JSON, RFC 7493 section 2.2)",
            truncate_for_message(text),
            if path.is_empty() {
                String::new()
            } else {
                format!(" (`{}`)", truncate_for_message(&path))
            },
            String::from_utf8_lossy(&rounded)
        ),
        line,
        column,
    })
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

/// The largest integer below which every integer has an exact double (2^53 - 1, ECMAScript's
/// `Number.MAX_SAFE_INTEGER`).
pub const MAX_EXACT_INTEGER: u64 = (1 << 53) - 1;

/// The first number in `v` (depth first, members in order) whose RFC 8785 text is an integer no
/// double holds exactly (2^68's text `295147905179352830000` is 295147905179352825856 to a
/// reader that keeps integers exact), with its path (`context.n`, `a[2]`). Such a number cannot
/// be written into a record every reader agrees on; producers refuse it. (Parsed texts are
/// checked by [`parse`] itself.)
pub fn first_inexact_number(v: &Value) -> Option<(String, f64)> {
    match v {
        Value::Number(n) => {
            let mut text = Vec::new();
            write_number(*n, &mut text);
            let text = String::from_utf8_lossy(&text);
            (integer_form(&text) && !integer_text_is_exact(&text)).then(|| (String::new(), *n))
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, x)| {
            first_inexact_number(x).map(|(p, n)| (format!("[{i}]{}", dotted(&p)), n))
        }),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            first_inexact_number(x).map(|(p, n)| (format!("{k}{}", dotted(&p)), n))
        }),
        _ => None,
    }
}

fn dotted(rest: &str) -> String {
    if rest.is_empty() || rest.starts_with('[') {
        rest.to_owned()
    } else {
        format!(".{rest}")
    }
}

/// Above this many members a hash set guards against duplicates, so a hostile object with
/// many members costs linear time, not quadratic.
const LINEAR_DUP_CHECK_MAX: usize = 16;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    // Integers become doubles, as in ECMAScript: `as` rounds to nearest-even, which is what a
    // correctly rounded decimal parse of the same integer gives. (A text no double holds
    // exactly is refused once the value is read: `inexact_integer_text`.)
    #[allow(
        clippy::cast_precision_loss,
        reason = "JSON numbers are IEEE doubles (RFC 8785)"
    )]
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }

    #[allow(
        clippy::cast_precision_loss,
        reason = "JSON numbers are IEEE doubles (RFC 8785)"
    )]
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        if v.is_finite() {
            Ok(Value::Number(v))
        } else {
            Err(E::custom("number out of the IEEE 754 double range"))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        let mut seen: Option<HashSet<String>> = None;
        while let Some(key) = access.next_key::<String>()? {
            let dup = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None => {
                    let dup = map.contains_key(&key);
                    if !dup && map.len() >= LINEAR_DUP_CHECK_MAX {
                        let mut set: HashSet<String> =
                            map.entries.iter().map(|(k, _)| k.clone()).collect();
                        set.insert(key.clone());
                        seen = Some(set);
                    }
                    dup
                }
            };
            if dup {
                return Err(de::Error::custom(format_args!(
                    "duplicate member name `{}`",
                    truncate_for_message(&key)
                )));
            }
            let value: Value = access.next_value()?;
            map.push(key, value);
        }
        Ok(Value::Object(map))
    }
}

fn truncate_for_message(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// RFC 8785 canonical form of `value`.
pub fn canonicalize(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

/// Appends the RFC 8785 canonical form of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(*n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_canonical_object(map, out),
    }
}

/// Indented JSON for people (two spaces), members in their input order. Never hashed: for
/// display only (the demo, the browser's detail view).
pub fn to_pretty(value: &Value) -> String {
    fn go(v: &Value, depth: usize, out: &mut Vec<u8>) {
        let pad = |out: &mut Vec<u8>, d: usize| {
            out.push(b'\n');
            out.extend(std::iter::repeat_n(b' ', d * 2));
        };
        match v {
            Value::Array(items) if !items.is_empty() => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    pad(out, depth + 1);
                    go(item, depth + 1, out);
                }
                pad(out, depth);
                out.push(b']');
            }
            Value::Object(m) if !m.is_empty() => {
                out.push(b'{');
                for (i, (k, item)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    pad(out, depth + 1);
                    write_string(k, out);
                    out.extend_from_slice(b": ");
                    go(item, depth + 1, out);
                }
                pad(out, depth);
                out.push(b'}');
            }
            other => write_canonical(other, out),
        }
    }
    let mut out = Vec::new();
    go(value, 0, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the RFC 8785 canonical form of an object (members sorted by UTF-16 code units).
pub fn write_canonical_object(map: &Map, out: &mut Vec<u8>) {
    let mut members: Vec<(&str, &Value)> = map.iter().collect();
    members.sort_by(|a, b| cmp_utf16(a.0, b.0));
    out.push(b'{');
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(k, out);
        out.push(b':');
        write_canonical(v, out);
    }
    out.push(b'}');
}

/// Writes an object whose members come in the given order (JavaScript `JSON.stringify` of an
/// object literal). Member values use the RFC 8785 rules; nested objects are canonical.
pub fn write_ordered_object(members: &[(&str, &Value)], out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(k, out);
        out.push(b':');
        write_canonical(v, out);
    }
    out.push(b'}');
}

/// Member-name order of RFC 8785 §3.2.3: by UTF-16 code units, not by code points. The two
/// differ only when a supplementary-plane character meets one in U+E000..U+FFFF.
pub fn cmp_utf16(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.as_bytes().cmp(b.as_bytes());
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Appends a JSON string literal per RFC 8785 §3.2.2.2 (identical to ECMAScript
/// `JSON.stringify` for well-formed strings).
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends a number in ECMAScript `Number.prototype.toString` form (RFC 8785 §3.2.2.3).
/// `-0` serializes as `0`. Non-finite numbers cannot come out of [`parse`].
pub fn write_number(n: f64, out: &mut Vec<u8>) {
    if n == 0.0 {
        out.push(b'0');
        return;
    }
    let mut buf = ryu_js::Buffer::new();
    out.extend_from_slice(buf.format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_texts_no_double_holds_are_refused_and_nothing_else() {
        // Read exactly (Python, Go's json.Number, BigInt) these are other values than the
        // doubles a hash covers: refused, naming where.
        for (text, path) in [
            (r#"{"seq":9007199254740993}"#, "seq"),
            (r#"{"a":{"b":[1,-9007199254740993]}}"#, "a.b[1]"),
            (r#"{"x":18446744073709551617}"#, "x"),
            (r#"{"x":295147905179352830000}"#, "x"),
            ("[1,\n 12345678901234567891]", "[1]"),
        ] {
            let e = parse(text.as_bytes())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                e.contains("no double holds exactly") && e.contains(&format!("(`{path}`)")),
                "{text}: {e}"
            );
        }
        assert!(parse(b"[1,\n 12345678901234567891]").is_err_and(|e| (e.line, e.column) == (2, 2)));
        // Every reader agrees on these: exponents, fractions, and integers a double holds.
        for text in [
            r#"{"n":9007199254740991}"#,
            r#"{"n":9007199254740992}"#,
            r#"{"n":-9007199254740992}"#,
            r#"{"n":1e+21}"#,
            r#"{"n":1e21}"#,
            r#"{"n":1e20}"#,
            r#"{"n":100000000000000000000}"#,
            r#"{"n":9007199254740993.0}"#,
            r#"{"n":1e16}"#,
            r#"{"s":"12345678901234567891","n":0.1}"#,
            r#"[0.1,1e15,-0]"#,
        ] {
            let v = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(first_inexact_number(&v), None, "{text}");
        }
        // What is produced: a double whose RFC 8785 text is such an integer has no agreed text.
        let two_68 = Value::Array(vec![Value::Number(1.0), Value::Number(2f64.powi(68))]);
        assert_eq!(
            first_inexact_number(&two_68).map(|f| f.0),
            Some("[1]".to_owned())
        );
        // 2^64 as its exact text is read alike by all; as a produced number its RFC 8785 text
        // (18446744073709552000) is not
        assert!(parse(b"18446744073709551616").is_ok());
        assert!(first_inexact_number(&Value::Number(2f64.powi(64))).is_some());
        assert!(integer_text_is_exact("295147905179352825856"));
        assert!(!integer_text_is_exact("295147905179352830000"));
    }

    #[test]
    fn pretty_keeps_member_order_and_parses_back() {
        let src = br#"{"z":1,"a":[true,null,{"k":"v\u2028"}],"e":{},"f":[]}"#;
        let v = parse(src).unwrap();
        let p = to_pretty(&v);
        assert!(
            p.starts_with("{\n  \"z\": 1,\n  \"a\": [\n    true,"),
            "{p}"
        );
        assert!(p.contains("\"e\": {}") && p.contains("\"f\": []"), "{p}");
        assert_eq!(parse(p.as_bytes()).unwrap(), v);
    }
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rfc8785")
    }

    #[test]
    fn rfc8785_reference_vectors() {
        let mut n = 0;
        for name in [
            "arrays",
            "french",
            "structures",
            "unicode",
            "values",
            "weird",
        ] {
            let input =
                std::fs::read(fixtures().join("input").join(format!("{name}.json"))).unwrap();
            let want =
                std::fs::read(fixtures().join("output").join(format!("{name}.json"))).unwrap();
            let got = canonicalize(&parse(&input).unwrap());
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "vector {name}"
            );
            n += 1;
        }
        assert_eq!(n, 6);
    }

    #[test]
    fn rfc8785_number_samples() {
        let table = std::fs::read_to_string(fixtures().join("numbers.txt")).unwrap();
        let mut rows = 0;
        for line in table.lines().filter(|l| !l.trim().is_empty()) {
            let (bits, want) = line.split_once(' ').unwrap();
            let f = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
            let mut out = Vec::new();
            write_number(f, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want, "bits {bits}");
            // Reading the text back: an integer no double holds is refused, the rest is `f`.
            let exact = !integer_form(want) || integer_text_is_exact(want);
            match parse(want.as_bytes()) {
                Ok(Value::Number(back)) => {
                    assert!(exact, "{want} was read though no double holds it");
                    assert!(back == f, "{want} read as {back}");
                }
                Ok(other) => panic!("{want}: {other:?}"),
                Err(e) => assert!(!exact, "{want}: {e}"),
            }
            rows += 1;
        }
        assert!(rows >= 20, "numbers.txt too short: {rows}");
    }

    #[test]
    fn duplicate_members_are_rejected() {
        let err = parse(br#"{"decision":"deny","decision":"allow"}"#).unwrap_err();
        assert!(
            err.to_string().contains("duplicate member name `decision`"),
            "{err}"
        );
        // also past the linear-scan threshold
        let mut s = String::from("{");
        for i in 0..40 {
            s.push_str(&format!("\"k{i}\":1,"));
        }
        s.push_str("\"k3\":2}");
        assert!(parse(s.as_bytes()).is_err());
    }

    #[test]
    fn hostile_inputs_are_errors_not_panics() {
        let deep = "[".repeat(100_000);
        assert!(parse(deep.as_bytes()).is_err());
        assert!(parse(b"\xff\xfe").is_err());
        assert!(parse(b"{\"a\":\"\xc3\x28\"}").is_err());
        assert!(parse(br#""\ud800""#).is_err(), "lone surrogate");
        assert!(parse(b"1e999").is_err());
        assert!(parse(b"{} {}").is_err(), "trailing data");
        assert!(parse(b"").is_err());
    }

    #[test]
    fn utf16_order_differs_from_code_point_order() {
        // U+1F602 (surrogates D83D..) sorts before U+FB33 in UTF-16, after it in code points.
        assert_eq!(cmp_utf16("\u{1F602}", "\u{FB33}"), std::cmp::Ordering::Less);
        assert_eq!(cmp_utf16("b", "a"), std::cmp::Ordering::Greater);
    }

    proptest::proptest! {
        #[test]
        fn canonical_form_is_a_fixed_point(s in "\\PC{0,40}", n in proptest::num::f64::NORMAL, k in "[a-z\u{e000}-\u{e010}\u{1f600}-\u{1f610}]{1,4}") {
            let mut m = Map::new();
            m.push(k.clone(), Value::String(s.clone()));
            if k != "n" { m.push("n".into(), Value::Number(n)); }
            let v = Value::Object(m);
            let once = canonicalize(&v);
            // A double whose canonical text is an integer no double holds is exactly what the
            // reader refuses; everything else reads back to the same bytes.
            let read = parse(&once);
            proptest::prop_assert_eq!(read.is_ok(), first_inexact_number(&v).is_none());
            if let Ok(reparsed) = read {
                proptest::prop_assert_eq!(&reparsed.as_object().unwrap().get(&k), &Some(&Value::String(s)));
                proptest::prop_assert_eq!(canonicalize(&reparsed), once);
            }
        }
    }
}
