//! Text from evidence, made safe to show a person on a terminal.
//!
//! Chain ids, key ids, algorithms, actors, reasons and file names come from the records being
//! judged, so a record chooses them. Printed raw, an escape sequence (`ESC [2K`, erase the
//! line), a carriage return, a backspace or a bidi override (U+202E) can erase, overwrite or
//! reorder the very FAIL lines a person reads, and a zero-width character can make two different
//! key ids look the same. Every place that shows such text to a person goes through this module;
//! machine output (`--format json`) does not, since JSON keeps every value exact and its writer
//! already escapes what JSON must.
//!
//! # Which characters
//!
//! [`needs_escape`] is the one rule, by Unicode general category (Unicode 15.1):
//!
//! - **Cc, control characters**: C0 (U+0000..U+001F), DEL (U+007F) and C1 (U+0080..U+009F,
//!   U+009B being a one-character `ESC [` to some terminals). Tab and line feed included: a value
//!   stays on its own line of a report, so it cannot start a line that looks like a verdict.
//! - **Cf, format characters**: the bidi marks, embeddings, overrides and isolates (U+061C,
//!   U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), the zero-width characters (U+200B..U+200D,
//!   U+2060, U+FEFF), and the rest of the category (soft hyphen, invisible operators, the tag
//!   characters U+E0001 and U+E0020..U+E007F that can smuggle a whole hidden text, ...). They
//!   are invisible or rearrange what surrounds them; none belongs in an id.
//! - **Zl, Zp**: U+2028 and U+2029, line breaks to some terminals and viewers.
//!
//! Everything else is shown as it is, wide and combining characters included: this module
//! keeps a terminal from acting on text or hiding it, it does not judge look-alike letters.
//!
//! # Notation
//!
//! An escaped character is written `\u{` + its code point in lowercase hex + `}`: ESC is
//! `\u{1b}`, RLO is `\u{202e}`, a tab `\u{9}` (Rust's and JavaScript's spelling, ASCII only,
//! so every font and terminal shows it). One spelling for every character, so a reader learns
//! one form.
//!
//! A backslash is shown as it is (Windows paths and JSON text stay readable), except where it
//! starts the three characters `\u{`: then it is written `\u{5c}`. So a value cannot pass off
//! plain text as an escape (key id `k\u{202e}`, typed out, is shown `k\u{5c}u{202e}`, not as
//! the key id `k` + RLO), and the shown text decodes to exactly one value: every `\u{…}` is an
//! escape, every other character is itself.
//!
//! [`escape`] gives the shown text. [`pieces`] gives the same text in pieces, for a renderer
//! that styles the escapes apart (the terminal browser).
//!
//! ```
//! use zt_core::text::escape;
//!
//! assert_eq!(escape("cp-east"), "cp-east");
//! assert_eq!(escape("k\u{1b}[2K\r\u{202e}"), r"k\u{1b}[2K\u{d}\u{202e}");
//! assert_eq!(escape(r"C:\logs\a.jsonl"), r"C:\logs\a.jsonl");
//! assert_eq!(escape(r"k\u{202e}"), r"k\u{5c}u{202e}");
//! ```

use std::borrow::Cow;
use std::fmt;

/// Whether `c` is shown as an escape: true for the characters a terminal acts on (controls)
/// and those that are invisible or reorder their neighbours (format characters, line and
/// paragraph separators). See the module documentation for the list.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_format_or_separator(c)
}

/// General categories Cf, Zl and Zp, as of Unicode 15.1 (a format character a later version
/// adds is shown as it is until this table learns it; `char::is_control` covers Cc for good).
fn is_format_or_separator(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061c}'
            | '\u{06dd}'
            | '\u{070f}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

/// One piece of a value as a terminal shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text shown as it is.
    Plain(&'a str),
    /// A character shown as its escape (`Display` writes `\u{…}`).
    Escaped(char),
}

impl fmt::Display for Piece<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Piece::Plain(s) => f.write_str(s),
            Piece::Escaped(c) => write!(f, "\\u{{{:x}}}", u32::from(*c)),
        }
    }
}

/// The pieces of `s`, in order: runs of text shown as it is, and single characters shown as
/// escapes. Writing them one after the other gives [`escape`]`(s)`.
pub fn pieces(s: &str) -> Pieces<'_> {
    Pieces { rest: s }
}

/// The iterator of [`pieces`].
#[derive(Debug, Clone)]
pub struct Pieces<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = Piece<'a>;

    fn next(&mut self) -> Option<Piece<'a>> {
        let (at, c) = match first_escaped(self.rest) {
            Some(found) => found,
            None if self.rest.is_empty() => return None,
            None => return Some(Piece::Plain(std::mem::take(&mut self.rest))),
        };
        if at > 0 {
            let (plain, rest) = self.rest.split_at(at);
            self.rest = rest;
            return Some(Piece::Plain(plain));
        }
        self.rest = &self.rest[c.len_utf8()..];
        Some(Piece::Escaped(c))
    }
}

/// The byte offset and character of the first character of `s` shown as an escape.
fn first_escaped(s: &str) -> Option<(usize, char)> {
    s.char_indices()
        .find(|&(i, c)| needs_escape(c) || (c == '\\' && s[i + 1..].starts_with("u{")))
}

/// `s` as a terminal may show it: every character [`needs_escape`] picks, and a backslash
/// that starts `\u{`, written `\u{…}`; everything else as it is. Borrowed when nothing needed
/// escaping, so clean text costs a scan and no copy.
pub fn escape(s: &str) -> Cow<'_, str> {
    let Some((at, _)) = first_escaped(s) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..at]);
    for piece in pieces(&s[at..]) {
        // Writing to a String cannot fail.
        let _ = fmt::Write::write_fmt(&mut out, format_args!("{piece}"));
    }
    Cow::Owned(out)
}

/// An error and its sources, one sentence: `outer: cause: root cause` (what a person needs
/// from a transport error whose `Display` alone says "error sending request"). Not escaped:
/// callers that show it on a terminal pass it through [`escape`].
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "tests: a failed unwrap is a failed test"
    )]

    use super::*;
    use proptest::prelude::*;

    /// The reader's side of the notation: every `\u{…}` is one character, everything else is
    /// itself. `None` for text [`escape`] cannot have written.
    fn unescape(shown: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = shown;
        while let Some(at) = rest.find("\\u{") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 3..];
            let end = after.find('}')?;
            let c = char::from_u32(u32::from_str_radix(&after[..end], 16).ok()?)?;
            out.push(c);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }

    #[test]
    fn clean_text_is_borrowed_unchanged() {
        for s in [
            "",
            "cp-east",
            "agent-hello asks for aws.ec2.terminate_instances on i-0demo",
            r"C:\logs\audit.jsonl",
            r#"{"reason":"a \"quoted\" word\\n"}"#,
            "Grüße, 日本語, عربي, emoji 🦀",
            "\\u",
            "\\u}",
            "ends with a backslash \\",
        ] {
            assert!(matches!(escape(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
    }

    #[test]
    fn the_listed_characters_are_escaped() {
        assert_eq!(escape("\u{1b}[2K\r"), r"\u{1b}[2K\u{d}");
        assert_eq!(escape("a\tb\nc"), r"a\u{9}b\u{a}c");
        assert_eq!(
            escape("\0\u{8}\u{7f}\u{85}\u{9b}"),
            r"\u{0}\u{8}\u{7f}\u{85}\u{9b}"
        );
        for c in [
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{202e}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{200e}',
            '\u{200f}',
            '\u{061c}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{2060}',
            '\u{feff}',
            '\u{2028}',
            '\u{2029}',
            '\u{ad}',
            '\u{e0041}',
        ] {
            assert!(needs_escape(c), "U+{:04X}", u32::from(c));
            assert_eq!(
                escape(&format!("x{c}y")),
                format!("x\\u{{{:x}}}y", u32::from(c))
            );
        }
        assert!(!needs_escape(' ') && !needs_escape('é') && !needs_escape('\u{3000}'));
    }

    #[test]
    fn a_backslash_is_escaped_only_where_it_would_read_as_an_escape() {
        assert_eq!(escape(r"k\u{202e}"), r"k\u{5c}u{202e}");
        assert_eq!(escape(r"\\u{"), r"\\u{5c}u{");
        assert_eq!(escape("\\\u{1b}"), r"\\u{1b}");
        assert_eq!(unescape(r"\\u{1b}").unwrap(), "\\\u{1b}");
        assert_eq!(escape(r"\u"), r"\u");
    }

    #[test]
    fn pieces_split_plain_runs_from_escapes() {
        let got: Vec<Piece<'_>> = pieces("ab\u{202e}\u{1b}c\\u{").collect();
        assert_eq!(
            got,
            [
                Piece::Plain("ab"),
                Piece::Escaped('\u{202e}'),
                Piece::Escaped('\u{1b}'),
                Piece::Plain("c"),
                Piece::Escaped('\\'),
                Piece::Plain("u{"),
            ]
        );
        assert_eq!(pieces("").count(), 0);
    }

    /// Characters that matter here, mixed into arbitrary text often enough to meet each other.
    fn tricky_char() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => any::<char>(),
            2 => prop::sample::select(vec![
                '\u{1b}', '\r', '\n', '\t', '\u{8}', '\u{7f}', '\u{9b}', '\u{202e}', '\u{2066}',
                '\u{200b}', '\u{200d}', '\u{feff}', '\u{2028}', '\u{e0041}',
            ]),
            3 => prop::sample::select(vec!['\\', 'u', '{', '}', '1', 'b', 'a']),
        ]
    }

    fn tricky_text() -> impl Strategy<Value = String> {
        prop::collection::vec(tricky_char(), 0..48).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn output_never_holds_a_character_a_terminal_acts_on(s in tricky_text()) {
            let shown = escape(&s);
            prop_assert!(!shown.chars().any(needs_escape), "{:?} -> {:?}", s, shown);
        }

        #[test]
        fn output_decodes_to_the_input(s in tricky_text()) {
            prop_assert_eq!(unescape(&escape(&s)), Some(s));
        }

        #[test]
        fn pieces_write_the_escape(s in tricky_text()) {
            let joined: String = pieces(&s).map(|p| p.to_string()).collect();
            prop_assert_eq!(joined, escape(&s).into_owned());
        }

        #[test]
        fn printable_text_is_shown_as_it_is(
            v in prop::collection::vec(
                tricky_char().prop_filter("printable", |c| !needs_escape(*c)),
                0..48,
            )
        ) {
            let s: String = v.into_iter().collect();
            let shown = escape(&s);
            if s.contains("\\u{") {
                prop_assert_ne!(shown.as_ref(), s.as_str());
            } else {
                prop_assert!(matches!(shown, Cow::Borrowed(b) if b == s));
            }
        }
    }
}
