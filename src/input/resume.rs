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
