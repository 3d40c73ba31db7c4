//! The evidence as a workbook: `Summary` (one fact a row), `Changes` (every identity
//! changed, sorted by id) and `Report` (every row of the report file, as written).
//!
//! Auditors print it or file it as a PDF, so every sheet is laid out for paper: landscape,
//! one page wide (the id, the first column, is on every page), the header row on every page,
//! each column as wide as its text up to [`MAX_WIDTH`], longer text wrapped.

use std::io;
use std::path::Path;

use rust_xlsxwriter::{Format, FormatAlign, Workbook, Worksheet, XlsxError};

use super::markdown::{
    access_text, describe_before, digest_text, link_text, parts_text, verification_text,
    verified_text,
};
use super::{escaped, Before, Facts};
use crate::model::Access;
use crate::text::unprefixed;

/// The columns of the `Changes` sheet.
pub(crate) const CHANGES_COLUMNS: [&str; 12] = [
    "id",
    "username",
    "email",
    "connection",
    "before_service_account",
    "before_reason",
    "after_service_account",
    "after_reason",
    "source",
    "verified",
    "before_linked_user",
    "after_linked_user",
];

/// The `Changes` sheet's columns when the run changed an access toggle.
const ACCESS_COLUMNS: [&str; 2] = ["before_access", "after_access"];

/// The columns of the `Partly applied` sheet: failed rows Drata holds part of.
/// `now_read` says whether the `now_` columns are what the check after the run read (`yes`)
/// or only what is expected (`no, expected`).
pub(crate) const PARTLY_COLUMNS: [&str; 14] = [
    "id",
    "username",
    "email",
    "connection",
    "before_service_account",
    "before_reason",
    "now_service_account",
    "now_reason",
    "before_linked_user",
    "now_linked_user",
    "now_read",
    "applied",
    "error",
    "source",
];

/// Excel's last row (0-based): a report longer than this is cut, and the sheet says so.
const LAST_ROW: u32 = 1_048_575;

/// The widest a column gets, in characters: wider text wraps within it, so that a sheet one
/// page wide still prints at a size people read.
const MAX_WIDTH: usize = 60;

/// The widest the Summary's values get: one column of values has the page to itself.
const MAX_SUMMARY_WIDTH: usize = 90;

/// Room beside the text: the cell's margins, and the header's filter button.
const PADDING: usize = 3;

/// The two cell formats: the header's and the data's. Both align to the top, so that a
/// wrapped cell's first line is level with the id and the other cells of its row.
struct Styles {
    header: Format,
    cell: Format,
}

impl Styles {
    fn new() -> Self {
        let top = Format::new().set_align(FormatAlign::Top).set_text_wrap();
        Self {
            header: top.clone().set_bold(),
            cell: top,
        }
    }
}

/// The height of one line of text, in points (Excel's default row for its default font).
const LINE_HEIGHT: f64 = 15.0;

/// The widths of a sheet's columns, in characters: each its longest line, at most `max`.
struct Widths {
    max: usize,
    chars: Vec<usize>,
}

impl Widths {
    fn new(max: usize) -> Self {
        Self {
            max,
            chars: Vec::new(),
        }
    }

    /// Makes column `col` wide enough for `text`.
    fn fit(&mut self, col: u16, text: &str) {
        let col = usize::from(col);
        if self.chars.len() <= col {
            self.chars.resize(col + 1, 0);
        }
        let longest = text.lines().map(|line| line.chars().count()).max();
        self.chars[col] = self.chars[col].max(longest.unwrap_or(0));
    }

    fn width(&self, col: usize) -> usize {
        self.chars
            .get(col)
            .map_or(self.max, |chars| (*chars).clamp(1, self.max))
    }

    fn set(&self, sheet: &mut Worksheet) -> Result<(), XlsxError> {
        for col in 0..self.chars.len() {
            let width = self.width(col) + PADDING;
            sheet.set_column_width(col as u16, width as f64)?;
        }
        Ok(())
    }

    /// Sets the height of a row whose text wraps to the lines it takes: neither Excel nor
    /// LibreOffice grows a row on opening a file, and a wrapped cell would print over the
    /// next row.
    fn fit_row<S: AsRef<str>>(
        &self,
        sheet: &mut Worksheet,
        row: u32,
        cells: impl IntoIterator<Item = (usize, S)>,
    ) -> Result<(), XlsxError> {
        let lines = { cells.into_iter() }
            .map(|(col, text)| wrapped_lines(text.as_ref(), self.width(col)))
            .max()
            .unwrap_or(1);
        if lines > 1 {
            sheet.set_row_height(row, LINE_HEIGHT * lines as f64)?;
        }
        Ok(())
    }
}

/// The lines `text` takes wrapped at `width` characters, word by word as a spreadsheet
/// wraps (a word longer than the width is cut).
fn wrapped_lines(text: &str, width: usize) -> usize {
    let width = width.max(1);
    let mut lines = 0;
    for line in text.split('\n') {
        lines += 1;
        let mut used = 0;
        for word in line.split(' ') {
            let len = word.chars().count();
            if used > 0 && used + 1 + len > width {
                lines += 1;
                used = 0;
            } else if used > 0 {
                used += 1;
            }
            used += len;
            while used > width {
                lines += 1;
                used -= width;
            }
        }
    }
    lines.max(1)
}

/// How every sheet prints: landscape, one page wide and as many long as it takes, the
/// header row on every page, with gridlines so that a row is followed across the page.
fn print_setup(sheet: &mut Worksheet) -> Result<(), XlsxError> {
    sheet.set_landscape();
    sheet.set_print_fit_to_pages(1, 0);
    sheet.set_print_gridlines(true);
    sheet.set_repeat_rows(0, 0)?;
    Ok(())
}

/// Writes a table whose first column is the id, the rest text (escaped here), laid out for
/// print; returns the last row.
fn write_table(
    sheet: &mut Worksheet,
    header: &[&str],
    rows: &[(u64, Vec<String>)],
    styles: &Styles,
) -> Result<u32, XlsxError> {
    let rows: Vec<(u64, Vec<String>)> = { rows.iter().take(LAST_ROW as usize) }
        .map(|(id, texts)| (*id, texts.iter().map(|text| escaped(text)).collect()))
        .collect();
    let mut widths = Widths::new(MAX_WIDTH);
    for (col, name) in header.iter().enumerate() {
        widths.fit(col as u16, name);
        sheet.write_string_with_format(0, col as u16, *name, &styles.header)?;
    }
    for (id, texts) in &rows {
        widths.fit(0, &id.to_string());
        for (col, text) in texts.iter().enumerate() {
            widths.fit(col as u16 + 1, text);
        }
    }
    widths.set(sheet)?;
    for (at, (id, texts)) in rows.iter().enumerate() {
        let row = at as u32 + 1;
        sheet.write_number_with_format(row, 0, *id as f64, &styles.cell)?;
        for (col, text) in texts.iter().enumerate() {
            sheet.write_string_with_format(row, col as u16 + 1, text, &styles.cell)?;
        }
        widths.fit_row(
            sheet,
            row,
            texts.iter().enumerate().map(|(c, t)| (c + 1, t)),
        )?;
    }
    print_setup(sheet)?;
    Ok(rows.len() as u32)
}

/// Report columns written as numbers, so that a reader can sort and sum them.
const NUMERIC_COLUMNS: [&str; 4] = ["line", "id", "http_status", "attempts"];

pub(super) fn render(facts: &Facts, report: &Path) -> io::Result<Vec<u8>> {
    // The workbook library unwraps its own temporary file's writes (the Report sheet is
    // kept on disk, in constant memory): a full disk there is a panic, which must end as
    // an evidence file not written, never as a run that dies before its summary.
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(facts, report)));
    match built {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(XlsxError::IoError(e))) => Err(e),
        Ok(Err(other)) => Err(io::Error::other(other.to_string())),
        Err(_) => Err(io::Error::other(
            "the workbook could not be written (its temporary file failed: a full disk?)",
        )),
    }
}

fn build(facts: &Facts, report: &Path) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let styles = Styles::new();
    summary_sheet(
        workbook.add_worksheet().set_name("Summary")?,
        facts,
        &styles,
    )?;
    changes_sheet(
        workbook.add_worksheet().set_name("Changes")?,
        facts,
        &styles,
    )?;
    if !facts.partly.is_empty() {
        let sheet = workbook.add_worksheet().set_name("Partly applied")?;
        partly_sheet(sheet, facts, &styles)?;
    }
    let sheet = workbook
        .add_worksheet_with_constant_memory()
        .set_name("Report")?;
    report_sheet(sheet, report, &styles)?;
    workbook.save_to_buffer()
}

/// One fact a row: its name in column A, its value in column B.
fn summary_rows(facts: &Facts) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = vec![
        (
            "Ran by".into(),
            format!("{} on {}", facts.account, facts.host),
        ),
        ("Account".into(), facts.account.clone()),
        ("Host".into(), facts.host.clone()),
        ("Command".into(), facts.command.to_owned()),
        ("Run id".into(), facts.run_id.clone()),
        ("Started".into(), facts.started_at.clone()),
        ("Finished".into(), facts.finished_at.clone()),
        ("Tool".into(), facts.tool.to_owned()),
        ("Version".into(), facts.version.to_owned()),
        ("Command line".into(), facts.command_line.clone()),
        ("Base URL".into(), facts.base_url.clone()),
        ("Identities".into(), facts.kind.to_owned()),
        ("Input".into(), facts.input.path.clone()),
        ("Input SHA-256".into(), digest_text(&facts.input.sha256)),
        ("Report".into(), facts.report.path.clone()),
        ("Report SHA-256".into(), digest_text(&facts.report.sha256)),
    ];
    let (rules, rules_digest) = match &facts.rules {
        Some(file) => (file.path.clone(), digest_text(&file.sha256)),
        None => ("none".to_owned(), "none".to_owned()),
    };
    rows.push(("Rules".into(), rules));
    rows.push(("Rules SHA-256".into(), rules_digest));
    rows.push(("Exit code".into(), facts.exit_code.to_string()));
    rows.push((
        "Stopped".into(),
        facts.stopped.clone().unwrap_or_else(|| "no".to_owned()),
    ));
    rows.push(("Rows".into(), facts.rows.to_string()));
    for (outcome, count) in &facts.counts {
        rows.push((format!("Rows {outcome}"), count.to_string()));
    }
    rows.push(("Identities changed".into(), facts.changes.len().to_string()));
    rows.push((
        "Identities partly applied".into(),
        facts.partly.len().to_string(),
    ));
    rows.push(("Verification".into(), verification_text(facts.verification)));
    rows.push(("Drifted".into(), facts.drifted.to_string()));
    rows.push(("Conflicts".into(), facts.conflicts.to_string()));
    rows.push(("Requests".into(), facts.requests.to_string()));
    rows.push(("Retries".into(), facts.retries.to_string()));
    rows.push(("429 answers".into(), facts.rate_limited.to_string()));
    rows.push((
        "Rows not in the report".into(),
        facts.unrecorded_rows.to_string(),
    ));
    for output in &facts.unwritten_outputs {
        rows.push(("Not written".into(), output.clone()));
    }
    rows
}

/// The facts as label and value pairs, on one page: two columns, as tall as the facts are.
fn summary_sheet(sheet: &mut Worksheet, facts: &Facts, styles: &Styles) -> Result<(), XlsxError> {
    let rows: Vec<(String, String)> = { summary_rows(facts).into_iter() }
        .map(|(name, value)| (name, escaped(&value)))
        .collect();
    let mut widths = Widths::new(MAX_SUMMARY_WIDTH);
    for (name, value) in std::iter::once(&("fact".to_owned(), "value".to_owned())).chain(&rows) {
        widths.fit(0, name);
        widths.fit(1, value);
    }
    widths.set(sheet)?;
    sheet.write_string_with_format(0, 0, "fact", &styles.header)?;
    sheet.write_string_with_format(0, 1, "value", &styles.header)?;
    for (at, (name, value)) in rows.iter().enumerate() {
        let row = at as u32 + 1;
        sheet.write_string_with_format(row, 0, name, &styles.header)?;
        sheet.write_string_with_format(row, 1, value, &styles.cell)?;
        widths.fit_row(sheet, row, [(0, name), (1, value)])?;
    }
    print_setup(sheet)?;
    sheet.set_print_fit_to_pages(1, 1);
    Ok(())
}

/// The access toggles of a change, before or after: `admin access on; …`.
fn access_cell(access: &[(Access, Option<bool>, bool)], after: bool) -> String {
    access_text(access, after)
        .trim_start_matches("; ")
        .to_owned()
}

fn changes_sheet(sheet: &mut Worksheet, facts: &Facts, styles: &Styles) -> Result<(), XlsxError> {
    // The access columns only when a toggle changed: a run that decides none keeps the
    // sheet as it was.
    let access = facts.changes.iter().any(|change| !change.access.is_empty());
    let columns: Vec<&str> = { CHANGES_COLUMNS.iter().copied() }
        .chain(ACCESS_COLUMNS.into_iter().filter(|_| access))
        .collect();
    let flag = |marked: bool| if marked { "true" } else { "false" };
    let mut rows = Vec::with_capacity(facts.changes.len());
    for change in &facts.changes {
        let (before_flag, before_reason) = match &change.before {
            Before::Known(state) => (
                flag(state.marked).to_owned(),
                state.reason.clone().unwrap_or_default(),
            ),
            other => (describe_before(other), String::new()),
        };
        let texts = [
            change.username.clone(),
            change.email.clone(),
            change.connection.clone(),
            before_flag,
            before_reason,
            flag(change.after.marked).to_owned(),
            change.after.reason.clone().unwrap_or_default(),
            change.source.clone(),
            verified_text(change.verified).to_owned(),
            // Empty when the run did not decide links.
            change.link.as_ref().map_or(String::new(), |(before, _)| {
                link_text(before.as_ref()).to_owned()
            }),
            change
                .link
                .as_ref()
                .map_or(String::new(), |(_, after)| after.describe().to_owned()),
            // Empty when the change made none.
            access_cell(&change.access, false),
            access_cell(&change.access, true),
        ];
        rows.push((change.id, texts[..columns.len() - 1].to_vec()));
    }
    let last = write_table(sheet, &columns, &rows, styles)?;
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, last, columns.len() as u16 - 1)?;
    Ok(())
}

fn flag_text(marked: bool) -> &'static str {
    if marked {
        "true"
    } else {
        "false"
    }
}

/// The flag and reason cells of a state before the run.
fn before_cells(before: &Before) -> (String, String) {
    match before {
        Before::Known(state) => (
            flag_text(state.marked).to_owned(),
            state.reason.clone().unwrap_or_default(),
        ),
        other => (describe_before(other), String::new()),
    }
}

fn partly_sheet(sheet: &mut Worksheet, facts: &Facts, styles: &Styles) -> Result<(), XlsxError> {
    let mut rows = Vec::with_capacity(facts.partly.len());
    for partly in &facts.partly {
        let (before_flag, before_reason) = before_cells(&partly.before);
        let (now_flag, now_reason) = match &partly.now {
            Some(state) => (
                flag_text(state.marked).to_owned(),
                state.reason.clone().unwrap_or_default(),
            ),
            None => ("unknown".to_owned(), String::new()),
        };
        // Empty when the run did not decide links.
        let (before_link, now_link) = match &partly.link {
            Some((before, now)) => (
                link_text(before.as_ref()).to_owned(),
                link_text(now.as_ref()).to_owned(),
            ),
            None => (String::new(), String::new()),
        };
        let texts = [
            partly.username.clone(),
            partly.email.clone(),
            partly.connection.clone(),
            before_flag,
            before_reason,
            now_flag,
            now_reason,
            before_link,
            now_link,
            if partly.now_read {
                "yes"
            } else {
                "no, expected"
            }
            .to_owned(),
            parts_text(partly.applied),
            partly.error.clone(),
            partly.source.clone(),
        ];
        rows.push((partly.id, texts.to_vec()));
    }
    let last = write_table(sheet, &PARTLY_COLUMNS, &rows, styles)?;
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, last, PARTLY_COLUMNS.len() as u16 - 1)?;
    Ok(())
}

/// The report file's records, header first.
fn report_records(report: &Path) -> Result<csv::StringRecordsIntoIter<std::fs::File>, XlsxError> {
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(report)
        .map_err(|e| XlsxError::IoError(io::Error::other(e.to_string())))?;
    Ok(reader.into_records())
}

fn csv_error(e: csv::Error) -> XlsxError {
    XlsxError::IoError(io::Error::other(e.to_string()))
}

/// The widths of the report's columns, read before the sheet is written: a sheet in
/// constant memory takes its widths before its rows.
fn report_widths(report: &Path) -> Result<Widths, XlsxError> {
    let mut widths = Widths::new(MAX_WIDTH);
    for (at, record) in report_records(report)?.enumerate() {
        if at as u32 > LAST_ROW {
            break;
        }
        for (col, cell) in record.map_err(csv_error)?.iter().enumerate() {
            widths.fit(col as u16, &escaped(unprefixed(cell)));
        }
    }
    Ok(widths)
}

/// The report file as it was written, cell for cell: the safety prefix of a formula-like
/// cell is undone (a workbook's text cell is never run), numbers are numbers.
fn report_sheet(sheet: &mut Worksheet, report: &Path, styles: &Styles) -> Result<(), XlsxError> {
    let widths = report_widths(report)?;
    widths.set(sheet)?;
    print_setup(sheet)?;
    let mut numeric = Vec::new();
    for (at, record) in report_records(report)?.enumerate() {
        let record = record.map_err(csv_error)?;
        let row = at as u32;
        if row > LAST_ROW {
            tracing::warn!(
                "the evidence workbook's Report sheet holds the first {LAST_ROW} rows only (a sheet's limit); the report file has them all"
            );
            break;
        }
        let texts = record.iter().map(|cell| escaped(unprefixed(cell)));
        widths.fit_row(sheet, row, texts.enumerate())?;
        for (col, cell) in record.iter().enumerate() {
            let col16 = col as u16;
            if row == 0 {
                numeric.push(NUMERIC_COLUMNS.contains(&cell));
                sheet.write_string_with_format(0, col16, cell, &styles.header)?;
                continue;
            }
            let number = numeric
                .get(col)
                .copied()
                .unwrap_or(false)
                .then(|| cell.parse::<u64>().ok())
                .flatten();
            match number {
                Some(number) => {
                    sheet.write_number_with_format(row, col16, number as f64, &styles.cell)?
                }
                None => sheet.write_string_with_format(
                    row,
                    col16,
                    escaped(unprefixed(cell)),
                    &styles.cell,
                )?,
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_wraps_word_by_word_and_a_long_word_is_cut() {
        assert_eq!(wrapped_lines("", 10), 1);
        assert_eq!(wrapped_lines("short", 10), 1);
        assert_eq!(wrapped_lines("exactly 10", 10), 1);
        assert_eq!(wrapped_lines("two words", 5), 2);
        assert_eq!(wrapped_lines("one\ntwo", 10), 2);
        assert_eq!(wrapped_lines("abcdefghijklmnopqrstuvwxy", 10), 3);
        assert_eq!(wrapped_lines("a bb ccc dddd", 4), 3);
    }
}
