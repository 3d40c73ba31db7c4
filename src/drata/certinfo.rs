//! The facts about a CA certificate that are checked before anything is sent: its
//! validity period and whether it may sign (basicConstraints `cA`), for `--ca-cert` and
//! the stores of `SSL_CERT_FILE` and `SSL_CERT_DIR`, and its subject's common name, to
//! name one that is skipped. A few lines of DER reading: rustls keeps its parser private,
//! and a trust anchor that is expired or a leaf would only fail later with "unknown
//! issuer", which names the wrong cause. A general X.509 crate would bring a parser
//! combinator library and a date library for these three fields; the reading is bounded
//! (every length checked against what is left) and a certificate it cannot read is left
//! to rustls, which parses every root anyway.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// What makes a certificate unusable as a CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaProblem {
    /// Past its end date.
    Expired,
    /// Before its start date.
    NotYetValid,
    /// No basicConstraints with `cA` true: a server's certificate, not an authority.
    NotCa,
}

impl CaProblem {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            CaProblem::Expired => "it has expired",
            CaProblem::NotYetValid => "it is not valid yet (check this machine's clock)",
            CaProblem::NotCa => {
                "it is not a CA certificate (a server's own certificate?): pass the CA that signed it"
            }
        }
    }
}

/// `None` when `der` is a CA valid at `now`, or cannot be read this far (rustls then
/// judges it).
pub(crate) fn ca_problem(der: &[u8], now: SystemTime) -> Option<CaProblem> {
    let (not_before, not_after, is_ca) = read(der)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    if now > not_after {
        Some(CaProblem::Expired)
    } else if now < not_before {
        Some(CaProblem::NotYetValid)
    } else if !is_ca {
        Some(CaProblem::NotCa)
    } else {
        None
    }
}

/// One DER element: its tag, its content and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (length, &rest[count..])
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

/// The elements of a constructed element's content, in order.
fn elements(mut content: &[u8]) -> Vec<(u8, &[u8])> {
    let mut found = Vec::new();
    while let Some((tag, inner, rest)) = element(content) {
        found.push((tag, inner));
        content = rest;
    }
    found
}

/// Not before and not after (Unix seconds), and whether basicConstraints says `cA`.
fn read(der: &[u8]) -> Option<(i64, i64, bool)> {
    let (_, certificate, _) = element(der)?;
    let (_, tbs, _) = element(certificate)?;
    let fields = elements(tbs);
    // An explicit version ([0]) comes first when present.
    let skip = usize::from(fields.first()?.0 == 0xa0);
    let (_, validity) = fields.get(skip + 3)?;
    let times = elements(validity);
    let not_before = time(*times.first()?)?;
    let not_after = time(*times.get(1)?)?;
    let is_ca = fields
        .iter()
        .find(|(tag, _)| *tag == 0xa3)
        .and_then(|(_, extensions)| basic_constraints_ca(extensions))
        .unwrap_or(false);
    Some((not_before, not_after, is_ca))
}

/// The subject's common name (OID 2.5.4.3), else its organizational unit or organization
/// (2.5.4.11, 2.5.4.10), to name a certificate in the log (some old roots have no common
/// name); `None` when it has none of them or cannot be read.
pub(crate) fn common_name(der: &[u8]) -> Option<String> {
    let (_, certificate, _) = element(der)?;
    let (_, tbs, _) = element(certificate)?;
    let fields = elements(tbs);
    let skip = usize::from(fields.first()?.0 == 0xa0);
    let (_, subject) = fields.get(skip + 4)?;
    // A Name is a sequence of sets of (type, value) pairs.
    let pairs: Vec<(u8, Vec<u8>)> = elements(subject)
        .into_iter()
        .flat_map(|(_, set)| elements(set))
        .filter_map(|(_, pair)| match elements(pair).as_slice() {
            [(0x06, [0x55, 0x04, kind]), (_, value)] => Some((*kind, value.to_vec())),
            _ => None,
        })
        .collect();
    [0x03, 0x0b, 0x0a].iter().find_map(|wanted| {
        let (_, value) = pairs.iter().find(|(kind, _)| kind == wanted)?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}

/// The `cA` flag of the basicConstraints extension (OID 2.5.29.19), when present.
fn basic_constraints_ca(explicit: &[u8]) -> Option<bool> {
    let (_, list, _) = element(explicit)?;
    elements(list).into_iter().find_map(|(_, extension)| {
        let parts = elements(extension);
        if parts.first()? != &(0x06, &[0x55, 0x1d, 0x13][..]) {
            return None;
        }
        let (_, value) = parts.iter().find(|(tag, _)| *tag == 0x04)?;
        let (_, constraints, _) = element(value)?;
        Some(matches!(elements(constraints).first(), Some((0x01, [flag])) if *flag != 0))
    })
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) in Unix seconds.
fn time((tag, text): (u8, &[u8])) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        0x18 => (text.get(..4)?.parse().ok()?, &text[4..]),
        _ => return None,
    };
    let number = |range: std::ops::Range<usize>| rest.get(range)?.parse::<i64>().ok();
    let days = days_from_civil(year, number(0..2)?, number(2..4)?);
    Some(days * 86_400 + number(4..6)? * 3600 + number(6..8)? * 60 + number(8..10)?)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The variables a store was named by, as said in messages (public: `CaFileError` holds
/// it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    pub(crate) file: Option<PathBuf>,
    pub(crate) dirs: Vec<PathBuf>,
    /// Read from the system's usual places because `SSL_CERT_FILE` is set but empty.
    pub(crate) system: bool,
}

impl std::fmt::Display for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.system {
            f.write_str("the system store (SSL_CERT_FILE is empty) ")?;
        }
        if let Some(file) = &self.file {
            write!(f, "SSL_CERT_FILE {}", file.display())?;
        }
        if !self.dirs.is_empty() {
            if self.file.is_some() {
                f.write_str(" and ")?;
            }
            let dirs = std::env::join_paths(&self.dirs).unwrap_or_default();
            write!(f, "SSL_CERT_DIR {}", Path::new(&dirs).display())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_count_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(time((0x17, b"210101000000Z")), Some(1_609_459_200));
        assert_eq!(time((0x18, b"20210101000000Z")), Some(1_609_459_200));
    }

    #[test]
    fn unreadable_bytes_are_left_to_rustls() {
        assert_eq!(ca_problem(b"\x30\x03\x02\x01", SystemTime::now()), None);
    }
}
