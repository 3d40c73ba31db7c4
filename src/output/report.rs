//! The per-row report: the CSV every run leaves, one row per input row, each flushed as
//! soon as its outcome is final. The only place report cells become text.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use crate::model::{source_text, IdCell, IdentityKind, Link, ReportRow};
use crate::text::echoed;

/// The report's columns, in order (`docs/contract.md`, "The report"): the twelve of the
/// contract, then the state before the run (when the listing was read) and what the run
/// addressed, so that `--resume-from` can tell whether a row was done for this target;
/// who decided the row, whether the check after the run found it applied, and the state
/// at export (when the input carried it); the row's link and the link before the run
/// (when the input decides links).
pub(crate) const COLUMNS: [&str; 22] = [
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
    "verified",
    "baseline_service_account",
    "baseline_reason",
    "linked_user",
    "previous_linked_user",
];

/// A cell as every CSV we write holds it: hostile characters escaped
/// ([`crate::text::file_safe`]), prefixed when a spreadsheet would run it as a formula, and
/// prefixed when it begins with the prefix itself, so that the input reader can remove
/// exactly one `'` and get the text back.
pub(crate) fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    let safe = crate::text::file_safe(cell);
    if safe.starts_with(crate::text::PREFIXED_STARTS) {
        format!("'{safe}").into()
    } else {
        safe
    }
}

/// `yes`, `no`, or empty when the row was not checked.
pub(crate) fn verified_text(verified: Option<bool>) -> &'static str {
    match verified {
        Some(true) => "yes",
        Some(false) => "no",
        None => "",
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
        // What the server echoed is capped: a huge name in every answer stays small here.
        let capped = |value: &Option<String>| echoed(value.as_deref().unwrap_or(""));
        let error = echoed(&row.error);
        let previous_flag = row.previous.as_ref().map(|p| p.marked);
        let previous_reason = row.previous.as_ref().and_then(|p| p.reason.clone());
        let baseline_flag = row.baseline.as_ref().map(|b| b.marked);
        let baseline_reason = row.baseline.as_ref().map_or("", |b| b.reason.as_str());
        let link_cell = row.link.as_ref().map_or("", |l| l.link.cell());
        let previous_link = row
            .previous
            .as_ref()
            .and_then(|p| p.link.as_ref())
            .map_or("", Link::cell);
        let cells: [&str; 22] = [
            &line,
            &id,
            flag_text(row.flag),
            &row.reason,
            row.outcome.as_str(),
            &status,
            &attempts,
            &error,
            &capped(&row.identity.username),
            &capped(&row.identity.email),
            &text(&row.identity.service_account_at),
            &finished,
            flag_text(previous_flag),
            &text(&previous_reason),
            self.kind.path_segment(),
            &self.api,
            &source,
            verified_text(row.verified),
            flag_text(baseline_flag),
            baseline_reason,
            link_cell,
            previous_link,
        ];
        self.csv
            .write_record(cells.iter().map(|c| spreadsheet_safe(c).into_owned()))?;
        self.csv.flush()
    }
}

/// How [`rewrite_checked`] finds a row sent in the report: its line and id (a rule's row
/// has line 0, an empty cell in the report, and one row per id).
pub(crate) fn checked_key(row: &ReportRow) -> Option<(u64, u64)> {
    let line = if row.rule.is_some() { 0 } else { row.line };
    row.id().map(|id| (line, id))
}

/// Writes the report again with the rows the check after the run settled (by
/// [`checked_key`]): their outcome, error, what Drata shows and `verified`; every other
/// cell as it was. The new file replaces the old one at once (a private temporary file,
/// renamed), so a report is always whole.
pub(crate) fn rewrite_checked(
    path: &Path,
    checked: &HashMap<(u64, u64), &ReportRow>,
) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = tempfile::NamedTempFile::new_in(dir)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)?;
    let mut writer = csv::Writer::from_writer(temp);
    let column = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap_or(0);
    let text = |value: &Option<String>| value.as_deref().unwrap_or("").to_owned();
    for record in reader.records() {
        let mut cells: Vec<String> = record?.iter().map(str::to_owned).collect();
        // A rule's row has an empty line: 0, as in `checked_key`.
        let line = cells.first().map(|line| match line.as_str() {
            "" => Some(0),
            line => line.parse::<u64>().ok(),
        });
        let id = cells.get(1).and_then(|id| id.parse::<u64>().ok());
        let row = match (line.flatten(), id) {
            (Some(line), Some(id)) => checked.get(&(line, id)),
            _ => None,
        };
        if let (Some(row), true) = (row, cells.len() == COLUMNS.len()) {
            let settled = [
                ("outcome", row.outcome.as_str().to_owned()),
                ("error", echoed(&row.error)),
                ("username", echoed(&text(&row.identity.username))),
                ("email", echoed(&text(&row.identity.email))),
                ("service_account_at", text(&row.identity.service_account_at)),
                ("verified", verified_text(row.verified).to_owned()),
            ];
            for (name, value) in settled {
                cells[column(name)] = spreadsheet_safe(&value).into_owned();
            }
        }
        writer.write_record(&cells)?;
    }
    let temp = writer.into_inner().map_err(|e| e.into_error())?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_prefixed() {
        for risky in ["=SUM(A1)", "+1", "-2", "@x", "\tx", "'=already", "'x"] {
            assert_eq!(spreadsheet_safe(risky), format!("'{risky}"));
        }
        // A carriage return is escaped like every other control character.
        assert_eq!(spreadsheet_safe("\rx\u{1b}"), "\\u{d}x\\u{1b}");
        for plain in ["", "abc", "1", "a'b"] {
            assert_eq!(spreadsheet_safe(plain), plain);
        }
    }
}
