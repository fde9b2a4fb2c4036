//! What a terminal must never be shown raw. Listed here rather than taken from
//! `zt_core::text`, so the tests do not trust the code they test.

/// Erase the line, return to its start, then reverse what follows (ESC [2K, CR, RLO): what a
/// hostile record puts in its text.
pub const HOSTILE: &str = "\u{1b}[2K\r\u{202e}";

/// The characters a terminal acts on or hides rather than shows: controls, bidi controls and
/// isolates, zero-width characters, the BOM.
pub fn acts_or_hides(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// The characters of `text` a terminal acts on or hides, as `U+XXXX`; line breaks are allowed
/// when `lines` (a report's own).
pub fn raw_chars(text: &str, lines: bool) -> Vec<String> {
    text.chars()
        .filter(|&c| acts_or_hides(c) && !(lines && c == '\n'))
        .map(|c| format!("U+{:04X}", u32::from(c)))
        .collect()
}
