//! Which delimiter a file uses, read from its header when `--delimiter` is not given:
//! European Excel writes `;`, "Unicode text" and many tools write tabs, a few write `|`.

use thiserror::Error;

/// The delimiters a header is searched for, the default first.
const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line 1: cannot tell the delimiter: the header has as many {} as {}; pass --delimiter", shown(*.first), shown(*.second))]
pub struct Ambiguous {
    pub(crate) first: u8,
    pub(crate) second: u8,
}

/// A delimiter as the user would type it.
pub(crate) fn shown(delimiter: u8) -> String {
    match delimiter {
        b'\t' => "tab".to_owned(),
        other => format!("'{}'", char::from(other)),
    }
}

/// The delimiter of a header line: the candidate found most often outside quotes; `,` when
/// there is none (one column); an error when two are found equally often.
pub(crate) fn sniff_delimiter(header: &[u8]) -> Result<u8, Ambiguous> {
    let line = header.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut counts = [0usize; CANDIDATES.len()];
    let mut quoted = false;
    for byte in line {
        if *byte == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(i) = CANDIDATES.iter().position(|c| c == byte) {
                counts[i] += 1;
            }
        }
    }
    let best = (0..CANDIDATES.len()).max_by_key(|&i| (counts[i], usize::MAX - i));
    let Some(best) = best.filter(|&i| counts[i] > 0) else {
        return Ok(b',');
    };
    match (0..CANDIDATES.len()).find(|&i| i != best && counts[i] == counts[best]) {
        Some(other) => Err(Ambiguous {
            first: CANDIDATES[best.min(other)],
            second: CANDIDATES[best.max(other)],
        }),
        None => Ok(CANDIDATES[best]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_the_one_the_header_uses_most() {
        let table: [(&[u8], u8); 8] = [
            (b"id,serviceAccount,reason\n1;2", b','),
            (b"id;serviceAccount;reason\r\n", b';'),
            (b"id\tserviceAccount\treason", b'\t'),
            (b"id|flag|reason", b'|'),
            (b"id", b','),
            (b"", b','),
            (b"\"a,b\";\"c,d\";e", b';'),
            (b"id;flag;reason, with a comma", b';'),
        ];
        for (header, expected) in table {
            assert_eq!(
                sniff_delimiter(header),
                Ok(expected),
                "{:?}",
                String::from_utf8_lossy(header)
            );
        }
    }

    #[test]
    fn a_tie_asks_for_the_option() {
        let tie = sniff_delimiter(b"id;flag,reason").unwrap_err();
        assert_eq!(
            tie,
            Ambiguous {
                first: b',',
                second: b';'
            }
        );
        assert_eq!(
            tie.to_string(),
            "line 1: cannot tell the delimiter: the header has as many ',' as ';'; pass --delimiter"
        );
        assert_eq!(shown(b'\t'), "tab");
        assert_eq!(shown(b'|'), "'|'");
    }
}
