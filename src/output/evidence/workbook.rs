//! The evidence as a workbook: `Summary` (one fact a row), `Changes` (every identity
//! changed, sorted by id) and `Report` (every row of the report file, as written).

use std::io;
use std::path::Path;

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

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
    let bold = Format::new().set_bold();
    summary_sheet(workbook.add_worksheet().set_name("Summary")?, facts, &bold)?;
    changes_sheet(workbook.add_worksheet().set_name("Changes")?, facts, &bold)?;
    if !facts.partly.is_empty() {
        let sheet = workbook.add_worksheet().set_name("Partly applied")?;
        partly_sheet(sheet, facts, &bold)?;
    }
    let sheet = workbook
        .add_worksheet_with_constant_memory()
        .set_name("Report")?;
    report_sheet(sheet, report, &bold)?;
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

fn summary_sheet(sheet: &mut Worksheet, facts: &Facts, bold: &Format) -> Result<(), XlsxError> {
    sheet.write_string_with_format(0, 0, "fact", bold)?;
    sheet.write_string_with_format(0, 1, "value", bold)?;
    sheet.set_column_width(0, 24)?;
    sheet.set_column_width(1, 80)?;
    for (at, (name, value)) in summary_rows(facts).iter().enumerate() {
        let row = at as u32 + 1;
        sheet.write_string_with_format(row, 0, name, bold)?;
        sheet.write_string(row, 1, escaped(value))?;
    }
    Ok(())
}

/// The access toggles of a change, before or after: `admin access on; …`.
fn access_cell(access: &[(Access, Option<bool>, bool)], after: bool) -> String {
    access_text(access, after)
        .trim_start_matches("; ")
        .to_owned()
}

fn changes_sheet(sheet: &mut Worksheet, facts: &Facts, bold: &Format) -> Result<(), XlsxError> {
    // The access columns only when a toggle changed: a run that decides none keeps the
    // sheet as it was.
    let access = facts.changes.iter().any(|change| !change.access.is_empty());
    let columns: Vec<&str> = { CHANGES_COLUMNS.iter().copied() }
        .chain(ACCESS_COLUMNS.into_iter().filter(|_| access))
        .collect();
    for (col, name) in columns.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, *name, bold)?;
    }
    let flag = |marked: bool| if marked { "true" } else { "false" };
    for (at, change) in facts.changes.iter().enumerate() {
        let row = at as u32 + 1;
        if row > LAST_ROW {
            break;
        }
        sheet.write_number(row, 0, change.id as f64)?;
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
        for (col, text) in texts.iter().take(columns.len() - 1).enumerate() {
            sheet.write_string(row, col as u16 + 1, escaped(text))?;
        }
    }
    let last = (facts.changes.len() as u32).min(LAST_ROW);
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

fn partly_sheet(sheet: &mut Worksheet, facts: &Facts, bold: &Format) -> Result<(), XlsxError> {
    for (col, name) in PARTLY_COLUMNS.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, *name, bold)?;
    }
    for (at, partly) in facts.partly.iter().enumerate() {
        let row = at as u32 + 1;
        if row > LAST_ROW {
            break;
        }
        sheet.write_number(row, 0, partly.id as f64)?;
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
        for (col, text) in texts.iter().enumerate() {
            sheet.write_string(row, col as u16 + 1, escaped(text))?;
        }
    }
    let last = (facts.partly.len() as u32).min(LAST_ROW);
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, last, PARTLY_COLUMNS.len() as u16 - 1)?;
    Ok(())
}

/// The report file as it was written, cell for cell: the safety prefix of a formula-like
/// cell is undone (a workbook's text cell is never run), numbers are numbers.
fn report_sheet(sheet: &mut Worksheet, report: &Path, bold: &Format) -> Result<(), XlsxError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(report)
        .map_err(|e| XlsxError::IoError(io::Error::other(e.to_string())))?;
    let mut numeric = Vec::new();
    for (at, record) in reader.records().enumerate() {
        let record = record.map_err(|e| XlsxError::IoError(io::Error::other(e.to_string())))?;
        let row = at as u32;
        if row > LAST_ROW {
            tracing::warn!(
                "the evidence workbook's Report sheet holds the first {LAST_ROW} rows only (a sheet's limit); the report file has them all"
            );
            break;
        }
        for (col, cell) in record.iter().enumerate() {
            let col16 = col as u16;
            if row == 0 {
                numeric.push(NUMERIC_COLUMNS.contains(&cell));
                sheet.write_string_with_format(0, col16, cell, bold)?;
                continue;
            }
            let number = numeric
                .get(col)
                .copied()
                .unwrap_or(false)
                .then(|| cell.parse::<u64>().ok())
                .flatten();
            match number {
                Some(number) => sheet.write_number(row, col16, number as f64)?,
                None => sheet.write_string(row, col16, escaped(unprefixed(cell)))?,
            };
        }
    }
    Ok(())
}
