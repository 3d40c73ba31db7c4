//! The per-row report: the CSV every run leaves, one row per input row, each flushed as
//! soon as its outcome is final. The only place report cells become text.

use std::fs::File;
use std::io;
use std::time::SystemTime;

use crate::model::{source_text, IdCell, IdentityKind, ReportRow};

/// The report's columns, in order (`docs/contract.md`, "The report"): the twelve of the
/// contract, then the state before the run (when the listing was read) and what the run
/// addressed, so that `--resume-from` can tell whether a row was done for this target.
pub(crate) const COLUMNS: [&str; 17] = [
    "line",
    "id",
    "service_account",
    "reason",
    "outcome",
    "http_status",
    "attempts",
    "error",
    "username",
    "email",
    "service_account_at",
    "finished_at",
    "previous_service_account",
    "previous_reason",
    "kind",
    "api",
    "source",
];

/// Prefixes cells a spreadsheet would run as a formula.
pub(crate) fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// The id cell's text.
pub(crate) fn id_text(id: &IdCell) -> String {
    match id {
        IdCell::Id(id) => id.to_string(),
        IdCell::Raw(text) => text.clone(),
        IdCell::Empty => String::new(),
    }
}

/// `true`, `false`, or empty when the flag did not parse.
pub(crate) fn flag_text(flag: Option<bool>) -> &'static str {
    match flag {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    }
}

/// The report writer: a CSV file flushed after every row.
pub(crate) struct ReportWriter {
    csv: csv::Writer<File>,
    kind: IdentityKind,
    /// The base URL every request of the run went to; empty when none was sent.
    api: String,
}

impl ReportWriter {
    pub(crate) fn new(file: File, kind: IdentityKind, api: String) -> io::Result<Self> {
        let mut csv = csv::WriterBuilder::new()
            .buffer_capacity(16 * 1024)
            .from_writer(file);
        csv.write_record(COLUMNS)?;
        csv.flush()?;
        Ok(Self { csv, kind, api })
    }

    /// Writes one row and hands it to the OS at once, so a killed run keeps it.
    pub(crate) fn write(&mut self, row: &ReportRow, finished_at: SystemTime) -> io::Result<()> {
        // A rule's row has no line of the input.
        let line = match row.rule {
            Some(_) => String::new(),
            None => row.line.to_string(),
        };
        let source = source_text(row.rule.as_deref());
        let id = id_text(&row.id);
        let status = row.http_status.map(|s| s.to_string()).unwrap_or_default();
        let attempts = row.attempts.to_string();
        let finished = humantime::format_rfc3339_millis(finished_at).to_string();
        let text = |value: &Option<String>| value.as_deref().unwrap_or("").to_owned();
        let previous_flag = row.previous.as_ref().map(|p| p.marked);
        let previous_reason = row.previous.as_ref().and_then(|p| p.reason.clone());
        let cells: [&str; 17] = [
            &line,
            &id,
            flag_text(row.flag),
            &row.reason,
            row.outcome.as_str(),
            &status,
            &attempts,
            &row.error,
            &text(&row.identity.username),
            &text(&row.identity.email),
            &text(&row.identity.service_account_at),
            &finished,
            flag_text(previous_flag),
            &text(&previous_reason),
            self.kind.path_segment(),
            &self.api,
            &source,
        ];
        self.csv
            .write_record(cells.iter().map(|c| spreadsheet_safe(c).into_owned()))?;
        self.csv.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_prefixed() {
        for risky in ["=SUM(A1)", "+1", "-2", "@x", "\tx", "\rx"] {
            assert_eq!(spreadsheet_safe(risky), format!("'{risky}"));
        }
        for plain in ["", "abc", "1", "'=already"] {
            assert_eq!(spreadsheet_safe(plain), plain);
        }
    }
}
