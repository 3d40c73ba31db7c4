//! Spreadsheet inputs (`.xlsx`, `.xlsm`, `.xls`, `.ods`), read with `calamine`: the first
//! sheet or `--sheet NAME`, each row under the sheet's own row number, cells as the text a
//! CSV of the sheet would hold (an id stored as the number `106.0` is `106`, a boolean
//! cell `true`/`false`), so that the same validation and messages apply.

use std::path::Path;

use calamine::{Data, Reader};
use thiserror::Error;

/// The extensions read as spreadsheets.
const EXTENSIONS: [&str; 4] = ["xlsx", "xlsm", "xls", "ods"];
/// The largest integer a float cell holds exactly (2^53).
const EXACT_FLOAT_INTEGER: f64 = 9_007_199_254_740_992.0;

#[derive(Debug, Error)]
pub enum SheetError {
    #[error("cannot read the spreadsheet: {0}")]
    Read(#[from] calamine::Error),
    #[error("the spreadsheet has no sheet")]
    NoSheet,
    #[error("the spreadsheet has no sheet named {wanted:?} (it has {found})")]
    NoSuchSheet { wanted: String, found: String },
}

/// One sheet's rows: the sheet row number (1-based) and the cells as text.
#[derive(Debug, Default)]
pub(crate) struct Sheet {
    pub rows: Vec<(u64, Vec<String>)>,
    pub name: String,
}

/// True when the path names a spreadsheet.
pub(crate) fn is_spreadsheet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// The text of a cell.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(text) => text.clone(),
        Data::Bool(flag) => flag.to_string(),
        Data::Int(number) => number.to_string(),
        Data::Float(number) if number.fract() == 0.0 && number.abs() < EXACT_FLOAT_INTEGER => {
            format!("{number:.0}")
        }
        other => other.to_string(),
    }
}

/// Reads the first sheet, or the one named.
pub(crate) fn read_sheet(path: &Path, wanted: Option<&str>) -> Result<Sheet, SheetError> {
    let mut workbook = calamine::open_workbook_auto(path)?;
    let names = workbook.sheet_names();
    let name = match wanted {
        Some(wanted) => names
            .iter()
            .find(|n| n.as_str() == wanted)
            .cloned()
            .ok_or_else(|| SheetError::NoSuchSheet {
                wanted: wanted.to_owned(),
                found: names
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
        None => names.first().cloned().ok_or(SheetError::NoSheet)?,
    };
    let range = workbook.worksheet_range(&name)?;
    let first_row = range.start().map_or(0, |(row, _)| u64::from(row));
    let first_column = range.start().map_or(0, |(_, column)| column as usize);
    let rows = range
        .rows()
        .enumerate()
        .map(|(i, cells)| {
            // Columns left of the range are empty in the sheet: kept, so that columns
            // keep their places.
            let text = std::iter::repeat_n(String::new(), first_column)
                .chain(cells.iter().map(cell_text))
                .collect();
            (first_row + i as u64 + 1, text)
        })
        .collect();
    Ok(Sheet { rows, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_a_csv_of_the_sheet_would_hold_them() {
        assert_eq!(cell_text(&Data::Float(106.0)), "106");
        assert_eq!(cell_text(&Data::Float(1.5)), "1.5");
        assert_eq!(cell_text(&Data::Int(7)), "7");
        assert_eq!(cell_text(&Data::Bool(true)), "true");
        assert_eq!(cell_text(&Data::Empty), "");
        assert_eq!(cell_text(&Data::String("CI".into())), "CI");
    }

    #[test]
    fn spreadsheets_are_known_by_their_extension() {
        assert!(is_spreadsheet(Path::new("review.XLSX")));
        assert!(is_spreadsheet(Path::new("review.ods")));
        assert!(!is_spreadsheet(Path::new("review.csv")));
    }
}
