//! Reading an earlier report for `--resume-from`: which rows are already done. A row is
//! done only when its line, id, flag and reason are the ones the earlier run sent or
//! found, and that run addressed the same kind of identity through the same API: a
//! reason fixed since, or a report of another kind or tenant, is sent again. A row a
//! rule decided has no line: it is matched by its id (line 0).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::Path;

use thiserror::Error;

use crate::model::{IdentityKind, Outcome};
use crate::text::unprefixed;

/// The largest report `--resume-from` reads: 1 GiB, about four million rows of the usual
/// width (a row is 150 to 300 bytes); the largest input this tool is measured on, a million
/// rows, writes a quarter of it. Past it, the file is not a report of one run.
pub(crate) const MAX_REPORT_BYTES: u64 = 1024 * 1024 * 1024;
/// The longest line of a report read: 1 MiB. A row is at most a few hundred kB (a 30,000
/// unit reason, quoted, and the other cells); a longer line is not a report, and would be
/// held whole in memory as one record.
pub(crate) const MAX_REPORT_LINE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Error)]
pub enum ResumeError {
    #[error("cannot read the report {path}: {source}")]
    Io { path: String, source: csv::Error },
    #[error("{path} is not a drata-svcacct report: {problem}")]
    TooLarge { path: String, problem: Oversize },
    #[error("{path} is not a drata-svcacct report: no {column} column")]
    NotAReport { path: String, column: &'static str },
    #[error(
        "{path} was written by an older drata-svcacct: it does not say which identity kind and API its rows were sent to, so it cannot be trusted to skip anything; run without --resume-from (apply reads the state: rows already done are skipped as unchanged)"
    )]
    TooOld { path: String },
}

/// What a row must match in the earlier report to count as done.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResumeTarget<'a> {
    pub kind: IdentityKind,
    /// The base URL, as the report's `api` column writes it.
    pub api: &'a str,
}

/// Rows an earlier run finished, keyed by (line, id, desired flag, reason digest); a
/// rule's row has line 0.
#[derive(Debug, Default)]
pub(crate) struct DoneRows {
    keys: HashSet<(u64, u64, bool, u64)>,
    /// The done rows a rule decided, by id: the resumed run carries them over even when
    /// no rule matches the identity any more (a `marked = false` rule stops matching the
    /// identities it marked), so that its report stays complete.
    by_rule: HashMap<u64, DoneRuleRow>,
}

/// A row a rule decided that the earlier run finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DoneRuleRow {
    pub flag: bool,
    pub reason: String,
    /// The rule's name, from the report's `source` (`rule:NAME`).
    pub rule: String,
}

/// A digest of a reason: equal reasons, equal digests, within one process.
fn digest(reason: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    reason.hash(&mut hasher);
    hasher.finish()
}

impl DoneRows {
    pub(crate) fn contains(&self, line: u64, id: u64, flag: bool, reason: &str) -> bool {
        self.keys.contains(&(line, id, flag, digest(reason)))
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The done row a rule decided for this identity in the earlier report.
    pub(crate) fn by_rule(&self, id: u64) -> Option<&DoneRuleRow> {
        self.by_rule.get(&id)
    }

    /// Every done row a rule decided, by id order.
    pub(crate) fn rule_rows(&self) -> Vec<(u64, &DoneRuleRow)> {
        let mut rows: Vec<(u64, &DoneRuleRow)> =
            self.by_rule.iter().map(|(id, row)| (*id, row)).collect();
        rows.sort_by_key(|(id, _)| *id);
        rows
    }

    fn insert(&mut self, done: Done) {
        self.keys.insert(done.key);
        if let Some(row) = done.by_rule {
            self.by_rule.insert(done.key.1, row);
        }
    }
}

/// Where the needed columns are.
struct Columns {
    line: usize,
    id: usize,
    flag: usize,
    reason: usize,
    outcome: usize,
    kind: usize,
    api: usize,
    /// `source` (`input` or `rule:NAME`): absent from reports older than rules.
    source: Option<usize>,
}

/// A done row of the earlier report: its key, and what a rule decided when one did.
struct Done {
    key: (u64, u64, bool, u64),
    by_rule: Option<DoneRuleRow>,
}

fn columns(headers: &csv::StringRecord, shown: &str) -> Result<Columns, ResumeError> {
    let find = |column: &'static str| {
        headers
            .iter()
            .position(|h| h == column)
            .ok_or(ResumeError::NotAReport {
                path: shown.to_owned(),
                column,
            })
    };
    let (line, id, flag, reason, outcome) = (
        find("line")?,
        find("id")?,
        find("service_account")?,
        find("reason")?,
        find("outcome")?,
    );
    let too_old = || ResumeError::TooOld {
        path: shown.to_owned(),
    };
    Ok(Columns {
        line,
        id,
        flag,
        reason,
        outcome,
        kind: find("kind").map_err(|_| too_old())?,
        api: find("api").map_err(|_| too_old())?,
        source: find("source").ok(),
    })
}

/// A row the report shows as done for this target; `None` otherwise.
fn done_row(record: &csv::StringRecord, at: &Columns, target: ResumeTarget<'_>) -> Option<Done> {
    let cell = |index: usize| record.get(index).map(unprefixed);
    if cell(at.kind)? != target.kind.path_segment() || cell(at.api)? != target.api {
        return None;
    }
    let rule = at
        .source
        .and_then(cell)
        .and_then(|source| source.strip_prefix("rule:"));
    let line = match (cell(at.line)?, rule) {
        ("", Some(_)) => 0,
        (line, _) => line.parse::<u64>().ok()?,
    };
    let id = cell(at.id)?.parse::<u64>().ok()?;
    let flag = match cell(at.flag)? {
        "true" => true,
        "false" => false,
        _ => return None,
    };
    let outcome = Outcome::parse(cell(at.outcome)?)?;
    if !outcome.is_done() {
        return None;
    }
    let reason = cell(at.reason).unwrap_or_default();
    Some(Done {
        key: (line, id, flag, digest(reason)),
        by_rule: rule.filter(|_| line == 0).map(|rule| DoneRuleRow {
            flag,
            reason: reason.to_owned(),
            rule: rule.to_owned(),
        }),
    })
}

/// Loads the rows an old report shows as `updated`, `unchanged` or `skipped` for this
/// target. Rows that do not parse, such as a last line cut short by a killed run, count
/// as not done.
pub(crate) fn load_done_rows(
    path: &Path,
    target: ResumeTarget<'_>,
) -> Result<DoneRows, ResumeError> {
    let shown = path.display().to_string();
    let io = |source| ResumeError::Io {
        path: shown.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|e| io(e.into()))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(Bounded::new(file));
    let too_large = |e: csv::Error| match reader_oversize(&e) {
        Some(problem) => ResumeError::TooLarge {
            path: shown.clone(),
            problem,
        },
        None => io(e),
    };
    let headers = reader.headers().map_err(too_large)?.clone();
    let at = columns(&headers, &shown)?;
    let mut done = DoneRows::default();
    let mut other_target = 0u64;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            // A record cut inside a quoted field, or bad bytes: that row is not done.
            Err(e) if !matches!(e.kind(), csv::ErrorKind::Io(_)) => continue,
            Err(e) => return Err(too_large(e)),
        }
        match done_row(&record, &at, target) {
            Some(row) => done.insert(row),
            None if record.get(at.api).is_some_and(|api| api != target.api)
                || record
                    .get(at.kind)
                    .is_some_and(|kind| kind != target.kind.path_segment()) =>
            {
                other_target += 1;
            }
            None => {}
        }
    }
    if other_target > 0 {
        tracing::warn!(
            report = %shown,
            rows = other_target,
            "rows of the report were sent to another identity kind or API: they count as not done"
        );
    }
    Ok(done)
}

/// Which bound a file passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Oversize {
    #[error("it is larger than {} GiB", MAX_REPORT_BYTES >> 30)]
    File,
    #[error("a line is longer than {} MiB", MAX_REPORT_LINE_BYTES >> 20)]
    Line,
}

/// A reader that fails once the file or one of its lines passes its bound, so that neither
/// a huge file nor a line that never ends (`/dev/zero`) is read whole. The error is an
/// `io::Error` holding an [`Oversize`], the only way through the CSV reader.
struct Bounded<R> {
    inner: R,
    read: u64,
    line: u64,
    file_cap: u64,
    line_cap: u64,
}

impl<R> Bounded<R> {
    fn new(inner: R) -> Self {
        Self::with_caps(inner, MAX_REPORT_BYTES, MAX_REPORT_LINE_BYTES)
    }

    fn with_caps(inner: R, file_cap: u64, line_cap: u64) -> Self {
        Self {
            inner,
            read: 0,
            line: 0,
            file_cap,
            line_cap,
        }
    }
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buffer)?;
        let chunk = &buffer[..n];
        self.read += n as u64;
        // Every line the chunk ends, the first one begun before it; then the one it leaves open.
        let (mut longest, mut start) = (0, 0);
        for at in memchr::memchr_iter(b'\n', chunk) {
            longest = longest.max(self.line + (at - start) as u64);
            self.line = 0;
            start = at + 1;
        }
        self.line += (n - start) as u64;
        let over = if self.read > self.file_cap {
            Some(Oversize::File)
        } else if longest.max(self.line) > self.line_cap {
            Some(Oversize::Line)
        } else {
            None
        };
        match over {
            Some(over) => Err(std::io::Error::other(over)),
            None => Ok(n),
        }
    }
}

/// The bound a CSV error reports passing, if that is what it is.
fn reader_oversize(error: &csv::Error) -> Option<Oversize> {
    match error.kind() {
        csv::ErrorKind::Io(io) => io.get_ref()?.downcast_ref::<Oversize>().copied(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "line,id,service_account,reason,outcome,kind,api,source";

    fn done_rows(rows: &str) -> DoneRows {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        std::fs::write(&path, format!("{HEADER}\n{rows}")).unwrap();
        let target = ResumeTarget {
            kind: IdentityKind::Infrastructure,
            api: "http://x/",
        };
        load_done_rows(&path, target).unwrap()
    }

    #[test]
    fn a_file_or_a_line_past_its_bound_stops_the_read() {
        use std::io::Read;
        let read_all = |text: &[u8], file_cap, line_cap| {
            let mut reader = Bounded::with_caps(text, file_cap, line_cap);
            let mut buffer = [0u8; 3];
            let mut read = Vec::new();
            loop {
                match reader.read(&mut buffer) {
                    Ok(0) => return Ok(read),
                    Ok(n) => read.extend_from_slice(&buffer[..n]),
                    Err(e) => {
                        let over = e.get_ref().and_then(|e| e.downcast_ref::<Oversize>());
                        return Err(over.copied());
                    }
                }
            }
        };
        let text = b"ab\ncdef\ng\n";
        assert_eq!(read_all(text, 10, 4), Ok(text.to_vec()));
        assert_eq!(read_all(text, 9, 4), Err(Some(Oversize::File)));
        assert_eq!(read_all(text, 10, 3), Err(Some(Oversize::Line)));
        // Through the CSV reader, as `load_done_rows` sees it.
        let mut csv = csv::Reader::from_reader(Bounded::with_caps(&text[..], 100, 2));
        let error = csv.records().find_map(Result::err).unwrap();
        assert_eq!(reader_oversize(&error), Some(Oversize::Line));
    }

    #[test]
    fn a_rule_row_without_a_line_is_done_by_its_id() {
        let kind = IdentityKind::Infrastructure.path_segment();
        let done = done_rows(&format!(
            ",7,true,bot a,updated,{kind},http://x/,rule:bots\n\
             ,8,true,bot b,failed,{kind},http://x/,rule:bots\n\
             ,9,true,bot c,updated,{kind},http://x/,input\n\
             3,10,true,r,updated,{kind},http://x/,input\n"
        ));
        assert!(done.contains(0, 7, true, "bot a"));
        assert!(!done.contains(0, 7, true, "bot a, reworded"));
        assert!(!done.contains(0, 7, false, "bot a"));
        assert_eq!(
            done.by_rule(7),
            Some(&DoneRuleRow {
                flag: true,
                reason: "bot a".to_owned(),
                rule: "bots".to_owned(),
            })
        );
        // Failed, or an input row without its line: not done.
        assert!(!done.contains(0, 8, true, "bot b") && done.by_rule(8).is_none());
        assert!(!done.contains(0, 9, true, "bot c") && done.by_rule(9).is_none());
        // An input row is done by its line, and is no rule's.
        assert!(done.contains(3, 10, true, "r") && done.by_rule(10).is_none());
        assert_eq!(done.len(), 2);
    }
}
