//! Text that came from outside — a registry's error body, a token endpoint's answer, a scanner's
//! quarantine details, an image string from an AdmissionReview, a name from a manifest or a
//! certificate — made safe to show on one line of a terminal, a CI log, a webhook denial or an
//! XML report.
//!
//! [`escape`] rewrites, in the style of Rust's `char::escape_debug`, only the characters that can
//! forge or hide output: C0 controls (ESC, CR, LF, TAB, NUL, …) and DEL, the C1 controls
//! U+0080–U+009F (8-bit CSI and NEL), the line and paragraph separators, the Unicode
//! bidirectional controls (the "Trojan source" class: U+061C, U+200E/F, U+202A–U+202E,
//! U+2066–U+2069), invisible format characters (zero-width space, word joiner and the invisible
//! operators, the byte-order mark, interlinear annotations, tag characters) and the
//! noncharacters U+FFFE/U+FFFF that XML forbids. Everything else — accents, CJK, emoji, the
//! zero-width joiners that scripts and emoji need — stays as it is, so ordinary non-ASCII text
//! remains readable. `\n`, `\r`, `\t` and `\0` are written as such; the rest as `\u{…}`.
//!
//! Backslashes are not doubled: escaped text is for people, never parsed back, and this makes
//! escaping idempotent, so text escaped where it entered (a registry error) can be escaped
//! again where it is shown (a report) without turning `\u{1b}` into `\\u{1b}`.
//!
//! Where vouch applies it: at the cause, where outside text enters an error or a message
//! ([`crate::registry`] error bodies, token and ACR answers, quarantine states and details), on
//! every message of a [`crate::verdict::Verdict`] ([`crate::verdict::Verdict::escape_messages`]), and
//! again at the edges (the text and audit reports, webhook denials and warnings, text logs).
//! JSON documents keep *data* fields (`image`, `reference`, `digest`, `policy`, `signer`) as
//! they were given — serde writes any control character as `\u00XX` — while their *message*
//! fields (`reasons`, `warnings`, signature `error`s, `quarantine` state, details and reason)
//! hold the escaped text.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Whether `c` is written escaped (see the module documentation for the classes).
pub fn is_unsafe(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{fffe}'
            | '\u{ffff}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

fn write_char(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        '\0' => out.write_str("\\0"),
        c if is_unsafe(c) => write!(out, "\\u{{{:x}}}", c as u32),
        c => out.write_char(c),
    }
}

/// `s` with every unsafe character escaped; borrowed when there is none (the common case).
pub fn escape(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find(is_unsafe) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        // Writing into a String cannot fail.
        let _ = write_char(&mut out, c);
    }
    Cow::Owned(out)
}

/// Escape `s` where it is, allocating only when something needs escaping.
pub fn escape_in_place(s: &mut String) {
    if let Cow::Owned(escaped) = escape(s) {
        *s = escaped;
    }
}

/// Shows a string escaped, without allocating: `format!("{}", Escaped(name))`.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        EscapingWriter(f).write_str(self.0)
    }
}

/// A `fmt::Write` that escapes everything written through it.
pub struct EscapingWriter<W>(pub W);

impl<W: fmt::Write> fmt::Write for EscapingWriter<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find(is_unsafe) {
            self.0.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().unwrap_or_default();
            write_char(&mut self.0, c)?;
            rest = &rest[i + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// At most `max` bytes of a body from outside as one escaped line: invalid UTF-8 replaced,
/// surrounding white space trimmed, `…` where it was cut.
pub fn excerpt(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let cut = if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Some(end)
    } else {
        None
    };
    let mut out = escape(&text[..cut.unwrap_or(text.len())]).into_owned();
    if cut.is_some() {
        out.push('…');
    }
    out
}

/// A `tracing-subscriber` field formatter for the text log format that escapes every field
/// value (the fmt layer writes `%display` fields raw and escapes only ESC and C1 in messages).
pub fn log_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let mut out = EscapingWriter(w);
        if field.name() == "message" {
            write!(out, "{value:?}")
        } else {
            write!(out, "{field}={value:?}")
        }
    })
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_bidi_and_invisible_characters_are_escaped() {
        assert_eq!(
            escape("\u{1b}[2K\rVERIFIED x\nnext\tcol\0"),
            "\\u{1b}[2K\\rVERIFIED x\\nnext\\tcol\\0"
        );
        assert_eq!(escape("a\u{7f}b\u{9b}c\u{85}"), "a\\u{7f}b\\u{9b}c\\u{85}");
        assert_eq!(
            escape("allow\u{202e}ynned\u{2066}x\u{2069}\u{200f}"),
            "allow\\u{202e}ynned\\u{2066}x\\u{2069}\\u{200f}"
        );
        assert_eq!(
            escape("\u{feff}\u{200b}\u{2028}\u{e0041}"),
            "\\u{feff}\\u{200b}\\u{2028}\\u{e0041}"
        );
    }

    #[test]
    fn ordinary_text_is_kept_and_borrowed() {
        for s in [
            "registry.example/app:v1",
            "CN=Zoë Ünal,O=株式会社,C=JP",
            "👩‍💻 ok",
            "back\\slash \\u{1b}",
        ] {
            assert!(matches!(escape(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn escaping_twice_is_escaping_once() {
        let s = "x\u{1b}]0;title\u{7}\r\n\u{202e}y";
        let once = escape(s).into_owned();
        assert_eq!(escape(&once), once);
        assert!(!once.chars().any(is_unsafe));
        assert_eq!(Escaped(s).to_string(), once);
        let mut owned = s.to_string();
        escape_in_place(&mut owned);
        assert_eq!(owned, once);
    }

    #[test]
    fn excerpts_are_bounded_escaped_lines() {
        assert_eq!(excerpt(b"  oops\r\n", 100), "oops");
        assert_eq!(excerpt(b"ab\x1bcd", 100), "ab\\u{1b}cd");
        assert_eq!(excerpt("ééé".as_bytes(), 3), "é…");
        assert_eq!(excerpt(b"\xff\xfe", 100), "\u{fffd}\u{fffd}");
    }
}
