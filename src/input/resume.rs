//! Reading an earlier report for `--resume-from`: which rows are already done. A row is
//! done only when its line, id, flag and reason are the ones the earlier run sent or
//! found, and that run addressed the same kind of identity through the same API: a
//! reason fixed since, or a report of another kind or tenant, is sent again.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::Path;

use thiserror::Error;

use crate::model::{IdentityKind, Outcome};
use crate::text::unprefixed;

#[derive(Debug, Error)]
pub enum ResumeError {
    #[error("cannot read the report {path}: {source}")]
    Io { path: String, source: csv::Error },
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

/// Rows an earlier run finished, keyed by (line, id, desired flag, reason digest).
#[derive(Debug, Default)]
pub(crate) struct DoneRows(HashSet<(u64, u64, bool, u64)>);

/// A digest of a reason: equal reasons, equal digests, within one process.
fn digest(reason: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    reason.hash(&mut hasher);
    hasher.finish()
}

impl DoneRows {
    pub(crate) fn contains(&self, line: u64, id: u64, flag: bool, reason: &str) -> bool {
        self.0.contains(&(line, id, flag, digest(reason)))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
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
    })
}

/// The key of a row the report shows as done for this target; `None` otherwise.
fn done_key(
    record: &csv::StringRecord,
    at: &Columns,
    target: ResumeTarget<'_>,
) -> Option<(u64, u64, bool, u64)> {
    let cell = |index: usize| record.get(index).map(unprefixed);
    if cell(at.kind)? != target.kind.path_segment() || cell(at.api)? != target.api {
        return None;
    }
    let line = cell(at.line)?.parse::<u64>().ok()?;
    let id = cell(at.id)?.parse::<u64>().ok()?;
    let flag = match cell(at.flag)? {
        "true" => true,
        "false" => false,
        _ => return None,
    };
    let outcome = Outcome::parse(cell(at.outcome)?)?;
    outcome
        .is_done()
        .then(|| (line, id, flag, digest(cell(at.reason).unwrap_or_default())))
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
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(io)?;
    let headers = reader.headers().map_err(io)?.clone();
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
            Err(e) => return Err(io(e)),
        }
        match done_key(&record, &at, target) {
            Some(key) => {
                done.0.insert(key);
            }
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
