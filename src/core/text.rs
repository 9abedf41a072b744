//! Text that enters the ledger or leaves for a terminal: bounded, with a
//! safe character set for names, and escaped when shown, so no stored value
//! can rewrite a reader's screen or pose as someone else.

use std::borrow::Cow;
use std::fmt::Write;

/// Characters that change how text is laid out without being visible:
/// bidirectional overrides and isolates, zero-width characters, the BOM.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}' | '\u{00AD}')
}

/// Whether `c` may not appear in one-line text: control or invisible.
fn is_unsafe(c: char) -> bool {
    c.is_control() || is_invisible(c)
}

/// One-line text (titles, criteria): not blank, bounded, no control or invisible characters.
pub fn check_line(what: &str, text: &str, max: usize) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("{what} is empty"));
    }
    if text.len() > max {
        return Err(format!("{what} is {} bytes, the limit is {max}", text.len()));
    }
    if text.chars().any(is_unsafe) {
        return Err(format!("{what} contains a newline, control or invisible character"));
    }
    Ok(())
}

/// Multi-line text (briefs, reasons, summaries): bounded; newlines and tabs only.
pub fn check_multiline(what: &str, text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        return Err(format!("{what} is {} bytes, the limit is {max}", text.len()));
    }
    if text.chars().any(|c| c != '\n' && c != '\t' && is_unsafe(c)) {
        return Err(format!("{what} contains control or invisible characters"));
    }
    Ok(())
}

/// The longest actor name.
pub const MAX_ACTOR: usize = 64;

/// Who did something: ASCII letters and digits, `.`, `_`, `@`, `+`, `-` and
/// inner spaces, at most 64 bytes. A name that looks like another cannot be
/// made of lookalike letters or hidden characters.
pub fn check_actor(what: &str, name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-' | ' ');
    if name.is_empty() || name.len() > MAX_ACTOR || name.trim() != name || !name.chars().all(ok_char) {
        return Err(format!(
            "{what} {} is not a valid name: use 1 to {MAX_ACTOR} ASCII letters, digits, spaces and . _ @ + - \
             (set yours with `git config mso.user NAME`)",
            crate::core::ids::shown(name)
        ));
    }
    Ok(())
}

/// A machine-made token (runner id, host, model tier): ASCII letters,
/// digits and `. _ : @ -`, 1 to `max` bytes.
pub fn check_token(what: &str, token: &str, max: usize) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-');
    if token.is_empty() || token.len() > max || !token.chars().all(ok_char) {
        return Err(format!(
            "{what} {} is not valid: use 1 to {max} ASCII letters, digits and . _ : @ -",
            crate::core::ids::shown(token)
        ));
    }
    Ok(())
}

/// Text as it may be printed on a terminal: control characters (except
/// newline and tab when `multiline`), escape sequences, bidirectional
/// overrides and zero-width characters are shown escaped (`\u{202e}`).
pub fn display(text: &str, multiline: bool) -> Cow<'_, str> {
    let keep = |c: char| !is_unsafe(c) || (multiline && (c == '\n' || c == '\t'));
    if text.chars().all(keep) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if keep(c) {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// `display` for one line.
pub fn line(text: &str) -> Cow<'_, str> {
    display(text, false)
}

/// Cut `text` to at most `max` bytes on a character boundary, marking the cut.
/// One line of at most `max` bytes, ending in `…` when cut.
pub fn clip_line(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

pub fn clip(mut text: String, max: usize) -> String {
    const MARK: &str = "\n[truncated]";
    if text.len() <= max {
        return text;
    }
    let mut cut = max.saturating_sub(MARK.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push_str(MARK);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_are_plain_names() {
        for good in ["alice", "Alice Smith", "ci-bot@example.com", "r2.d2_x+y"] {
            check_actor("actor", good).unwrap();
        }
        for bad in ["", " alice", "alice ", "al\u{202e}ice", "аlice", "a\nb", "a/b", &"x".repeat(65)] {
            assert!(check_actor("actor", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_escapes_what_could_rewrite_a_terminal() {
        assert_eq!(line("plain"), "plain");
        assert_eq!(line("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(line("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(line("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(display("two\nlines\ttab", true), "two\nlines\ttab");
        assert_eq!(line("two\nlines"), "two\\u{a}lines");
    }

    #[test]
    fn clip_keeps_utf8_whole() {
        let clipped = clip("é".repeat(100), 51);
        assert!(clipped.len() <= 51 && clipped.ends_with("[truncated]"), "{clipped}");
    }
}
