//! The per-row report: the CSV every run leaves, one row per input row, each flushed as
//! soon as its outcome is final. The only place report cells become text.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use crate::field::AccessField;
use crate::model::{source_text, IdCell, IdentityKind, Link, ReportRow};
use crate::text::echoed;

/// What a report cell is made from: the row, and what the run knows of itself.
struct CellSource<'a> {
    row: &'a ReportRow,
    kind: IdentityKind,
    api: &'a str,
    finished_at: &'a str,
}

/// One column of the report: its name, and how its cell is made. The report is written
/// from this table and read back by these names (`--resume-from`, the check after the
/// run, the evidence): a new column is one line here.
struct Column {
    name: &'static str,
    cell: fn(&CellSource<'_>) -> String,
}

/// The report's columns, in order (`docs/contract.md`, "The report"): the twelve of the
/// contract, then the state before the run (when the listing was read) and what the run
/// addressed, so that `--resume-from` can tell whether a row was done for this target;
/// who decided the row, whether the check after the run found it applied, and the state
/// at export (when the input carried it); the row's link and the link before the run
/// (when the input decides links). The access toggles the input decides follow
/// ([`AccessField::report_column`]).
const COLUMNS: [Column; 22] = [
    Column {
        name: "line",
        cell: |c| match c.row.rule {
            // A rule's row has no line of the input.
            Some(_) => String::new(),
            None => c.row.line.to_string(),
        },
    },
    Column {
        name: "id",
        cell: |c| id_text(&c.row.id),
    },
    Column {
        name: "service_account",
        cell: |c| flag_text(c.row.flag).to_owned(),
    },
    Column {
        name: "reason",
        cell: |c| c.row.reason.clone(),
    },
    Column {
        name: "outcome",
        cell: |c| c.row.outcome.as_str().to_owned(),
    },
    Column {
        name: "http_status",
        cell: |c| c.row.http_status.map(|s| s.to_string()).unwrap_or_default(),
    },
    Column {
        name: "attempts",
        cell: |c| c.row.attempts.to_string(),
    },
    Column {
        name: "error",
        cell: |c| echoed(&c.row.error),
    },
    // What the server echoed is capped: a huge name in every answer stays small here.
    Column {
        name: "username",
        cell: |c| echoed(c.row.identity.username.as_deref().unwrap_or("")),
    },
    Column {
        name: "email",
        cell: |c| echoed(c.row.identity.email.as_deref().unwrap_or("")),
    },
    Column {
        name: "service_account_at",
        cell: |c| {
            c.row
                .identity
                .service_account_at
                .clone()
                .unwrap_or_default()
        },
    },
    Column {
        name: "finished_at",
        cell: |c| c.finished_at.to_owned(),
    },
    Column {
        name: "previous_service_account",
        cell: |c| flag_text(c.row.previous.as_ref().map(|p| p.marked)).to_owned(),
    },
    Column {
        name: "previous_reason",
        cell: |c| {
            c.row
                .previous
                .as_ref()
                .and_then(|p| p.reason.clone())
                .unwrap_or_default()
        },
    },
    Column {
        name: "kind",
        cell: |c| c.kind.path_segment().to_owned(),
    },
    Column {
        name: "api",
        cell: |c| c.api.to_owned(),
    },
    Column {
        name: "source",
        cell: |c| source_text(c.row.rule.as_deref()),
    },
    Column {
        name: "verified",
        cell: |c| verified_text(c.row.verified).to_owned(),
    },
    Column {
        name: "baseline_service_account",
        cell: |c| flag_text(c.row.baseline.as_ref().map(|b| b.marked)).to_owned(),
    },
    Column {
        name: "baseline_reason",
        cell: |c| {
            c.row
                .baseline
                .as_ref()
                .map_or_else(String::new, |b| b.reason.clone())
        },
    },
    Column {
        name: "linked_user",
        cell: |c| c.row.link.as_ref().map_or("", |l| l.link.cell()).to_owned(),
    },
    Column {
        name: "previous_linked_user",
        cell: |c| {
            c.row
                .previous
                .as_ref()
                .and_then(|p| p.link.as_ref())
                .map_or("", Link::cell)
                .to_owned()
        },
    },
];

/// The header of a report whose input decides `access`: the fixed columns, then each
/// toggle's decision and its state before the run.
pub(crate) fn report_header(access: &[&'static AccessField]) -> Vec<&'static str> {
    let fixed = COLUMNS.iter().map(|column| column.name);
    let toggles = access
        .iter()
        .flat_map(|field| [field.report_column, field.report_previous_column]);
    fixed.chain(toggles).collect()
}

/// A toggle's cells: what the row asks, and Drata's value before the run.
fn access_cells(row: &ReportRow, field: &AccessField) -> [&'static str; 2] {
    let asked = { row.access.iter() }
        .find(|request| request.access == field.access)
        .map(|request| request.on);
    let before = row
        .previous
        .as_ref()
        .and_then(|p| p.access.get(field.access));
    [flag_text(asked), flag_text(before)]
}

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
    /// The access toggles the input decides: a column pair each.
    access: Vec<&'static AccessField>,
}

impl ReportWriter {
    pub(crate) fn new(
        file: File,
        kind: IdentityKind,
        api: String,
        access: Vec<&'static AccessField>,
    ) -> io::Result<Self> {
        let mut csv = csv::WriterBuilder::new()
            .buffer_capacity(16 * 1024)
            .from_writer(file);
        csv.write_record(report_header(&access))?;
        csv.flush()?;
        Ok(Self {
            csv,
            kind,
            api,
            access,
        })
    }

    /// Writes one row and hands it to the OS at once, so a killed run keeps it.
    pub(crate) fn write(&mut self, row: &ReportRow, finished_at: SystemTime) -> io::Result<()> {
        let finished_at = humantime::format_rfc3339_millis(finished_at).to_string();
        let source = CellSource {
            row,
            kind: self.kind,
            api: &self.api,
            finished_at: &finished_at,
        };
        let fixed = COLUMNS.iter().map(|column| (column.cell)(&source));
        let toggles = { self.access.iter() }
            .flat_map(|field| access_cells(row, field))
            .map(str::to_owned);
        let cells: Vec<String> = fixed.chain(toggles).collect();
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
    let mut records = reader.records();
    let header: Vec<String> = match records.next() {
        Some(header) => header?.iter().map(str::to_owned).collect(),
        None => Vec::new(),
    };
    writer.write_record(&header)?;
    // Cells are found by the header's names, never by position.
    let column = |name: &str| header.iter().position(|c| c == name);
    let (Some(line_at), Some(id_at)) = (column("line"), column("id")) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the report has no line or id column",
        ));
    };
    let text = |value: &Option<String>| value.as_deref().unwrap_or("").to_owned();
    for record in records {
        let mut cells: Vec<String> = record?.iter().map(str::to_owned).collect();
        // A rule's row has an empty line: 0, as in `checked_key`.
        let line = cells.get(line_at).map(|line| match line.as_str() {
            "" => Some(0),
            line => line.parse::<u64>().ok(),
        });
        let id = cells.get(id_at).and_then(|id| id.parse::<u64>().ok());
        let row = match (line.flatten(), id) {
            (Some(line), Some(id)) => checked.get(&(line, id)),
            _ => None,
        };
        if let (Some(row), true) = (row, cells.len() == header.len()) {
            let settled = [
                ("outcome", row.outcome.as_str().to_owned()),
                ("error", echoed(&row.error)),
                ("username", echoed(&text(&row.identity.username))),
                ("email", echoed(&text(&row.identity.email))),
                ("service_account_at", text(&row.identity.service_account_at)),
                ("verified", verified_text(row.verified).to_owned()),
            ];
            for (name, value) in settled {
                if let Some(cell) = column(name).and_then(|at| cells.get_mut(at)) {
                    *cell = spreadsheet_safe(&value).into_owned();
                }
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
