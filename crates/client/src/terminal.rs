//! Text the host chose (its error messages, anything it lists) or a
//! submitter wrote (a file's name in its label), made safe to print on a
//! lawyer's terminal. Owns only the escaping; what is printed, and where,
//! is the CLI's.

use std::fmt::Write as _;

/// `text` with every control character (C0, DEL, C1) and every invisible
/// formatting character (Unicode's format category: bidirectional
/// overrides and isolates, zero-width marks, the byte order mark, tags,
/// ...) and the line and paragraph separators written as `\u{...}`. Such
/// characters could move the cursor, recolour or rewrite what a terminal
/// shows, or reorder a line so that it reads as something else.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_format(c) || matches!(c, '\u{2028}' | '\u{2029}') {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `c` is in Unicode's format category (Cf), as of Unicode 15.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_invisible_formatting_are_escaped() {
        assert_eq!(escaped("photo.jpg"), "photo.jpg");
        assert_eq!(escaped("café Ünïcode"), "café Ünïcode");
        assert_eq!(escaped("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escaped("line\nnext\r"), "line\\u{a}next\\u{d}");
        assert_eq!(escaped("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escaped("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(escaped("a\u{200b}b\u{2066}c\u{feff}"), "a\\u{200b}b\\u{2066}c\\u{feff}");
        assert_eq!(escaped("tag\u{e0041}"), "tag\\u{e0041}");
        assert_eq!(escaped("x\u{2028}y"), "x\\u{2028}y");
    }
}
