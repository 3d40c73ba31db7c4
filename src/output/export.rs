//! The export: every identity of a kind as a row of the input format, as CSV (plain, or
//! for Excel with a BOM and CRLF) or as an `.xlsx` workbook. The only place export cells
//! and suggestion texts are made.

use std::io::{self, Write};

use rust_xlsxwriter::{DataValidation, Format, Workbook, Worksheet, XlsxError};

use super::report::spreadsheet_safe;
use crate::suggest::{Clue, Suggestion};

/// The export's columns, in order (`docs/export.md`): the input's three first.
pub(crate) const EXPORT_COLUMNS: [&str; 11] = [
    "id",
    "serviceAccount",
    "serviceAccountReason",
    "username",
    "email",
    "connection",
    "linkedUser",
    "connectedAt",
    "disconnectedAt",
    "hasMfa",
    "suggestion",
];

/// With `--rules`, after every other column: the rule that would decide the identity.
pub(crate) const RULE_COLUMN: &str = "rule";

/// The workbook's one sheet.
pub(crate) const SHEET_NAME: &str = "identities";

/// Widths of the workbook's columns, in characters.
const COLUMN_WIDTHS: [f64; 11] = [
    10.0, 15.0, 60.0, 28.0, 32.0, 22.0, 32.0, 26.0, 26.0, 9.0, 60.0,
];

/// The byte-order mark Excel needs to read a CSV as UTF-8.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One identity as the export shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ExportRow {
    pub id: u64,
    pub marked: bool,
    pub reason: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub connection_id: Option<u64>,
    pub client_type: Option<String>,
    pub client_alias: Option<String>,
    /// The linked Drata user's email.
    pub linked_user: Option<String>,
    pub connected_at: Option<String>,
    pub disconnected_at: Option<String>,
    pub has_mfa: Option<bool>,
    pub suggestion: Option<Suggestion>,
    /// With `--rules`: the rule that would decide the identity, if one matches.
    pub rule: Option<String>,
}

/// The suggestion column: the clues, joined by `; `.
pub(crate) fn suggestion_text(suggestion: &Suggestion) -> String {
    suggestion
        .clues
        .iter()
        .map(|clue| match clue {
            Clue::NoLinkedUser => "no linked user".to_owned(),
            Clue::NoEmail => "no email".to_owned(),
            Clue::Name(words) => format!(
                "name contains {}",
                words
                    .iter()
                    .map(|w| format!("\"{w}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Clue::ConnectionAllMarked { others } => {
                format!("the other {others} identities of its connection are service accounts")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl ExportRow {
    /// The connection cell: client type and alias, or `#id` when neither is known.
    fn connection(&self) -> String {
        let named: Vec<&str> = [&self.client_type, &self.client_alias]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        match (named.is_empty(), self.connection_id) {
            (false, _) => named.join(" "),
            (true, Some(id)) => format!("#{id}"),
            (true, None) => String::new(),
        }
    }

    /// Every cell as text, unescaped.
    fn cells(&self) -> [String; 11] {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        [
            self.id.to_string(),
            bool_text(self.marked).to_owned(),
            text(&self.reason),
            text(&self.username),
            text(&self.email),
            self.connection(),
            text(&self.linked_user),
            text(&self.connected_at),
            text(&self.disconnected_at),
            self.has_mfa.map_or("", bool_text).to_owned(),
            self.suggestion
                .as_ref()
                .map(suggestion_text)
                .unwrap_or_default(),
        ]
    }
}

fn bool_text(flag: bool) -> &'static str {
    if flag {
        "true"
    } else {
        "false"
    }
}

/// Writes the rows as CSV, every text cell formula-safe; `excel` adds a BOM and CRLF;
/// `with_rule` the rule column.
pub(crate) fn write_csv(
    mut out: impl Write,
    rows: &[ExportRow],
    excel: bool,
    with_rule: bool,
) -> io::Result<()> {
    if excel {
        out.write_all(UTF8_BOM)?;
    }
    let terminator = if excel {
        csv::Terminator::CRLF
    } else {
        csv::Terminator::Any(b'\n')
    };
    let mut csv = csv::WriterBuilder::new()
        .terminator(terminator)
        .buffer_capacity(64 * 1024)
        .from_writer(out);
    let rule_header = with_rule.then_some(RULE_COLUMN);
    csv.write_record(EXPORT_COLUMNS.into_iter().chain(rule_header))
        .map_err(io_error)?;
    for row in rows {
        let rule = with_rule.then(|| row.rule.clone().unwrap_or_default());
        let cells = row.cells().into_iter().chain(rule);
        csv.write_record(cells.map(|c| spreadsheet_safe(&c).into_owned()))
            .map_err(io_error)?;
    }
    csv.flush()?;
    let mut out = csv.into_inner().map_err(|e| e.into_error())?;
    out.flush()
}

/// The I/O error inside a CSV error as it was, so that a closed pipe is still seen as one
/// (csv's own conversion turns every error into `ErrorKind::Other`).
fn io_error(error: csv::Error) -> io::Error {
    if !error.is_io_error() {
        return io::Error::other(error);
    }
    match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// The rows as an `.xlsx` workbook: one sheet, a frozen and filterable header, ids as
/// text, a true/false drop-down on the flag column, wide reason and suggestion columns.
/// Cells are typed strings, which a spreadsheet never runs as formulas.
pub(crate) fn xlsx_bytes(rows: &[ExportRow], with_rule: bool) -> io::Result<Vec<u8>> {
    let build = || -> Result<Vec<u8>, XlsxError> {
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.set_name(SHEET_NAME)?;
        write_sheet(sheet, rows, with_rule)?;
        workbook.save_to_buffer()
    };
    build().map_err(io::Error::other)
}

fn write_sheet(
    sheet: &mut Worksheet,
    rows: &[ExportRow],
    with_rule: bool,
) -> Result<(), XlsxError> {
    let header = Format::new().set_bold();
    let as_text = Format::new().set_num_format("@");
    for (col, (name, width)) in EXPORT_COLUMNS.iter().zip(COLUMN_WIDTHS).enumerate() {
        let col = col as u16;
        sheet.write_string_with_format(0, col, *name, &header)?;
        sheet.set_column_width(col, width)?;
    }
    let rule_col = EXPORT_COLUMNS.len() as u16;
    if with_rule {
        sheet.write_string_with_format(0, rule_col, RULE_COLUMN, &header)?;
        sheet.set_column_width(rule_col, 24.0)?;
    }
    sheet.set_column_format(0, &as_text)?;
    for (index, row) in rows.iter().enumerate() {
        let at = index as u32 + 1;
        if let (true, Some(rule)) = (with_rule, &row.rule) {
            sheet.write_string(at, rule_col, rule)?;
        }
        for (col, cell) in row.cells().iter().enumerate() {
            if col == 0 {
                sheet.write_string_with_format(at, 0, cell, &as_text)?;
            } else if !cell.is_empty() {
                sheet.write_string(at, col as u16, cell)?;
            }
        }
    }
    let last_row = (rows.len() as u32).max(1);
    let last_col = EXPORT_COLUMNS.len() as u16 - u16::from(!with_rule);
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, last_row, last_col)?;
    let flag = DataValidation::new()
        .allow_list_strings(&["true", "false"])?
        .set_error_title("serviceAccount")?
        .set_error_message("true or false")?;
    sheet.add_data_validation(1, 1, last_row, 1, &flag)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64) -> ExportRow {
        ExportRow {
            id,
            marked: id == 7,
            reason: (id == 7).then(|| "CI runner".to_owned()),
            username: Some(if id == 2 {
                "=HYPERLINK(\"x\")".to_owned()
            } else {
                format!("user{id}")
            }),
            client_type: Some("AWS".to_owned()),
            client_alias: Some("aws-prod".to_owned()),
            has_mfa: Some(id % 2 == 0),
            suggestion: (id == 3).then(|| Suggestion {
                clues: vec![Clue::NoLinkedUser, Clue::Name(vec!["svc", "deploy"])],
            }),
            ..ExportRow::default()
        }
    }

    #[test]
    fn suggestions_read_as_one_line() {
        let suggestion = Suggestion {
            clues: vec![
                Clue::NoLinkedUser,
                Clue::NoEmail,
                Clue::Name(vec!["deploy"]),
                Clue::ConnectionAllMarked { others: 4 },
            ],
        };
        assert_eq!(
            suggestion_text(&suggestion),
            "no linked user; no email; name contains \"deploy\"; \
             the other 4 identities of its connection are service accounts"
        );
    }

    #[test]
    fn csv_cells_are_formula_safe_and_excel_gets_a_bom_and_crlf() {
        let rows = [row(2), row(3), row(7)];
        let mut plain = Vec::new();
        write_csv(&mut plain, &rows, false, false).unwrap();
        let text = String::from_utf8(plain).unwrap();
        assert!(text.starts_with(
            "id,serviceAccount,serviceAccountReason,username,email,connection,linkedUser,\
             connectedAt,disconnectedAt,hasMfa,suggestion\n"
        ));
        assert!(
            text.contains("\n2,false,,\"'=HYPERLINK(\"\"x\"\")\",,AWS aws-prod,,,,true,\n"),
            "{text}"
        );
        assert!(text.contains(
            "\n3,false,,user3,,AWS aws-prod,,,,false,\"no linked user; name contains \"\"svc\"\", \"\"deploy\"\"\"\n"
        ));
        assert!(text.contains("\n7,true,CI runner,user7,"));
        let mut excel = Vec::new();
        write_csv(&mut excel, &rows, true, false).unwrap();
        assert!(excel.starts_with(UTF8_BOM));
        let excel = String::from_utf8(excel[3..].to_vec()).unwrap();
        assert_eq!(excel.matches("\r\n").count(), 4);
        assert_eq!(excel.replace("\r\n", "\n"), text);
    }

    /// A writer that takes `room` bytes, then fails as a closed pipe does.
    struct ClosedAfter {
        room: usize,
    }

    impl Write for ClosedAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_stays_a_closed_pipe_wherever_it_is_met() {
        let rows: Vec<ExportRow> = (1..=10_000).map(row).collect();
        for room in [0, 10, 70_000, 300_000] {
            let error = write_csv(ClosedAfter { room }, &rows, false, false).unwrap_err();
            assert_eq!(
                error.kind(),
                io::ErrorKind::BrokenPipe,
                "after {room} bytes"
            );
        }
    }

    #[test]
    fn connection_cells_fall_back_to_the_id() {
        let mut row = row(1);
        row.client_alias = None;
        assert_eq!(row.connection(), "AWS");
        row.client_type = None;
        row.connection_id = Some(9);
        assert_eq!(row.connection(), "#9");
        row.connection_id = None;
        assert_eq!(row.connection(), "");
    }

    #[test]
    fn a_workbook_is_a_zip() {
        let bytes = xlsx_bytes(&[row(1), row(7)], false).unwrap();
        assert!(bytes.starts_with(b"PK\x03\x04"));
        assert!(xlsx_bytes(&[], false).unwrap().starts_with(b"PK"));
    }
}
