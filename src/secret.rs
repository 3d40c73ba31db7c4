//! The API key, held in a type that never prints itself.

use std::fmt;
use std::path::Path;

use thiserror::Error;

/// The first line of a token file is read up to this many bytes.
const MAX_LINE_BYTES: u64 = 64 * 1024;

/// The fewest characters of an API key sent off loopback. Drata's keys are far longer; a
/// shorter one is a mistake, and redacting it could mangle ordinary words in messages.
/// Loopback servers (the simulator, tests) may use any key: see [`ApiKey::check_length`].
pub(crate) const MIN_KEY_CHARS: usize = 16;

/// A Drata API key. `Debug` and `Display` redact it; the only way to read it is
/// [`ApiKey::bearer_header`], which marks the header value as sensitive.
#[derive(Clone)]
pub(crate) struct ApiKey(String);

#[derive(Debug, Clone, Error)]
pub enum KeyError {
    #[error("no API key: set DRATA_API_KEY or pass --token-file PATH")]
    Missing,
    #[error("cannot read the token file {path}: {source}")]
    Unreadable {
        path: String,
        source: std::sync::Arc<std::io::Error>,
    },
    #[error("the token file {0} is empty")]
    EmptyFile(String),
    #[error("the first line of the token file {0} is empty: the key must be on the first line")]
    BlankFirstLine(String),
    #[error("the first line of the token file {0} is longer than 64 KiB: that is not an API key")]
    TooLong(String),
    #[error("the API key starts with \"Bearer \": give the key alone, the tool adds the prefix")]
    BearerPrefix,
    #[error("is set but empty")]
    SetButEmpty,
    #[error("the API key contains characters that cannot be sent in an HTTP header (spaces, line breaks or non-ASCII)")]
    NotAHeaderValue,
    #[error(
        "the API key has {chars} characters, too few for a Drata API key (at least {min}); \
         short keys are accepted only by a loopback --base-url such as the simulator"
    )]
    TooShort { chars: usize, min: usize },
    #[error("DRATA_API_KEY: {0}")]
    InEnvironment(Box<KeyError>),
}

impl ApiKey {
    /// Wraps a key, refusing empty ones and ones that cannot travel in a header.
    pub(crate) fn new(raw: &str) -> Result<Self, KeyError> {
        // A byte-order mark is what a Windows editor puts before the key, not part of it.
        let key = raw.trim_start_matches('\u{feff}').trim();
        if key.is_empty() {
            return Err(KeyError::Missing);
        }
        if key
            .get(..7)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("bearer "))
        {
            return Err(KeyError::BearerPrefix);
        }
        if key.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
            return Err(KeyError::NotAHeaderValue);
        }
        Ok(Self(key.to_owned()))
    }

    /// Reads the first line of a token file, trimmed. Returns a warning when the file
    /// can be read by group or others, as ssh does for private keys.
    pub(crate) fn from_file(path: &Path) -> Result<(Self, Option<String>), KeyError> {
        use std::io::{BufRead, Read};
        let shown = path.display().to_string();
        let unreadable = |source| KeyError::Unreadable {
            path: shown.clone(),
            source: std::sync::Arc::new(source),
        };
        // Only the first line is read, and at most 64 KiB of it: a longer one is refused,
        // never cut and sent.
        let file = std::fs::File::open(path).map_err(unreadable)?;
        let mut first = Vec::new();
        let mut reader = std::io::BufReader::new(file.take(MAX_LINE_BYTES + 1));
        reader.read_until(b'\n', &mut first).map_err(unreadable)?;
        if first.len() as u64 > MAX_LINE_BYTES {
            return Err(KeyError::TooLong(shown));
        }
        let first_line = String::from_utf8(first).map_err(|_| KeyError::NotAHeaderValue)?;
        if first_line.trim_start_matches('\u{feff}').trim().is_empty() {
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).map_err(unreadable)?;
            return Err(if rest.iter().all(u8::is_ascii_whitespace) {
                KeyError::EmptyFile(shown)
            } else {
                KeyError::BlankFirstLine(shown)
            });
        }
        let key = Self::new(&first_line)?;
        Ok((key, loose_permissions_warning(path)))
    }

    /// The `Authorization` header value, flagged sensitive so that `http` redacts it too.
    pub(crate) fn bearer_header(&self) -> reqwest::header::HeaderValue {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.0))
            .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("Bearer invalid"));
        value.set_sensitive(true);
        value
    }

    /// Refuses a key too short to be a real one ([`MIN_KEY_CHARS`]); called for servers
    /// off loopback only.
    pub(crate) fn check_length(&self) -> Result<(), KeyError> {
        let chars = self.0.chars().count();
        if chars < MIN_KEY_CHARS {
            return Err(KeyError::TooShort {
                chars,
                min: MIN_KEY_CHARS,
            });
        }
        Ok(())
    }

    /// Removes the key from text that came from elsewhere (a server echoing headers):
    /// as written, JSON-escaped or percent-encoded, whole or any [`LEAK_CHARS`] of it in a
    /// row (see [`scrub_key`]). Run it on decoded text, before any shortening.
    pub(crate) fn redact(&self, text: &str) -> String {
        if self.0.len() < LEAK_CHARS {
            return redact_secret(text, &self.0);
        }
        scrub_key(text, &self.0)
    }
}

/// This many characters of the key in a row count as a leak: fewer cannot be told from
/// ordinary text (and leave too little of a key of 16 or more to guess the rest).
pub(crate) const LEAK_CHARS: usize = 8;

/// One character of text as it reads once decoded, and the bytes of the text it came from.
struct Decoded {
    char: char,
    from: usize,
    to: usize,
}

/// `text` read with its escapes undone: `%XX` (percent-encoding), `\uXXXX`, `\"`, `\\`
/// and `\/` (JSON), each kept with the span it was written as. Only escapes of ASCII
/// characters are undone: a key is printable ASCII, nothing else can be part of it.
fn decoded(text: &str) -> Vec<Decoded> {
    let bytes = text.as_bytes();
    let hex = |from: usize, len: usize| {
        bytes
            .get(from..from + len)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .filter(|code| *code < 0x80)
            .and_then(char::from_u32)
    };
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        let (char, len) = match (c, bytes.get(at + 1).copied()) {
            ('%', _) => hex(at + 1, 2).map_or((c, 1), |d| (d, 3)),
            ('\\', Some(b'u' | b'U')) => hex(at + 2, 4).map_or((c, 1), |d| (d, 6)),
            ('\\', Some(next @ (b'"' | b'\\' | b'/'))) => (char::from(next), 2),
            _ => (c, c.len_utf8()),
        };
        out.push(Decoded {
            char,
            from: at,
            to: at + len,
        });
        at += len;
    }
    out
}

/// Replaces with `<redacted>` every run of [`LEAK_CHARS`] or more characters of `text`
/// that, once decoded (see [`decoded`]), are consecutive characters of `key`: the key
/// whole, a piece of it, JSON-escaped, percent-encoded or any mix of these.
pub(crate) fn scrub_key(text: &str, key: &str) -> String {
    let key: Vec<char> = key.chars().collect();
    if key.len() < LEAK_CHARS {
        return text.to_owned();
    }
    let chars = decoded(text);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < chars.len() {
        let longest = (0..key.len())
            .filter(|start| key[*start] == chars[at].char)
            .map(|start| {
                key[start..]
                    .iter()
                    .zip(&chars[at..])
                    .take_while(|(k, c)| **k == c.char)
                    .count()
            })
            .max()
            .unwrap_or(0);
        if longest >= LEAK_CHARS {
            out.push_str(&text[copied..chars[at].from]);
            out.push_str("<redacted>");
            at += longest;
            copied = chars[at - 1].to;
        } else {
            at += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Replaces `secret` in `text` with `<redacted>`. A secret of [`MIN_KEY_CHARS`] or more
/// is replaced wherever it occurs; a shorter one (a test key on loopback, a short proxy
/// password) only where it stands as a word of its own, so that a key `k` leaves
/// `UnknownIssuer` alone.
pub(crate) fn redact_secret(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return text.to_owned();
    }
    if secret.chars().count() >= MIN_KEY_CHARS {
        return text.replace(secret, "<redacted>");
    }
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(at) = rest.find(secret) {
        let (head, tail) = rest.split_at(at);
        out.push_str(head);
        let before_match = head.chars().next_back().or(before);
        let after = &tail[secret.len()..];
        if is_word(before_match) || is_word(after.chars().next()) {
            // Part of a longer word: keep its first character and search on from the next.
            let first = tail.chars().next().map_or(1, char::len_utf8);
            out.push_str(&tail[..first]);
            before = tail[..first].chars().next_back();
            rest = &tail[first..];
        } else {
            out.push_str("<redacted>");
            before = Some('>');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(unix)]
fn loose_permissions_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "the token file {} is readable by others (mode {:o}); run: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        )
    })
}

/// Windows has no mode bits: the file is protected by its access list, which std cannot
/// read; the contract's Platforms section says to keep it in the user's profile.
#[cfg(not(unix))]
fn loose_permissions_warning(_path: &Path) -> Option<String> {
    None
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let key = ApiKey::new("  sk_live_abcdef  ").unwrap();
        assert!(!format!("{key:?} {key}").contains("sk_live"));
        assert!(key.bearer_header().is_sensitive());
        assert_eq!(
            key.bearer_header().to_str().unwrap(),
            "Bearer sk_live_abcdef"
        );
    }

    #[test]
    fn rejects_empty_and_non_header_keys() {
        assert!(matches!(ApiKey::new("  "), Err(KeyError::Missing)));
        assert!(matches!(ApiKey::new("a b"), Err(KeyError::NotAHeaderValue)));
    }

    fn from_file_bytes(bytes: &[u8]) -> Result<ApiKey, KeyError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, bytes).unwrap();
        ApiKey::from_file(&path).map(|(key, _)| key)
    }

    #[test]
    fn token_files_say_what_is_wrong_with_them() {
        let ok = from_file_bytes(b"\xef\xbb\xbfsk_live_abc\r\nsecond line").unwrap();
        assert_eq!(
            ok.bearer_header().to_str().unwrap(),
            "Bearer sk_live_abc",
            "BOM stripped"
        );
        let long = vec![b'k'; 64 * 1024 + 1];
        assert!(matches!(from_file_bytes(&long), Err(KeyError::TooLong(_))));
        let exactly = vec![b'k'; 64 * 1024];
        assert!(
            from_file_bytes(&exactly).is_ok(),
            "64 KiB is still read whole"
        );
        assert!(matches!(
            from_file_bytes(b"\n\nsk_live_abc\n"),
            Err(KeyError::BlankFirstLine(_))
        ));
        assert!(matches!(
            from_file_bytes(b" \n\n"),
            Err(KeyError::EmptyFile(_))
        ));
        assert!(matches!(
            from_file_bytes(b"Bearer sk_live_abc"),
            Err(KeyError::BearerPrefix)
        ));
        assert!(matches!(
            ApiKey::new("bearer sk"),
            Err(KeyError::BearerPrefix)
        ));
    }

    #[test]
    fn redact_removes_the_key_from_foreign_text() {
        let key = ApiKey::new("sk_1").unwrap();
        assert_eq!(key.redact("echo: Bearer sk_1!"), "echo: Bearer <redacted>!");
        let long = ApiKey::new("0123456789abcdef0123").unwrap();
        assert_eq!(
            long.redact("x0123456789abcdef0123y and 0123456789abcdef0123"),
            "x<redacted>y and <redacted>"
        );
    }

    #[test]
    fn the_key_is_found_escaped_encoded_and_in_pieces() {
        let key = ApiKey::new("holdout-0123456789abcdef").unwrap();
        for (text, expected) in [
            (r"x \u0068oldout-0123456789abcdef y", "x <redacted> y"),
            (r"x \u0068oldout-0123456789abcdef", "x <redacted>"),
            ("?k=%68%6Fldout-0123456789abcdef&b", "?k=<redacted>&b"),
            ("?k=%68%6fldout-01234%3F", "?k=<redacted>%3F"),
            ("cut: holdout-0…", "cut: <redacted>…"),
            ("tail: 89abcdef.", "tail: <redacted>."),
            (
                "seven: holdout nothing 9abcdef",
                "seven: holdout nothing 9abcdef",
            ),
            (r"\/\\\\\\\\\u0G", r"\/\\\\\\\\\u0G"),
            ("%zz%6", "%zz%6"),
        ] {
            assert_eq!(key.redact(text), expected, "{text}");
        }
        let slashes = ApiKey::new(r#"ab/c"d\efgh"#).unwrap();
        assert_eq!(slashes.redact(r#"<ab\/c\"d\\efgh>"#), "<<redacted>>");
        assert_eq!(scrub_key("abcdefg", "abcdefg"), "abcdefg", "shorter than 8");
    }

    #[test]
    fn a_short_key_never_mangles_words() {
        let key = ApiKey::new("k").unwrap();
        assert_eq!(
            key.redact("invalid peer certificate: UnknownIssuer"),
            "invalid peer certificate: UnknownIssuer"
        );
        assert_eq!(key.redact("Bearer k, k."), "Bearer <redacted>, <redacted>.");
        assert_eq!(key.redact("kk k_ k"), "kk k_ <redacted>");
        let sim = ApiKey::new("sim-token").unwrap();
        assert_eq!(
            sim.redact("token sim-token; sim-tokens; sim-toke; im-toke"),
            "token <redacted>; <redacted>s; <redacted>; im-toke",
            "eight characters of the key in a row are a leak, seven are not"
        );
        assert_eq!(redact_secret("ééé é", "é"), "ééé <redacted>");
    }

    #[test]
    fn short_keys_are_refused_for_remote_servers() {
        assert!(matches!(
            ApiKey::new("k").unwrap().check_length(),
            Err(KeyError::TooShort { chars: 1, min: 16 })
        ));
        assert!(ApiKey::new("0123456789abcdef")
            .unwrap()
            .check_length()
            .is_ok());
        let message = ApiKey::new("zq9")
            .unwrap()
            .check_length()
            .unwrap_err()
            .to_string();
        assert!(!message.contains("zq9"), "{message}");
    }
}
