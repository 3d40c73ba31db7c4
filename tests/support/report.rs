//! Input CSVs for the tests, and reading the reports and files a run leaves behind.

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Finished, RunningSimulator, REPORT_COLUMNS};

/// A CSV file's records as written, header first (rows of any width).
pub fn records(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .unwrap();
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// An undo file's records, the header first, without its last column (`undoOf`, the time
/// of the run it undoes, which differs every run).
pub fn undo_records(path: &Path) -> Vec<Vec<String>> {
    let mut rows = records(path);
    assert_eq!(
        rows[0].last().map(String::as_str),
        Some("undoOf"),
        "{rows:?}"
    );
    for row in &mut rows {
        row.pop();
    }
    rows
}

/// A parsed report: one map per row, keyed by column name.
pub fn read_report(path: &Path) -> Vec<HashMap<String, String>> {
    // Flexible: a run stopped by a full disk may leave its last row cut short.
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .expect("report");
    let headers = reader.headers().unwrap().clone();
    assert_report_header(&headers);
    records_by_header(reader)
}

/// The access toggles' report columns a run whose input decides them adds, in pairs.
const ACCESS_COLUMNS: [&str; 8] = [
    "admin_access",
    "previous_admin_access",
    "db_access",
    "previous_db_access",
    "write_access",
    "previous_write_access",
    "push_production_code_access",
    "previous_push_production_code_access",
];

/// The contract's columns in order, then only access toggles' pairs.
fn assert_report_header(headers: &csv::StringRecord) {
    let headers: Vec<&str> = headers.iter().collect();
    assert!(
        headers.len() >= REPORT_COLUMNS.len(),
        "report columns: {headers:?}"
    );
    let (fixed, access) = headers.split_at(REPORT_COLUMNS.len());
    assert_eq!(fixed, REPORT_COLUMNS, "report columns");
    for pair in access.chunks(2) {
        assert!(
            ACCESS_COLUMNS.chunks(2).any(|known| known == pair),
            "report columns: {headers:?}"
        );
    }
}

/// A report a full disk cut short: its complete rows, without the last one if the cut
/// fell inside it (a resumed run treats such a row as not done).
pub fn read_cut_report(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .expect("report");
    let headers = reader.headers().unwrap().clone();
    assert_report_header(&headers);
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    let cut = records.iter().position(|r| r.len() != headers.len());
    assert!(
        cut.is_none_or(|at| at + 1 == records.len()),
        "only the last row may be cut"
    );
    records
        .iter()
        .filter(|r| r.len() == headers.len())
        .map(|r| {
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// Every record of a CSV as a map of header to cell.
pub fn records_by_header<R: std::io::Read>(
    mut reader: csv::Reader<R>,
) -> Vec<HashMap<String, String>> {
    let headers = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            let record = r.expect("record");
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// Report rows by input line; asserts each line appears once.
pub fn by_line(rows: &[HashMap<String, String>]) -> HashMap<u64, HashMap<String, String>> {
    let mut map = HashMap::new();
    for row in rows {
        let line: u64 = row["line"].parse().expect("line");
        assert!(map.insert(line, row.clone()).is_none(), "line {line} twice");
    }
    map
}

/// `(line, outcome)` pairs, sorted, for compact assertions.
pub fn outcomes(rows: &[HashMap<String, String>]) -> Vec<(u64, String)> {
    let mut pairs: Vec<(u64, String)> = rows
        .iter()
        .map(|r| (r["line"].parse().unwrap(), r["outcome"].clone()))
        .collect();
    pairs.sort();
    pairs
}

/// A CSV of `n` rows with ids `first..first+n`, all `true` with a reason.
pub fn rows_csv(first: u64, n: u64) -> String {
    let mut text = String::from("id,serviceAccount,serviceAccountReason\n");
    for id in first..first + n {
        text.push_str(&format!("{id},true,automation account {id}\n"));
    }
    text
}

/// The report row for input line `n`; panics if there is none.
pub fn line(rows: &[HashMap<String, String>], n: u64) -> HashMap<String, String> {
    by_line(rows)
        .remove(&n)
        .unwrap_or_else(|| panic!("no report row for line {n}"))
}

/// Ids whose report row has `outcome`.
pub fn ids_with(rows: &[HashMap<String, String>], outcome: &str) -> Vec<u64> {
    rows.iter()
        .filter(|r| r["outcome"] == outcome)
        .map(|r| r["id"].parse().unwrap())
        .collect()
}

/// Data rows written so far to a report that may still be growing.
#[cfg_attr(not(unix), allow(dead_code))] // used by the signal tests
pub fn report_rows_so_far(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|text| text.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// The SHA-256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The SHA-256 of a file's contents, as lowercase hex; panics if it cannot be read.
pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    sha256_hex(&bytes)
}

/// What every run against a faulty simulator must keep, whatever the faults: rows in ==
/// rows out, every row reported `updated` applied by the server, and exit 0 only when
/// every row was updated (1 otherwise).
pub fn assert_every_row_accounted_for(done: &Finished, sim: &RunningSimulator, rows: u64) {
    assert_eq!(done.rows.len() as u64, rows, "rows in == rows out");
    let applied = sim.applied();
    for id in ids_with(&done.rows, "updated") {
        assert!(
            applied.contains_key(&id),
            "id {id} reported updated, never applied"
        );
    }
    let all_updated = done.rows.iter().all(|r| r["outcome"] == "updated");
    let expected = if all_updated { 0 } else { 1 };
    assert_eq!(done.code, expected, "{}", done.stderr);
}
