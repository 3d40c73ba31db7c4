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

/// Undoes the spreadsheet-safety prefix our CSVs put before a cell a spreadsheet would
/// run as a formula (`'=x` is `=x`), or that begins with `'` (`''x` is `'x`): one `'`
/// followed by `=`, `+`, `-`, `@`, tab, CR or `'`. Any other cell is returned as it is.
pub(crate) fn unprefixed(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) => rest,
        _ => cell,
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
        assert_eq!(unprefixed("plain"), "plain");
        assert_eq!(unprefixed("'"), "'");
    }

    #[test]
    fn shortening_and_one_line() {
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(one_line("a\nb\r\n\tc"), "a b c");
        assert_eq!(printable("a\u{1b}[2J\nb é"), "a\\u{1b}[2J\\nb é");
    }
}
