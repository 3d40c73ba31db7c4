//! Reading an earlier report for `--resume-from`: which rows are already done.

use std::collections::HashSet;
use std::path::Path;

use thiserror::Error;

use crate::model::Outcome;
use crate::text::unprefixed;

#[derive(Debug, Error)]
pub enum ResumeError {
    #[error("cannot read the report {path}: {source}")]
    Io { path: String, source: csv::Error },
    #[error("{path} is not a drata-svcacct report: no {column} column")]
    NotAReport { path: String, column: &'static str },
}

/// Rows an earlier run finished, keyed by (line, id, desired flag).
#[derive(Debug, Default)]
pub(crate) struct DoneRows(HashSet<(u64, u64, bool)>);

impl DoneRows {
    pub(crate) fn contains(&self, line: u64, id: u64, flag: bool) -> bool {
        self.0.contains(&(line, id, flag))
    }
}

/// Loads the rows an old report shows as `updated`, `unchanged` or `skipped`. Rows that
/// do not parse, such as a last line cut short by a killed run, count as not done.
pub(crate) fn load_done_rows(path: &Path) -> Result<DoneRows, ResumeError> {
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
    let find = |column: &'static str| {
        headers
            .iter()
            .position(|h| h == column)
            .ok_or(ResumeError::NotAReport {
                path: shown.clone(),
                column,
            })
    };
    let (line_at, id_at, flag_at, outcome_at) = (
        find("line")?,
        find("id")?,
        find("service_account")?,
        find("outcome")?,
    );
    let mut done = DoneRows::default();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            // A record cut inside a quoted field, or bad bytes: that row is not done.
            Err(e) if !matches!(e.kind(), csv::ErrorKind::Io(_)) => continue,
            Err(e) => return Err(io(e)),
        }
        let cell = |at: usize| record.get(at).map(unprefixed);
        let parsed = (|| {
            let line = cell(line_at)?.parse::<u64>().ok()?;
            let id = cell(id_at)?.parse::<u64>().ok()?;
            let flag = match cell(flag_at)? {
                "true" => true,
                "false" => false,
                _ => return None,
            };
            let outcome = Outcome::parse(cell(outcome_at)?)?;
            outcome.is_done().then_some((line, id, flag))
        })();
        if let Some(key) = parsed {
            done.0.insert(key);
        }
    }
    Ok(done)
}
