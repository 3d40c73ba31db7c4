//! What an evidence workbook says of its run, for the description of the item that
//! `upload-evidence` makes: the facts of its `Summary` sheet that an auditor looks for
//! first. Any other file, or a workbook without that sheet, says nothing.

use std::path::Path;

use calamine::{open_workbook, Data, Reader, Xlsx};

/// The facts the description carries, in this order, when the sheet has them.
const FACTS: [&str; 8] = [
    "Ran by",
    "Finished",
    "Version",
    "Rows",
    "Identities changed",
    "Verification",
    "Input SHA-256",
    "Report SHA-256",
];

/// `(fact, value)` pairs of the `Summary` sheet, the counts per outcome among them.
pub(crate) fn evidence_summary(path: &Path) -> Vec<(String, String)> {
    let is_workbook = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
    if !is_workbook {
        return Vec::new();
    }
    let Ok(mut workbook) = open_workbook::<Xlsx<_>, _>(path) else {
        return Vec::new();
    };
    let Ok(range) = workbook.worksheet_range("Summary") else {
        return Vec::new();
    };
    let pairs: Vec<(String, String)> = range
        .rows()
        .filter_map(|row| match row {
            [Data::String(fact), value, ..] => Some((fact.clone(), value.to_string())),
            _ => None,
        })
        .collect();
    let wanted = |fact: &str| {
        FACTS.contains(&fact) || (fact.starts_with("Rows ") && !fact.starts_with("Rows not"))
    };
    pairs
        .into_iter()
        .filter(|(fact, value)| wanted(fact) && value != "0")
        .collect()
}
