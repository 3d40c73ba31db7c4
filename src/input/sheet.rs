//! Spreadsheet inputs (`.xlsx`, `.xlsm`, `.xls`, `.ods`), read with `calamine`, as a person
//! sees them: the sheet shown when the file opens (`--sheet NAME` for another, hidden ones
//! included), each row under the sheet's own row number, and each cell kept with its type,
//! so that a date, an error or a formula without a saved value is never taken for an id or
//! a reason (see [`Cell::problem`]).
//!
//! A workbook is known by its first bytes, not its name. Its bounds are checked before
//! anything is loaded (see [`super::bounds`]); `.xlsx` cells are streamed into a sparse
//! store, so memory follows the cells present, never the declared dimension.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read, Seek};

use calamine::{Data, DataRef, ExcelDateTime, Ods, Reader, SheetType, SheetVisible, Xls, Xlsx};
use thiserror::Error;

use super::bounds::{self, column_letters, BoundsError, Format};

/// The largest integer a float cell holds exactly (2^53).
const EXACT_FLOAT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// The first bytes of a zip archive and of an OLE compound file (`.xls`).
const ZIP_SIGNATURE: &[u8] = b"PK\x03\x04";
const OLE_SIGNATURE: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
/// How many leading bytes tell a workbook.
pub(crate) const SIGNATURE_LEN: usize = 8;

/// `Some(zip or OLE)` when the bytes start a workbook: which one a zip is, is read
/// from its parts by [`format_of_zip`].
pub(crate) fn has_signature(start: &[u8]) -> bool {
    start.starts_with(ZIP_SIGNATURE) || start.starts_with(OLE_SIGNATURE)
}

#[derive(Debug, Error)]
pub enum SheetError {
    #[error("cannot read the spreadsheet: {0}")]
    Read(#[from] calamine::Error),
    #[error("cannot read the spreadsheet: {0}")]
    Xlsx(#[from] calamine::XlsxError),
    #[error("cannot read the spreadsheet: {0}")]
    Xls(#[from] calamine::XlsError),
    #[error("cannot read the spreadsheet: {0}")]
    Ods(#[from] calamine::OdsError),
    #[error("cannot read the spreadsheet: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Bounds(#[from] BoundsError),
    #[error("a zip archive that is neither an .xlsx nor an .ods workbook")]
    NotAWorkbook,
    #[error("the spreadsheet has no sheet")]
    NoSheet,
    #[error("the spreadsheet has no visible sheet (it has {found}); name one with --sheet")]
    NoVisibleSheet { found: String },
    #[error("the spreadsheet has no sheet named {wanted:?} (it has {found})")]
    NoSuchSheet { wanted: String, found: String },
}

/// A cell as the sheet holds it. Text is boxed: a million rows of three cells are kept.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Text(Box<str>),
    Number(f64),
    Bool(bool),
    /// A date or date-time, as shown (`2023-03-15`).
    Date(Box<str>),
    Time(Box<str>),
    Duration(Box<str>),
    /// `#N/A`, `#REF!`...
    Error(Box<str>),
    /// A formula whose result was never saved (files written by scripts).
    NoValue,
}

/// What a column needs of its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Id,
    Flag,
    Reason,
}

impl Cell {
    fn of_data(data: &Data) -> Option<Self> {
        Some(match data {
            Data::Empty => return None,
            Data::String(text) => Cell::Text(text.as_str().into()),
            Data::Int(number) => Cell::Number(*number as f64),
            Data::Float(number) => Cell::Number(*number),
            Data::Bool(flag) => Cell::Bool(*flag),
            Data::DateTime(date) => Self::of_date(date),
            Data::DateTimeIso(text) => Self::of_iso(text),
            Data::DurationIso(text) => Cell::Duration(text.as_str().into()),
            Data::Error(error) => Cell::Error(error.to_string().into()),
        })
    }

    fn of_ref(data: DataRef<'_>) -> Option<Self> {
        Some(match data {
            DataRef::Empty => return None,
            DataRef::String(text) => Cell::Text(text.into()),
            DataRef::SharedString(text) => Cell::Text(text.into()),
            DataRef::Int(number) => Cell::Number(number as f64),
            DataRef::Float(number) => Cell::Number(number),
            DataRef::Bool(flag) => Cell::Bool(flag),
            DataRef::DateTime(date) => Self::of_date(&date),
            DataRef::DateTimeIso(text) => Self::of_iso(&text),
            DataRef::DurationIso(text) => Cell::Duration(text.into()),
            DataRef::Error(error) => Cell::Error(error.to_string().into()),
        })
    }

    /// A date-formatted number, shown as the sheet shows it (ISO order).
    fn of_date(date: &ExcelDateTime) -> Self {
        if date.is_duration() {
            return Cell::Duration(format!("{}", date.as_f64()).into());
        }
        let (year, month, day, hour, minute, second, _) = date.to_ymd_hms_milli();
        let serial = date.as_f64();
        if serial.abs() < 1.0 {
            Cell::Time(format!("{hour:02}:{minute:02}:{second:02}").into())
        } else if serial.fract() == 0.0 {
            Cell::Date(format!("{year:04}-{month:02}-{day:02}").into())
        } else {
            Cell::Date(
                format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}").into(),
            )
        }
    }

    /// `.ods` dates and times, in ISO 8601 (`2023-03-15`, `PT12H30M00S`).
    fn of_iso(text: &str) -> Self {
        if text.starts_with('P') {
            Cell::Time(text.into())
        } else {
            Cell::Date(text.into())
        }
    }

    /// The text a CSV of the sheet would hold: an integral number as its digits, a
    /// boolean `true`/`false`.
    pub(crate) fn text(&self) -> Cow<'_, str> {
        match self {
            Cell::Text(text) => Cow::Borrowed(text),
            Cell::Number(number) if is_integral(*number) => Cow::Owned(format!("{number:.0}")),
            Cell::Number(number) => Cow::Owned(number.to_string()),
            Cell::Bool(flag) => Cow::Borrowed(if *flag { "true" } else { "false" }),
            Cell::Date(text) | Cell::Time(text) | Cell::Duration(text) | Cell::Error(text) => {
                Cow::Borrowed(text)
            }
            Cell::NoValue => Cow::Borrowed(""),
        }
    }

    /// Why this cell cannot be read for `role`, whatever text it shows; `None` when its
    /// text is to be validated as a CSV cell's would be.
    pub(crate) fn problem(&self, role: Role) -> Option<String> {
        let what =
            match self {
                Cell::Text(_) => return None,
                Cell::NoValue => return Some(
                    "holds a formula with no saved value: open and save the file in a spreadsheet"
                        .to_owned(),
                ),
                Cell::Number(number) => match role {
                    Role::Id | Role::Reason if is_integral(*number) => return None,
                    Role::Flag => return None,
                    Role::Id => format!("the number {number}"),
                    Role::Reason => format!("the number {number} (a fraction or a percentage)"),
                },
                Cell::Bool(flag) => match role {
                    Role::Flag => return None,
                    _ => format!("a boolean ({})", if *flag { "TRUE" } else { "FALSE" }),
                },
                Cell::Date(text) => format!("a date ({text})"),
                Cell::Time(text) => format!("a time ({text})"),
                Cell::Duration(text) => format!("a duration ({text})"),
                Cell::Error(text) => format!("the error {text}"),
            };
        Some(match role {
            Role::Id => format!("holds {what}, not an id: format the column as Text or Number"),
            Role::Flag => format!("holds {what}, not a flag: write true or false"),
            Role::Reason => format!("holds {what}, not text: format the column as Text"),
        })
    }
}

fn is_integral(number: f64) -> bool {
    number.fract() == 0.0 && number.abs() < EXACT_FLOAT_INTEGER
}

/// A cell's name as a spreadsheet writes it: `Review!A7`, `'Old draft'!B2`.
pub(crate) fn cell_name(sheet: &str, column: u32, row: u64) -> String {
    let column = column_letters(column);
    let plain = sheet.chars().all(|c| c.is_alphanumeric() || c == '_');
    if plain {
        format!("{sheet}!{column}{row}")
    } else {
        format!("'{}'!{column}{row}", sheet.replace('\'', "''"))
    }
}

/// One non-empty row: its sheet row number (1-based), and its cells by column (0-based),
/// in column order. Only cells present are kept.
#[derive(Debug, Default)]
pub(crate) struct SheetRow {
    pub line: u64,
    pub cells: Vec<(u32, Cell)>,
}

impl SheetRow {
    pub(crate) fn get(&self, column: usize) -> Option<&Cell> {
        let column = u32::try_from(column).ok()?;
        self.cells
            .binary_search_by_key(&column, |(c, _)| *c)
            .ok()
            .map(|i| &self.cells[i].1)
    }

    /// One past the last column holding a cell.
    pub(crate) fn width(&self) -> usize {
        self.cells.last().map_or(0, |(c, _)| *c as usize + 1)
    }
}

/// The sheet read.
#[derive(Debug, Default)]
pub(crate) struct Sheet {
    pub rows: Vec<SheetRow>,
    pub name: String,
    /// Every sheet's name, in workbook order, for messages.
    pub all: Vec<String>,
}

impl Sheet {
    /// `sheet "Notes" (the workbook has "Notes", "Review")`, for header messages.
    pub(crate) fn described(&self) -> String {
        format!(
            "sheet {:?} (the workbook has {})",
            self.name,
            quoted_list(self.all.iter())
        )
    }
}

fn quoted_list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the workbook says of a sheet.
#[derive(Debug, Clone)]
struct SheetInfo {
    name: String,
    visible: bool,
}

/// The sheet to read: `--sheet` (any case, hidden ones too), else the active sheet when
/// it is visible, else the first visible one.
fn choose(
    sheets: &[SheetInfo],
    active: Option<usize>,
    wanted: Option<&str>,
) -> Result<usize, SheetError> {
    let found = || quoted_list(sheets.iter().map(|s| &s.name));
    if sheets.is_empty() {
        return Err(SheetError::NoSheet);
    }
    if let Some(wanted) = wanted {
        let exact = sheets.iter().position(|s| s.name == wanted);
        let folded = || {
            let wanted = wanted.to_lowercase();
            sheets.iter().position(|s| s.name.to_lowercase() == wanted)
        };
        return exact
            .or_else(folded)
            .ok_or_else(|| SheetError::NoSuchSheet {
                wanted: wanted.to_owned(),
                found: found(),
            });
    }
    active
        .filter(|&i| sheets.get(i).is_some_and(|s| s.visible))
        .or_else(|| sheets.iter().position(|s| s.visible))
        .ok_or_else(|| SheetError::NoVisibleSheet { found: found() })
}

/// `reading sheet "Review" of 3; not read: "Old draft" (hidden), "Notes"`.
fn log_choice(sheets: &[SheetInfo], chosen: usize) {
    let others: Vec<String> = sheets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != chosen)
        .map(|(_, s)| match s.visible {
            true => format!("{:?}", s.name),
            false => format!("{:?} (hidden)", s.name),
        })
        .collect();
    let not_read = match others.is_empty() {
        true => String::new(),
        false => format!("; not read: {}", others.join(", ")),
    };
    tracing::info!(
        "reading sheet {:?} of {}{not_read}",
        sheets[chosen].name,
        sheets.len()
    );
}

fn infos(metadata: &[calamine::Sheet]) -> Vec<SheetInfo> {
    metadata
        .iter()
        .filter(|s| s.typ == SheetType::WorkSheet)
        .map(|s| SheetInfo {
            name: s.name.clone(),
            visible: s.visible == SheetVisible::Visible,
        })
        .collect()
}

/// Reads the sheet of the workbook in `file` (its format read from its content), within
/// `limit` bytes of text.
pub(crate) fn read_sheet(
    file: &File,
    wanted: Option<&str>,
    limit: u64,
) -> Result<Sheet, SheetError> {
    let mut start = [0u8; SIGNATURE_LEN];
    let mut reader = BufReader::new(file.try_clone()?);
    reader.rewind()?;
    reader.read_exact(&mut start)?;
    reader.rewind()?;
    if start.starts_with(OLE_SIGNATURE) {
        return read_xls(reader, wanted);
    }
    let facts = bounds::check_zip(&mut reader, limit)?;
    reader.rewind()?;
    match facts.format {
        Some(Format::Xlsx) => read_xlsx(reader, wanted, facts.active_tab),
        Some(Format::Ods) => {
            let mut workbook = Ods::new(reader)?;
            let sheets = infos(workbook.sheets_metadata());
            let active = facts
                .active_name
                .and_then(|name| sheets.iter().position(|s| s.name == name));
            let chosen = choose(&sheets, active, wanted)?;
            log_choice(&sheets, chosen);
            let name = sheets[chosen].name.clone();
            let range = workbook.worksheet_range(&name)?;
            let formulas = workbook.worksheet_formula(&name)?;
            Ok(dense(range, &formulas, name, &sheets))
        }
        None => Err(SheetError::NotAWorkbook),
    }
}

fn read_xls(reader: BufReader<File>, wanted: Option<&str>) -> Result<Sheet, SheetError> {
    let mut workbook = Xls::new(reader)?;
    let sheets = infos(workbook.sheets_metadata());
    // calamine does not say which sheet of an .xls is active: the first visible one.
    let chosen = choose(&sheets, None, wanted)?;
    log_choice(&sheets, chosen);
    let name = sheets[chosen].name.clone();
    let range = workbook.worksheet_range(&name)?;
    let formulas = workbook.worksheet_formula(&name)?;
    Ok(dense(range, &formulas, name, &sheets))
}

/// A sheet calamine read whole (`.xls`, `.ods`), made sparse; formulas without a value
/// are marked as such.
fn dense(
    range: calamine::Range<Data>,
    formulas: &calamine::Range<String>,
    name: String,
    sheets: &[SheetInfo],
) -> Sheet {
    let mut rows: Vec<SheetRow> = Vec::new();
    for (row, column, data) in range.used_cells() {
        let (row, column) = (row as u32, column as u32);
        let (row, column) = match range.start() {
            Some((r, c)) => (r + row, c + column),
            None => (row, column),
        };
        if let Some(cell) = Cell::of_data(data) {
            push(&mut rows, row, column, cell);
        }
    }
    for (row, column, formula) in formulas.used_cells() {
        let (row, column) = match formulas.start() {
            Some((r, c)) => (r + row as u32, c + column as u32),
            None => (row as u32, column as u32),
        };
        let empty = range
            .get_value((row, column))
            .is_none_or(|d| *d == Data::Empty);
        if !formula.is_empty() && empty {
            insert(&mut rows, row, column, Cell::NoValue);
        }
    }
    Sheet {
        rows,
        name,
        all: sheets.iter().map(|s| s.name.clone()).collect(),
    }
}

/// Appends a cell read in row order.
fn push(rows: &mut Vec<SheetRow>, row: u32, column: u32, cell: Cell) {
    let line = u64::from(row) + 1;
    match rows.last_mut() {
        Some(last) if last.line == line => last.cells.push((column, cell)),
        _ => rows.push(SheetRow {
            line,
            cells: vec![(column, cell)],
        }),
    }
}

/// Puts a cell where it belongs (formulas are read after the values).
fn insert(rows: &mut Vec<SheetRow>, row: u32, column: u32, cell: Cell) {
    let line = u64::from(row) + 1;
    let at = match rows.binary_search_by_key(&line, |r| r.line) {
        Ok(at) => at,
        Err(at) => {
            rows.insert(
                at,
                SheetRow {
                    line,
                    cells: Vec::new(),
                },
            );
            at
        }
    };
    let cells = &mut rows[at].cells;
    match cells.binary_search_by_key(&column, |(c, _)| *c) {
        Ok(i) => cells[i].1 = cell,
        Err(i) => cells.insert(i, (column, cell)),
    }
}

/// An `.xlsx` sheet, streamed cell by cell: no cell beyond Excel's limits, memory as the
/// cells present.
fn read_xlsx(
    reader: BufReader<File>,
    wanted: Option<&str>,
    active: Option<usize>,
) -> Result<Sheet, SheetError> {
    let mut workbook = Xlsx::new(reader)?;
    let sheets = infos(workbook.sheets_metadata());
    let chosen = choose(&sheets, active, wanted)?;
    log_choice(&sheets, chosen);
    let name = sheets[chosen].name.clone();
    let mut rows: Vec<SheetRow> = Vec::new();
    let mut unordered = false;
    {
        let mut cells = workbook.worksheet_cells_reader(&name)?;
        while let Some(cell) = cells.next_cell()? {
            let (row, column) = cell.get_position();
            bounds::check_cell(row, column)?;
            let Some(value) = Cell::of_ref(cell.get_value().clone()) else {
                continue;
            };
            let line = u64::from(row) + 1;
            unordered |= rows.last().is_some_and(|r| {
                r.line > line
                    || (r.line == line && r.cells.last().is_some_and(|(c, _)| *c >= column))
            });
            push(&mut rows, row, column, value);
        }
    }
    if unordered {
        // Cells out of order (hand-made files): sorted, the last of a position kept.
        rows.sort_by_key(|r| r.line);
        for row in &mut rows {
            row.cells.sort_by_key(|(c, _)| *c);
        }
    }
    {
        let mut formulas = workbook.worksheet_cells_reader(&name)?;
        while let Some(formula) = formulas.next_formula()? {
            let (row, column) = formula.get_position();
            if formula.get_value().is_empty() {
                continue;
            }
            let line = u64::from(row) + 1;
            let present = rows
                .binary_search_by_key(&line, |r| r.line)
                .ok()
                .and_then(|i| rows[i].get(column as usize))
                .is_some();
            if !present {
                insert(&mut rows, row, column, Cell::NoValue);
            }
        }
    }
    Ok(Sheet {
        rows,
        name,
        all: sheets.iter().map(|s| s.name.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_a_csv_of_the_sheet_would_hold_them() {
        assert_eq!(Cell::Number(106.0).text(), "106");
        assert_eq!(Cell::Number(1.5).text(), "1.5");
        assert_eq!(Cell::Bool(true).text(), "true");
        assert_eq!(Cell::Text("CI".into()).text(), "CI");
    }

    #[test]
    fn typed_cells_are_refused_where_a_person_would_not_see_the_value() {
        let date = Cell::Date("2023-03-15".into());
        assert_eq!(
            date.problem(Role::Id).unwrap(),
            "holds a date (2023-03-15), not an id: format the column as Text or Number"
        );
        assert!(Cell::Number(0.5)
            .problem(Role::Reason)
            .unwrap()
            .contains("format the column as Text"));
        assert_eq!(Cell::Number(45352.0).problem(Role::Reason), None);
        assert!(Cell::Number(1.5).problem(Role::Id).is_some());
        assert_eq!(Cell::Number(1.0).problem(Role::Id), None);
        assert_eq!(Cell::Bool(true).problem(Role::Flag), None);
        assert!(Cell::Bool(true).problem(Role::Id).is_some());
        assert!(Cell::Error("#N/A".into())
            .problem(Role::Reason)
            .unwrap()
            .contains("the error #N/A"));
        assert!(Cell::NoValue
            .problem(Role::Id)
            .unwrap()
            .contains("open and save the file in a spreadsheet"));
    }

    #[test]
    fn cells_are_named_as_spreadsheets_name_them() {
        assert_eq!(cell_name("Review", 0, 7), "Review!A7");
        assert_eq!(cell_name("Old draft", 27, 2), "'Old draft'!AB2");
        assert_eq!(cell_name("S", 16_383, 1_048_576), "S!XFD1048576");
        assert_eq!(cell_name("Q4_review", 25, 1), "Q4_review!Z1");
        for (column, letters) in [(25, "Z"), (26, "AA"), (701, "ZZ"), (702, "AAA")] {
            assert_eq!(column_letters(column), letters, "{column}");
        }
    }

    #[test]
    fn numbers_are_ids_while_floating_point_holds_them_exactly() {
        assert_eq!(
            Cell::Number(9_007_199_254_740_991.0).problem(Role::Id),
            None
        );
        assert!(Cell::Number(9_007_199_254_740_992.0)
            .problem(Role::Id)
            .is_some());
    }

    #[test]
    fn dates_times_and_durations_read_as_the_sheet_shows_them() {
        use calamine::ExcelDateTimeType::{DateTime, TimeDelta};
        let at = |serial| Cell::of_date(&ExcelDateTime::new(serial, DateTime, false));
        assert_eq!(at(0.5), Cell::Time("12:00:00".into()));
        assert_eq!(at(1.0), Cell::Date("1900-01-01".into()));
        assert_eq!(at(44_197.0), Cell::Date("2021-01-01".into()));
        assert_eq!(at(44_197.75), Cell::Date("2021-01-01 18:00:00".into()));
        assert_eq!(
            Cell::of_date(&ExcelDateTime::new(1.5, TimeDelta, false)),
            Cell::Duration("1.5".into())
        );
        assert_eq!(
            Cell::of_iso("PT12H30M00S"),
            Cell::Time("PT12H30M00S".into())
        );
        assert_eq!(Cell::of_iso("2023-03-15"), Cell::Date("2023-03-15".into()));
    }

    #[test]
    fn an_xlsx_is_read_with_its_cell_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typed.xlsx");
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "id").unwrap();
        sheet.write_number(1, 0, 106).unwrap();
        sheet.write_boolean(1, 1, true).unwrap();
        workbook.save(&path).unwrap();
        let sheet = read_sheet(&File::open(&path).unwrap(), None, u64::MAX).unwrap();
        assert_eq!(sheet.rows[0].get(0), Some(&Cell::Text("id".into())));
        assert_eq!(sheet.rows[1].get(0), Some(&Cell::Number(106.0)));
        assert_eq!(sheet.rows[1].get(1), Some(&Cell::Bool(true)));
    }

    #[test]
    fn the_active_visible_sheet_is_read_else_the_first_visible_one() {
        let sheets = [
            SheetInfo {
                name: "Old draft".into(),
                visible: false,
            },
            SheetInfo {
                name: "Notes".into(),
                visible: true,
            },
            SheetInfo {
                name: "Review".into(),
                visible: true,
            },
        ];
        assert_eq!(choose(&sheets, Some(2), None).unwrap(), 2);
        assert_eq!(choose(&sheets, Some(0), None).unwrap(), 1);
        assert_eq!(choose(&sheets, None, None).unwrap(), 1);
        assert_eq!(choose(&sheets, None, Some("old DRAFT")).unwrap(), 0);
        assert!(choose(&sheets, None, Some("x")).is_err());
    }

    #[test]
    fn workbooks_are_known_by_their_first_bytes() {
        assert!(has_signature(b"PK\x03\x04rest"));
        assert!(has_signature(OLE_SIGNATURE));
        assert!(!has_signature(b"id,flag"));
    }
}

/// `.xls` files made by Excel, from calamine's own test suite (tests/fixtures/).
#[cfg(test)]
mod xls {
    use super::*;

    fn fixture(name: &str) -> File {
        File::open(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn an_xls_date_is_a_date_not_a_number() {
        let sheet = read_sheet(&fixture("excel-date.xls"), None, u64::MAX).unwrap();
        let first = &sheet.rows[0];
        assert_eq!(first.line, 1);
        let cell = first.get(0).unwrap();
        assert_eq!(*cell, Cell::Date("2021-01-01".into()));
        assert!(cell
            .problem(Role::Id)
            .unwrap()
            .contains("holds a date (2021-01-01)"));
        assert!(cell
            .problem(Role::Reason)
            .unwrap()
            .contains("format the column as Text"));
        let duration = sheet
            .rows
            .iter()
            .find(|r| r.line == 3)
            .unwrap()
            .get(0)
            .unwrap();
        assert!(matches!(duration, Cell::Duration(_)), "{duration:?}");
    }

    #[test]
    fn an_xls_hidden_sheet_is_read_only_when_named() {
        let shown = read_sheet(&fixture("excel-any-sheets.xls"), None, u64::MAX).unwrap();
        assert_eq!(shown.name, "Visible");
        let hidden =
            read_sheet(&fixture("excel-any-sheets.xls"), Some("hidden"), u64::MAX).unwrap();
        assert_eq!(hidden.name, "Hidden");
    }
}
