//! A workbook's bounds, checked before it is loaded: a 2 KB file can declare a sheet of a
//! billion cells (`XFD1048576`, `.ods` rows repeated a million times) or a string of
//! 300 MB, and a reader that believes it takes the machine. A zip's parts are measured
//! as they are inflated, never trusting the sizes they declare; an `.ods` sheet's repeats
//! are added up before calamine expands them.
//!
//! The spreadsheet's own limits, the kinds of zip workbook and a column's letters live
//! here, beside the checks that use them; the sheet reader imports them from here.

use std::io::{BufRead, BufReader, Read, Seek};

use quick_xml::events::{BytesStart, Event};
use thiserror::Error;
use zip::ZipArchive;

/// Excel's limits, which no sheet a person made goes beyond.
pub(crate) const MAX_ROWS: u32 = 1_048_576;
pub(crate) const MAX_COLUMNS: u32 = 16_384;

/// The kinds of zip workbook, by their parts (an `.xls` is known by its OLE signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Xlsx,
    Ods,
}

/// A part inflating to more than this is measured against its compressed size...
const EXPANSION_FLOOR: u64 = 16 * 1024 * 1024;
/// ...and refused past this ratio: XML of real sheets compresses 5 to 20-fold.
const MAX_EXPANSION: u64 = 100;
/// An `.ods` sheet may expand to this many cells whatever its size (64 MB of cells)...
const ODS_FREE_CELLS: u64 = 2 * 1024 * 1024;
/// ...and to this many per cell it writes out: a repeat of a few cells stays cheap.
const ODS_CELLS_PER_WRITTEN: u64 = 16;

/// A column's letters: 0 is `A`, 16383 is `XFD`.
pub(crate) fn column_letters(column: u32) -> String {
    let mut letters = Vec::new();
    let mut n = u64::from(column) + 1;
    while n > 0 {
        let digit = ((n - 1) % 26) as u8;
        letters.push(char::from(b'A' + digit));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

#[derive(Debug, Error)]
pub enum BoundsError {
    #[error("cannot read the workbook: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("cannot read the workbook: {0}")]
    Xml(#[from] quick_xml::Error),
    #[error("cannot read the workbook: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "its part {part} holds more than {limit_mib} MiB of text, more than the input limit (split the input, or raise --max-input-mib)"
    )]
    TooMuchText { part: String, limit_mib: u64 },
    #[error(
        "its part {part} expands from {compressed} bytes to more than {expanded} bytes: no sheet a person made compresses so well, and it is not loaded"
    )]
    Expands {
        part: String,
        compressed: u64,
        expanded: u64,
    },
    #[error(
        "it has a cell at {cell}, beyond a spreadsheet's limits ({MAX_ROWS} rows, {MAX_COLUMNS} columns)"
    )]
    Beyond { cell: String },
    #[error(
        "sheet {table:?} repeats its rows and cells to {cells} cells (up to row {rows}, column {columns}) from {written} cells written: it is not loaded (a sheet beyond {MAX_ROWS} rows or {MAX_COLUMNS} columns, or mostly repeats)"
    )]
    Repeats {
        table: String,
        cells: u64,
        rows: u64,
        columns: u64,
        written: u64,
    },
}

/// What a zip workbook says of itself, read from its small parts.
#[derive(Debug, Default)]
pub(crate) struct ZipFacts {
    pub format: Option<Format>,
    /// `.xlsx`: the index of the sheet shown when the file opens.
    pub active_tab: Option<usize>,
    /// `.ods`: the name of that sheet.
    pub active_name: Option<String>,
}

/// A cell within a spreadsheet's limits.
pub(crate) fn check_cell(row: u32, column: u32) -> Result<(), BoundsError> {
    if row >= MAX_ROWS || column >= MAX_COLUMNS {
        return Err(BoundsError::Beyond {
            cell: format!("{}{}", column_letters(column), u64::from(row) + 1),
        });
    }
    Ok(())
}

/// Checks every part of a zip workbook that a reader loads whole, and reads which sheet
/// is active. `limit` is the input limit in bytes.
pub(crate) fn check_zip<R: Read + Seek>(reader: R, limit: u64) -> Result<ZipFacts, BoundsError> {
    let mut zip = ZipArchive::new(reader)?;
    let names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    let has = |name: &str| names.iter().any(|n| n == name);
    let mut facts = ZipFacts::default();
    if has("xl/workbook.xml") {
        facts.format = Some(Format::Xlsx);
        // Shared strings are loaded whole; sheets are streamed (see `sheet::read_xlsx`).
        for part in ["xl/sharedStrings.xml", "xl/styles.xml"] {
            if has(part) {
                measure(&mut zip, part, limit)?;
            }
        }
        let workbook = read_small(&mut zip, "xl/workbook.xml", limit)?;
        facts.active_tab = attribute_after(&workbook, "<workbookView", "activeTab")
            .and_then(|v| v.parse().ok())
            .or(Some(0));
    } else if has("content.xml") {
        facts.format = Some(Format::Ods);
        measure(&mut zip, "content.xml", limit)?;
        let content = BufReader::new(zip.by_name("content.xml")?);
        check_ods_repeats(content)?;
        if has("settings.xml") {
            let settings = read_small(&mut zip, "settings.xml", limit)?;
            facts.active_name = active_table(&settings);
        }
    }
    Ok(facts)
}

/// Inflates a part into nothing, counting, and stops as soon as it is too large.
fn measure<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    part: &str,
    limit: u64,
) -> Result<(), BoundsError> {
    let mut file = zip.by_name(part)?;
    let compressed = file.compressed_size();
    let ceiling = limit.min(EXPANSION_FLOOR.max(compressed.saturating_mul(MAX_EXPANSION)));
    let copied = std::io::copy(&mut (&mut file).take(ceiling + 1), &mut std::io::sink())?;
    if copied <= ceiling {
        return Ok(());
    }
    if ceiling == limit {
        return Err(BoundsError::TooMuchText {
            part: part.to_owned(),
            limit_mib: limit / (1024 * 1024),
        });
    }
    Err(BoundsError::Expands {
        part: part.to_owned(),
        compressed,
        expanded: ceiling,
    })
}

/// A small part as text (measured first).
fn read_small<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    part: &str,
    limit: u64,
) -> Result<String, BoundsError> {
    measure(zip, part, limit)?;
    let mut text = String::new();
    zip.by_name(part)?.read_to_string(&mut text)?;
    Ok(text)
}

/// `value` of `name="value"` in the first element that starts with `element`.
fn attribute_after<'a>(xml: &'a str, element: &str, name: &str) -> Option<&'a str> {
    let start = xml.find(element)?;
    let tag = &xml[start..start + xml[start..].find('>')?];
    let key = format!(" {name}=\"");
    let value = &tag[tag.find(&key)? + key.len()..];
    Some(&value[..value.find('"')?])
}

/// The name in `<config:config-item config:name="ActiveTable" ...>Review</...>`.
fn active_table(settings: &str) -> Option<String> {
    let at = settings.find("config:name=\"ActiveTable\"")?;
    let rest = &settings[at..];
    let value = &rest[rest.find('>')? + 1..];
    let value = &value[..value.find('<')?];
    quick_xml::escape::unescape(value)
        .ok()
        .map(|v| v.into_owned())
}

fn repeats(element: &BytesStart<'_>, attribute: &str) -> u64 {
    element
        .try_get_attribute(attribute)
        .ok()
        .flatten()
        .and_then(|a| std::str::from_utf8(&a.value).ok()?.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// Adds up an `.ods` content's repeated rows and cells, table by table, as calamine
/// would expand them (every table is loaded when the file is opened).
fn check_ods_repeats(content: impl BufRead) -> Result<(), BoundsError> {
    let mut xml = quick_xml::Reader::from_reader(content);
    let mut buffer = Vec::new();
    let mut table = OdsTable::default();
    loop {
        let event = xml.read_event_into(&mut buffer)?;
        let (element, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                match e.name().as_ref() {
                    b"table:table-row" => table.end_row(),
                    b"table:table" => table.check()?,
                    _ => {}
                }
                buffer.clear();
                continue;
            }
            Event::Eof => return Ok(()),
            _ => {
                buffer.clear();
                continue;
            }
        };
        match element.name().as_ref() {
            b"table:table" => {
                let name = element
                    .try_get_attribute("table:name")
                    .ok()
                    .flatten()
                    .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                    .unwrap_or_default();
                table = OdsTable {
                    name,
                    ..OdsTable::default()
                };
            }
            b"table:table-row" => {
                table.row_repeats = repeats(element, "table:number-rows-repeated");
                table.row_columns = 0;
                table.row_last = 0;
                if empty {
                    table.end_row();
                }
            }
            b"table:table-cell" | b"table:covered-table-cell" => {
                let columns = repeats(element, "table:number-columns-repeated");
                let valued = !empty
                    || element
                        .try_get_attribute("office:value-type")
                        .ok()
                        .flatten()
                        .is_some();
                table.row_columns = table.row_columns.saturating_add(columns);
                if valued {
                    table.row_last = table.row_columns;
                    table.written += 1;
                }
            }
            _ => {}
        }
        buffer.clear();
    }
}

/// One `.ods` table as it is being added up.
#[derive(Debug, Default)]
struct OdsTable {
    name: String,
    /// Rows so far, repeats included.
    rows: u64,
    /// The last row holding a value, and the widest extent of values.
    last_row: u64,
    columns: u64,
    /// Cells with a value, as written in the file.
    written: u64,
    row_repeats: u64,
    row_columns: u64,
    row_last: u64,
}

impl OdsTable {
    fn end_row(&mut self) {
        self.rows = self.rows.saturating_add(self.row_repeats.max(1));
        if self.row_last > 0 {
            self.last_row = self.rows;
            self.columns = self.columns.max(self.row_last);
        }
        self.row_repeats = 1;
        self.row_last = 0;
    }

    fn check(&self) -> Result<(), BoundsError> {
        let cells = self.last_row.saturating_mul(self.columns);
        let budget = ODS_FREE_CELLS.max(self.written.saturating_mul(ODS_CELLS_PER_WRITTEN));
        let beyond = self.last_row > u64::from(MAX_ROWS) || self.columns > u64::from(MAX_COLUMNS);
        if beyond || cells > budget {
            return Err(BoundsError::Repeats {
                table: self.name.clone(),
                cells,
                rows: self.last_row,
                columns: self.columns,
                written: self.written,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ods(rows: &str) -> Result<(), BoundsError> {
        let xml = format!(
            "<office:document-content><office:body><office:spreadsheet><table:table table:name=\"S\">{rows}</table:table></office:spreadsheet></office:body></office:document-content>"
        );
        check_ods_repeats(xml.as_bytes())
    }

    #[test]
    fn ods_repeats_are_added_up_before_loading() {
        let cell =
            "<table:table-cell office:value-type=\"string\"><text:p>x</text:p></table:table-cell>";
        assert!(ods(&format!("<table:table-row>{cell}{cell}</table:table-row>")).is_ok());
        // LibreOffice's trailing empty rows and columns are free.
        assert!(ods(&format!(
            "<table:table-row>{cell}<table:table-cell table:number-columns-repeated=\"16383\"/></table:table-row><table:table-row table:number-rows-repeated=\"1048575\"><table:table-cell table:number-columns-repeated=\"16384\"/></table:table-row>"
        ))
        .is_ok());
        let error = ods(&format!(
            "<table:table-row table:number-rows-repeated=\"1000000\"><table:table-cell/></table:table-row><table:table-row>{cell}<table:table-cell table:number-columns-repeated=\"59\"/>{cell}</table:table-row>"
        ))
        .unwrap_err();
        assert!(
            matches!(
                error,
                BoundsError::Repeats {
                    rows: 1_000_001,
                    columns: 61,
                    ..
                }
            ),
            "{error}"
        );
        assert!(ods(&format!(
            "<table:table-row table:number-rows-repeated=\"2000000\">{cell}</table:table-row>"
        ))
        .is_err());
    }

    #[test]
    fn cells_beyond_the_limits_are_refused() {
        assert!(check_cell(MAX_ROWS - 1, MAX_COLUMNS - 1).is_ok());
        let error = check_cell(MAX_ROWS, 0).unwrap_err();
        assert!(error.to_string().contains("A1048577"), "{error}");
    }

    #[test]
    fn the_active_sheet_is_read_from_the_workbook() {
        assert_eq!(
            attribute_after(
                "<workbookView xWindow=\"0\" activeTab=\"2\"/>",
                "<workbookView",
                "activeTab"
            ),
            Some("2")
        );
        assert_eq!(
            active_table("<config:config-item config:name=\"ActiveTable\" config:type=\"string\">R &amp; D</config:config-item>"),
            Some("R & D".to_owned())
        );
    }
}
