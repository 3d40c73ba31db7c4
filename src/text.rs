//! Small text helpers shared by every layer: one-line messages, shortening, shell
//! quoting and SHA-256 digests.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// Collapses line breaks and control characters so a message fits one line or cell.
pub(crate) fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text from elsewhere made safe to print on a terminal: control characters (escape
/// sequences, line breaks) are shown escaped, so they can neither move the cursor nor
/// forge a line.
pub(crate) fn printable(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            shown.extend(c.escape_debug());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// Text from elsewhere made safe to write in a file: control characters other than tab
/// and line feed, and the bidirectional overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069), which can make a cell read backwards, are written escaped as `\u{1b}`.
/// Every writer of a report, an export, an undo file or evidence passes its text here.
pub(crate) fn file_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let hostile = |c: char| {
        (c.is_control() && c != '\t' && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.contains(hostile) {
        return text.into();
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hostile(c) {
            safe.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            safe.push(c);
        }
    }
    safe.into()
}

/// The most characters of a field the server echoes (username, email) written to a
/// report or evidence: a server answering a 4 MiB name for every row must not make a
/// report of gigabytes.
pub(crate) const ECHOED_CHARS: usize = 1024;

/// `text` in at most `limit` characters, the cut shown: what is kept ends in
/// `… [cut: N characters]`, N the characters left out. `None` when it fits.
pub(crate) fn cut_visibly(text: &str, limit: usize) -> Option<String> {
    let total = text.chars().count();
    if total <= limit {
        return None;
    }
    // The mark's own length depends on N; the widest N is `total`.
    let mark_room = format!("… [cut: {total} characters]").chars().count();
    let kept = limit.saturating_sub(mark_room);
    let head: String = text.chars().take(kept).collect();
    Some(format!("{head}… [cut: {} characters]", total - kept))
}

/// A field the server echoed, as written to a file: escaped, and cut to
/// [`ECHOED_CHARS`] with the cut shown.
pub(crate) fn echoed(text: &str) -> String {
    let safe = file_safe(text);
    cut_visibly(&safe, ECHOED_CHARS).unwrap_or_else(|| safe.into_owned())
}

/// The singular or the plural, as `count` needs: "1 row", "2 rows".
pub(crate) fn plural(count: u64, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 {
        one
    } else {
        many
    }
}

/// At most `limit` characters, with `…` when cut.
pub(crate) fn shorten(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// The characters after which our CSV writers put a `'` at the start of a cell: those
/// a spreadsheet would run as a formula, and the `'` itself, so that the reader can undo
/// exactly what the writers did.
pub(crate) const PREFIXED_STARTS: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// Undoes the spreadsheet-safety prefix our CSVs put before a cell a spreadsheet would
/// run as a formula (`'=x` is `=x`), or that begins with `'` (`''x` is `'x`): one `'`
/// followed by one of [`PREFIXED_STARTS`]. Any other cell is returned as it is.
pub(crate) fn unprefixed(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(PREFIXED_STARTS) => rest,
        _ => cell,
    }
}

/// A CSV text cell as the input reads it: trimmed, without the one `'` our writers add.
/// What that `'` protected is kept as it is (`'\tx` is a tab and `x`).
pub(crate) fn csv_text(cell: &str) -> &str {
    let trimmed = cell.trim();
    let rest = unprefixed(trimmed);
    if rest.len() == trimmed.len() {
        trimmed
    } else {
        rest.trim_end()
    }
}

/// Quotes an argument for the shell its user types the resume command into, when it needs
/// it: a POSIX shell, or PowerShell on Windows (where a backslash is plain, `,` and `@` are
/// not, and a quote inside quotes is doubled).
pub(crate) fn shell_quote(arg: &str) -> String {
    #[cfg(not(windows))]
    let (plain_bytes, inner_quote) = (&b"-_./=:,@%+"[..], r"'\''");
    #[cfg(windows)]
    let (plain_bytes, inner_quote) = (&b"-_./=:\\"[..], "''");
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || plain_bytes.contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', inner_quote))
    }
}

/// Hex of a finished SHA-256.
pub(crate) fn hex(hasher: Sha256) -> String {
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA-256 of everything a reader yields, hex.
pub(crate) fn sha256_reader(reader: &mut impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex(hasher))
}

/// SHA-256 of a file, hex; `None` when it cannot be read.
pub(crate) fn sha256_file(path: &std::path::Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    sha256_reader(&mut file).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(not(windows))]
    fn shell_quoting_handles_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a/b.csv"), "a/b.csv");
        assert_eq!(
            shell_quote(r"--report=C:\runs\r.csv"),
            r"'--report=C:\runs\r.csv'"
        );
    }

    #[test]
    #[cfg(windows)]
    fn powershell_quoting_keeps_drive_letters_and_backslashes_plain() {
        assert_eq!(
            shell_quote(r"--report=C:\runs\r.csv"),
            r"--report=C:\runs\r.csv"
        );
        assert_eq!(shell_quote("it's"), "'it''s'");
        assert_eq!(shell_quote("a,b.csv"), "'a,b.csv'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn sha256_of_known_bytes() {
        assert_eq!(
            sha256_reader(&mut &b"abc"[..]).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn safety_prefixes_are_undone_and_nothing_else() {
        assert_eq!(unprefixed("'=SUM(A1)"), "=SUM(A1)");
        assert_eq!(unprefixed("'-- legacy"), "-- legacy");
        assert_eq!(unprefixed("'quoted'"), "'quoted'");
        assert_eq!(unprefixed("''quoted'"), "'quoted'");
        assert_eq!(unprefixed("'''x"), "''x", "exactly one is removed");
        assert_eq!(csv_text(" '\tx "), "\tx");
        assert_eq!(csv_text(" x "), "x");
        assert_eq!(unprefixed("plain"), "plain");
        assert_eq!(unprefixed("'"), "'");
    }

    #[test]
    fn hostile_characters_are_escaped_for_files() {
        assert_eq!(file_safe("a\u{1b}[2Jb\tc\nd"), "a\\u{1b}[2Jb\tc\nd");
        assert_eq!(
            file_safe("x\u{202e}y\u{2066}\r"),
            "x\\u{202e}y\\u{2066}\\u{d}"
        );
        assert!(matches!(
            file_safe("plain é"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn long_text_is_cut_visibly_within_the_limit() {
        assert_eq!(cut_visibly("short", 10), None);
        let long = "x".repeat(40_000);
        let cut = cut_visibly(&long, 32_767).unwrap();
        assert!(cut.chars().count() <= 32_767);
        assert!(
            cut.ends_with("… [cut: 7258 characters]"),
            "{}",
            &cut[32_700..]
        );
        assert!(echoed(&"y".repeat(4 << 20)).chars().count() <= ECHOED_CHARS);
    }

    #[test]
    fn shortening_and_one_line() {
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(one_line("a\nb\r\n\tc"), "a b c");
        assert_eq!(printable("a\u{1b}[2J\nb é"), "a\\u{1b}[2J\\nb é");
    }
}
