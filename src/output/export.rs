//! The export: every identity of a kind as a row of the input format, as CSV (plain, or
//! for Excel with a BOM and CRLF) or as an `.xlsx` workbook. The only place export cells
//! and suggestion texts are made.

use std::io::{self, Write};

use rust_xlsxwriter::{Color, DataValidation, Format, Note, Workbook, Worksheet, XlsxError};

use super::report::spreadsheet_safe;
use crate::field::{AccessField, ACCESS};
use crate::model::Toggles;
use crate::suggest::{Clue, Suggestion};

/// The export's columns, in order (`docs/export.md`): the input's three first, then what
/// identifies the identity and the link, the access toggles of the kind after the link
/// ([`ExportLayout`]), and the state the export read last (the baseline a later
/// `plan`/`apply` compares the edits with; `drataLinkedUser` is the link at export, the
/// toggles' baselines follow it).
const EDITABLE_COLUMNS: [&str; 7] = [
    "id",
    "serviceAccount",
    "serviceAccountReason",
    "username",
    "email",
    "connection",
    "linkedUser",
];
/// After the toggles, before the rule column.
const FACT_COLUMNS: [&str; 4] = ["connectedAt", "disconnectedAt", "hasMfa", "suggestion"];
/// The baseline columns, which the reviewer must not edit: the toggles' go before
/// `exportedAt`, which stays last.
const BASELINE_COLUMNS: [&str; 3] = ["drataServiceAccount", "drataReason", "drataLinkedUser"];
const EXPORTED_AT: &str = "exportedAt";

/// With `--rules`: the rule that would decide the identity, placed before the baseline
/// columns so that those stay the last ones.
pub(crate) const RULE_COLUMN: &str = "rule";

/// What the workbook says on the baseline columns' headers.
pub(crate) const BASELINE_NOTE: &str = "as Drata had it at export: do not edit";

/// The workbook's one sheet.
pub(crate) const SHEET_NAME: &str = "identities";

/// Width of a column of the workbook, in characters.
fn column_width(name: &str) -> f64 {
    match name {
        "id" => 10.0,
        "serviceAccount" => 15.0,
        "serviceAccountReason" | "suggestion" | "drataReason" => 60.0,
        "username" => 28.0,
        "email" | "linkedUser" | "drataLinkedUser" => 32.0,
        "connection" | "exportedAt" => 22.0,
        "connectedAt" | "disconnectedAt" => 26.0,
        "hasMfa" => 9.0,
        RULE_COLUMN => 24.0,
        _ => 20.0,
    }
}

/// Which columns an export has besides the fixed ones: the rule column (`--rules`), and
/// the access toggles of the kind it lists.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExportLayout {
    pub with_rule: bool,
    pub access: Vec<&'static AccessField>,
}

impl ExportLayout {
    /// The header, in order.
    fn header(&self) -> Vec<&'static str> {
        let mut header = EDITABLE_COLUMNS.to_vec();
        header.extend(self.access.iter().map(|field| field.column));
        header.extend(FACT_COLUMNS);
        if self.with_rule {
            header.push(RULE_COLUMN);
        }
        header.extend(BASELINE_COLUMNS);
        header.extend(self.access.iter().map(|field| field.baseline_column));
        header.push(EXPORTED_AT);
        header
    }

    /// True for a column of the state the export read.
    fn is_baseline(name: &str) -> bool {
        BASELINE_COLUMNS.contains(&name)
            || name == EXPORTED_AT
            || ACCESS.iter().any(|field| field.baseline_column == name)
    }

    /// True for a column the reviewer answers `true`/`false` in: a drop-down.
    fn is_flag(name: &str) -> bool {
        name == "serviceAccount" || ACCESS.iter().any(|field| field.column == name)
    }
}

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
    /// Its access toggles, as the listing showed them.
    pub access: Toggles,
    /// When the listing was read (RFC 3339), the same on every row.
    pub exported_at: String,
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

    /// The cell of column `name`, unescaped.
    fn cell(&self, name: &str) -> String {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let toggle = |name: &str, baseline: bool| {
            let field = ACCESS.iter().find(|field| {
                name == if baseline {
                    field.baseline_column
                } else {
                    field.column
                }
            })?;
            Some(bool_text(self.access.get(field.access).unwrap_or(false)).to_owned())
        };
        match name {
            "id" => self.id.to_string(),
            "serviceAccount" | "drataServiceAccount" => bool_text(self.marked).to_owned(),
            "serviceAccountReason" | "drataReason" => text(&self.reason),
            "username" => text(&self.username),
            "email" => text(&self.email),
            "connection" => self.connection(),
            "linkedUser" | "drataLinkedUser" => text(&self.linked_user),
            "connectedAt" => text(&self.connected_at),
            "disconnectedAt" => text(&self.disconnected_at),
            "hasMfa" => self.has_mfa.map_or("", bool_text).to_owned(),
            "suggestion" => self
                .suggestion
                .as_ref()
                .map(suggestion_text)
                .unwrap_or_default(),
            RULE_COLUMN => self.rule.clone().unwrap_or_default(),
            EXPORTED_AT => self.exported_at.clone(),
            other => toggle(other, false)
                .or_else(|| toggle(other, true))
                .unwrap_or_default(),
        }
    }

    /// The row's cells in the order of the layout's header.
    fn row_cells(&self, layout: &ExportLayout) -> Vec<String> {
        layout
            .header()
            .into_iter()
            .map(|name| self.cell(name))
            .collect()
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
    layout: &ExportLayout,
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
    csv.write_record(layout.header()).map_err(io_error)?;
    for row in rows {
        let cells = row.row_cells(layout);
        csv.write_record(cells.iter().map(|c| spreadsheet_safe(c).into_owned()))
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
/// Also returns the ids whose rows had a cell cut to Excel's limit.
pub(crate) fn xlsx_bytes(
    rows: &[ExportRow],
    layout: &ExportLayout,
) -> io::Result<(Vec<u8>, Vec<u64>)> {
    let build = || -> Result<(Vec<u8>, Vec<u64>), XlsxError> {
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.set_name(SHEET_NAME)?;
        let cut = write_sheet(sheet, rows, layout)?;
        Ok((workbook.save_to_buffer()?, cut))
    };
    build().map_err(io::Error::other)
}

/// The most characters a workbook cell holds (Excel's limit).
const XLSX_CELL_CHARS: usize = 32_767;

/// Writes the sheet; returns the ids of rows with a cell cut to [`XLSX_CELL_CHARS`].
fn write_sheet(
    sheet: &mut Worksheet,
    rows: &[ExportRow],
    layout: &ExportLayout,
) -> Result<Vec<u64>, XlsxError> {
    let mut cut_ids = Vec::new();
    let header = Format::new().set_bold();
    let as_text = Format::new().set_num_format("@");
    // The baseline is grey: what Drata had, for the tool, not for the reviewer.
    let grey = Format::new()
        .set_font_color(Color::RGB(0x59_59_59))
        .set_background_color(Color::RGB(0xE7_E6_E6));
    let grey_header = grey.clone().set_bold();
    let names = layout.header();
    for (col, name) in names.iter().enumerate() {
        let baseline = ExportLayout::is_baseline(name);
        let col = col as u16;
        sheet.write_string_with_format(
            0,
            col,
            *name,
            if baseline { &grey_header } else { &header },
        )?;
        sheet.set_column_width(col, column_width(name))?;
        if baseline {
            sheet.insert_note(0, col, &Note::new(BASELINE_NOTE).add_author_prefix(false))?;
        }
    }
    sheet.set_column_format(0, &as_text)?;
    for (index, row) in rows.iter().enumerate() {
        let at = index as u32 + 1;
        for (col, cell) in row.row_cells(layout).iter().enumerate() {
            let safe = crate::text::file_safe(cell);
            let cut = crate::text::cut_visibly(&safe, XLSX_CELL_CHARS);
            if cut.is_some() && cut_ids.last() != Some(&row.id) {
                cut_ids.push(row.id);
            }
            let cell = cut.as_deref().unwrap_or(&safe);
            if col == 0 {
                sheet.write_string_with_format(at, 0, cell, &as_text)?;
            } else if ExportLayout::is_baseline(names[col]) {
                sheet.write_string_with_format(at, col as u16, cell, &grey)?;
            } else if !cell.is_empty() {
                sheet.write_string(at, col as u16, cell)?;
            }
        }
    }
    let last_row = (rows.len() as u32).max(1);
    let last_col = names.len() as u16 - 1;
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, last_row, last_col)?;
    for (col, name) in names.iter().enumerate() {
        if !ExportLayout::is_flag(name) {
            continue;
        }
        let flag = DataValidation::new()
            .allow_list_strings(&["true", "false"])?
            .set_error_title(*name)?
            .set_error_message("true or false")?;
        sheet.add_data_validation(1, col as u16, last_row, col as u16, &flag)?;
    }
    Ok(cut_ids)
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
            has_mfa: Some(id.is_multiple_of(2)),
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
        write_csv(&mut plain, &rows, false, &ExportLayout::default()).unwrap();
        let text = String::from_utf8(plain).unwrap();
        assert!(text.starts_with(
            "id,serviceAccount,serviceAccountReason,username,email,connection,linkedUser,\
             connectedAt,disconnectedAt,hasMfa,suggestion,drataServiceAccount,drataReason,drataLinkedUser,exportedAt\n"
        ));
        assert!(
            text.contains(
                "\n2,false,,\"'=HYPERLINK(\"\"x\"\")\",,AWS aws-prod,,,,true,,false,,,\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "\n3,false,,user3,,AWS aws-prod,,,,false,\"no linked user; name contains \"\"svc\"\", \"\"deploy\"\"\",false,,,\n"
        ));
        assert!(text.contains("\n7,true,CI runner,user7,"));
        let mut excel = Vec::new();
        write_csv(&mut excel, &rows, true, &ExportLayout::default()).unwrap();
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
            let error = write_csv(ClosedAfter { room }, &rows, false, &ExportLayout::default())
                .unwrap_err();
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
        let (bytes, cut) = xlsx_bytes(&[row(1), row(7)], &ExportLayout::default()).unwrap();
        assert!(bytes.starts_with(b"PK\x03\x04"));
        assert!(cut.is_empty());
        assert!(xlsx_bytes(&[], &ExportLayout::default())
            .unwrap()
            .0
            .starts_with(b"PK"));
    }

    #[test]
    fn a_cell_beyond_excels_limit_is_cut_visibly_and_the_rest_exported() {
        use calamine::{Reader, Xlsx};
        let mut long = row(7);
        long.username = Some(format!("\u{202e}{}", "n".repeat(40_000)));
        let (bytes, cut) = xlsx_bytes(&[row(1), long, row(9)], &ExportLayout::default()).unwrap();
        assert_eq!(cut, vec![7], "the identity is named");
        let mut workbook = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        let sheet = workbook.worksheet_range(SHEET_NAME).unwrap();
        let cells: Vec<String> = sheet.rows().map(|r| r[3].to_string()).collect();
        assert_eq!(cells.len(), 4, "every row exported");
        assert!(
            cells[2].starts_with("\\u{202e}nnn"),
            "escaped: {}",
            &cells[2][..12]
        );
        assert!(cells[2].ends_with(" characters]"), "marked");
        assert!(cells[2].contains("… [cut: "), "marked");
        assert!(cells[2].chars().count() <= XLSX_CELL_CHARS);
    }
}
