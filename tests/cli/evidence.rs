//! The evidence as an auditor reads it (the Markdown record and the `.xlsx` workbook), and
//! `upload-evidence`, which puts it into Drata's Evidence Library (here the simulator's).

use calamine::{open_workbook, Data, Reader, Xlsx};

use crate::support::*;

/// A sheet as rows of cell texts (numbers as integers), header first.
fn sheet(path: &std::path::Path, name: &str) -> Vec<Vec<String>> {
    let mut workbook: Xlsx<_> = open_workbook(path).unwrap();
    let range = workbook.worksheet_range(name).unwrap();
    range
        .rows()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Data::Float(f) => format!("{f}"),
                    Data::Int(i) => i.to_string(),
                    Data::Empty => String::new(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

/// The value of a fact of the Summary sheet.
fn fact<'a>(summary: &'a [Vec<String>], name: &str) -> &'a str {
    summary
        .iter()
        .find(|row| row[0] == name)
        .map(|row| row[1].as_str())
        .unwrap_or_else(|| panic!("no fact {name}: {summary:?}"))
}

/// Applies a small review to a fresh simulator with `--evidence e.xlsx`; returns the
/// simulator (still serving), the directory and the run.
pub(crate) fn apply_with_workbook() -> (RunningSimulator, Workdir, Run) {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    // Completion order is not id order: 44, 2, 21 are changed, 7 is already as asked,
    // and 5000 does not exist. A reason begins with '=': text, never a formula.
    work.write(
        "review.csv",
        "id,flag,reason\n44,true,=deploy bot\n7,true,Seeded: automation account\n2,true,CI runner\n21,true,terraform\n5000,true,gone\n",
    );
    let run = on_sim(
        &sim,
        &work,
        &[
            "apply",
            "review.csv",
            "--reconcile",
            "--report",
            "r.csv",
            "--evidence",
            "e.xlsx",
        ],
    );
    (sim, work, run)
}

#[test]
fn the_workbook_has_a_summary_the_changes_by_id_and_every_report_row() {
    let (_sim, work, run) = apply_with_workbook();
    assert_eq!(run.code, 1, "5000 is not found: {}", run.stderr);
    let path = work.path("e.xlsx");
    let workbook: Xlsx<_> = open_workbook(&path).unwrap();
    assert_eq!(workbook.sheet_names(), ["Summary", "Changes", "Report"]);

    let summary = sheet(&path, "Summary");
    assert_eq!(summary[0], ["fact", "value"]);
    assert_eq!(fact(&summary, "Account"), system_account());
    assert!(fact(&summary, "Ran by").starts_with(&format!("{} on ", system_account())));
    assert_eq!(fact(&summary, "Version"), env!("CARGO_PKG_VERSION"));
    assert!(fact(&summary, "Base URL").starts_with("http://127.0.0.1:"));
    assert_eq!(fact(&summary, "Input SHA-256"), sha256_file(&work.path("review.csv")));
    assert_eq!(fact(&summary, "Report SHA-256"), sha256_file(&work.path("r.csv")));
    assert_eq!(fact(&summary, "Rules SHA-256"), "none");
    assert_eq!(fact(&summary, "Rows updated"), "3");
    assert_eq!(fact(&summary, "Rows unchanged"), "1");
    assert_eq!(fact(&summary, "Rows failed"), "1");
    assert_eq!(fact(&summary, "Identities changed"), "3");
    for name in ["Verification", "Drifted", "Conflicts"] {
        fact(&summary, name);
    }

    let changes = sheet(&path, "Changes");
    assert_eq!(
        changes[0],
        [
            "id",
            "username",
            "email",
            "connection",
            "before_service_account",
            "before_reason",
            "after_service_account",
            "after_reason",
            "source",
            "verified"
        ]
    );
    let ids: Vec<&str> = changes[1..].iter().map(|row| row[0].as_str()).collect();
    assert_eq!(ids, ["2", "21", "44"], "sorted by id, only the changed ones");
    assert_eq!(changes[1][1], "alice.nguyen");
    assert_eq!(changes[1][3], "GCP gcp-main #2");
    assert_eq!(changes[1][4], "false");
    assert_eq!(changes[1][6], "true");
    assert_eq!(changes[1][7], "CI runner");
    assert_eq!(changes[1][8], "input");
    assert_eq!(changes[3][3], "GCP gcp-main #2");
    assert_eq!(changes[3][7], "=deploy bot", "a text cell, as the reviewer wrote it");

    let report = sheet(&path, "Report");
    let file = read_report(&work.path("r.csv"));
    assert_eq!(report.len(), file.len() + 1, "every report row, and the header");
    assert_eq!(report[0][..5], ["line", "id", "service_account", "reason", "outcome"]);
    let outcome_of = |id: &str| {
        report
            .iter()
            .find(|row| row[1] == id)
            .map(|row| row[4].clone())
            .unwrap()
    };
    assert_eq!(outcome_of("5000"), "failed");
    assert_eq!(outcome_of("7"), "unchanged");
    let bot = report.iter().find(|row| row[1] == "44").unwrap();
    assert_eq!(bot[3], "=deploy bot", "the report's safety prefix is undone");
}

#[test]
fn the_markdown_record_sorts_by_id_and_names_the_connection_and_the_account() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("review.csv", "id,flag,reason\n44,true,bot\n3,true,ci\n");
    let url = sim.base_url();
    let run = drata(
        work.dir.path(),
        &[
            "apply", "review.csv", "--reconcile", "--evidence", "e.md", "--base-url", &url,
            "--rate", "unlimited",
        ],
        &[("DRATA_API_KEY", SIM_TOKEN), ("USER", "someone-else")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let evidence = std::fs::read_to_string(work.path("e.md")).unwrap();
    assert!(evidence.contains(&format!("| Ran by | {} on ", system_account())), "{evidence}");
    assert!(!evidence.contains("someone-else"));
    let three = evidence.find("| 3 | ").expect("id 3 listed");
    let forty_four = evidence.find("| 44 | ").expect("id 44 listed");
    assert!(three < forty_four, "sorted by id:\n{evidence}");
    assert!(evidence.contains("| AZURE azure-corp #3 |"), "{evidence}");
    assert!(evidence.contains("| Rules | none |"), "{evidence}");
}
