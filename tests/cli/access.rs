//! The access toggles of the identity row (admin and database access of infrastructure
//! identities, write and production-push access of version-control ones), each end to end
//! against the simulator: exported as a workbook, edited in it as a spreadsheet saves a
//! boolean, planned, applied through `PUT …/toggle`, checked after the run, and undone.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use calamine::{Data, Reader, Xlsx};

use crate::support::*;

/// One toggle's review: the kind and column, and the identity whose value is flipped
/// (seeded on for some ids, off for others).
struct Case {
    kind: &'static str,
    column: &'static str,
    id: u64,
}

/// The export's cells as text, by row (the header first).
fn workbook_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    let mut workbook: Xlsx<_> = calamine::open_workbook(path).unwrap();
    let range = workbook.worksheet_range("identities").unwrap();
    range
        .rows()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Data::String(text) => text.clone(),
                    Data::Empty => String::new(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

/// Writes the rows back as a workbook the way a spreadsheet saves an edit: the edited
/// cell of `column` on the row of `id` becomes a typed boolean, the rest stays text.
fn save_edited(path: &std::path::Path, rows: &[Vec<String>], column: &str, id: u64, on: bool) {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("identities").unwrap();
    let at = rows[0].iter().position(|h| h == column).unwrap();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c16) = (r as u32, c as u16);
            if c == at && row[0] == id.to_string() {
                sheet.write_boolean(r, c16, on).unwrap();
            } else {
                sheet.write_string(r, c16, cell).unwrap();
            }
        }
    }
    workbook.save(path).unwrap();
}

/// A column of an export (CSV), by id.
fn column_by_id(path: &std::path::Path, column: &str) -> HashMap<u64, String> {
    let rows = records(path);
    let at = rows[0].iter().position(|h| h == column).unwrap();
    rows[1..]
        .iter()
        .map(|row| (row[0].parse().unwrap(), row[at].clone()))
        .collect()
}

fn export_csv(sim: &RunningSimulator, work: &Workdir, kind: &str, name: &str) {
    let run = Export::on(sim)
        .within(work)
        .args(["--kind", kind, "-o", name])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
}

fn review_round_trip(case: &Case) {
    let sim = simulator(|c| c.identities = 30);
    let work = Workdir::new();
    let kind = case.kind;
    let exported = Export::on(&sim)
        .within(&work)
        .args(["--kind", kind, "--format", "xlsx", "-o", "review.xlsx"])
        .run();
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    export_csv(&sim, &work, kind, "before.csv");
    let before = column_by_id(&work.path("before.csv"), case.column);
    let was_on = before[&case.id] == "true";
    let rows = workbook_rows(&work.path("review.xlsx"));
    save_edited(
        &work.path("edited.xlsx"),
        &rows,
        case.column,
        case.id,
        !was_on,
    );

    let plan = Plan::on(&sim)
        .within(&work)
        .file("edited.xlsx")
        .args(["--kind", kind])
        .report("plan.csv")
        .run();
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let would: Vec<u64> = ids_with(&plan.rows, "would_update");
    assert_eq!(would, [case.id], "only the edited toggle: {}", plan.stderr);
    assert_eq!(
        sim.stats.toggles_applied.load(Ordering::Relaxed),
        0,
        "plan sends nothing"
    );

    let apply = Apply::on(&sim)
        .within(&work)
        .file("edited.xlsx")
        .args(["--kind", kind, "--undo", "undo.csv"])
        .report("apply.csv")
        .run();
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let row = line(&apply.rows, case.id + 1);
    assert_eq!(row["outcome"], "updated", "{row:?}");
    assert_eq!(row["verified"], "yes", "{row:?}");
    assert_eq!(sim.stats.toggles_applied.load(Ordering::Relaxed), 1);
    assert_eq!(
        sim.stats.applied.load(Ordering::Relaxed),
        0,
        "no service-account PUT: the flag was not edited"
    );
    export_csv(&sim, &work, kind, "after.csv");
    let after = column_by_id(&work.path("after.csv"), case.column);
    let mut expected = before.clone();
    expected.insert(case.id, (!was_on).to_string());
    assert_eq!(after, expected, "Drata holds the edit, and only it");

    let undone = Apply::on(&sim)
        .within(&work)
        .file("undo.csv")
        .args(["--kind", kind])
        .report("undone.csv")
        .run();
    assert_eq!(undone.code, 0, "{}", undone.stderr);
    export_csv(&sim, &work, kind, "restored.csv");
    let restored = column_by_id(&work.path("restored.csv"), case.column);
    assert_eq!(restored, before, "undo restores the toggle as exported");
    assert_eq!(
        column_by_id(&work.path("restored.csv"), "serviceAccount"),
        column_by_id(&work.path("before.csv"), "serviceAccount"),
        "undo changes no flag"
    );
}

#[test]
fn admin_access_is_exported_edited_in_a_workbook_applied_verified_and_undone() {
    review_round_trip(&Case {
        kind: "infrastructure",
        column: "adminAccess",
        id: 3,
    });
}

#[test]
fn database_access_is_exported_edited_in_a_workbook_applied_verified_and_undone() {
    review_round_trip(&Case {
        kind: "infrastructure",
        column: "dbAccess",
        id: 11,
    });
}

#[test]
fn write_access_is_exported_edited_in_a_workbook_applied_verified_and_undone() {
    review_round_trip(&Case {
        kind: "version-control",
        column: "writeAccess",
        id: 3,
    });
}

#[test]
fn production_push_access_is_exported_edited_in_a_workbook_applied_verified_and_undone() {
    review_round_trip(&Case {
        kind: "version-control",
        column: "pushProductionCodeAccess",
        id: 6,
    });
}

#[test]
fn a_toggle_column_of_the_other_kind_is_refused_before_anything_is_sent() {
    let sim = simulator(|c| c.identities = 5);
    let run = Apply::on(&sim)
        .input("id,flag,reason,writeAccess\n1,false,person,true\n")
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("writeAccess") && run.stderr.contains("--kind version-control"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.stats.requests.load(Ordering::Relaxed), 0);
}

#[test]
fn a_blank_toggle_cell_leaves_the_toggle_alone_and_a_drifted_one_is_kept() {
    let sim = simulator(|c| c.identities = 12);
    // Id 5 has admin access (seeded); 3 does not, though it had at export. Both rows
    // leave the flag as it is.
    let input = "id,serviceAccount,serviceAccountReason,adminAccess,drataAdminAccess\n\
                 5,false,,,true\n\
                 3,false,,true,true\n";
    let run = Apply::on(&sim).input(input).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outcomes = outcomes(&run.rows);
    assert_eq!(
        outcomes,
        [(2, "unchanged".to_owned()), (3, "drifted".to_owned())],
        "a blank cell decides nothing; an unedited cell Drata changed since is kept"
    );
    assert_eq!(sim.stats.toggles_applied.load(Ordering::Relaxed), 0);
}

#[test]
fn two_rows_of_one_id_that_disagree_on_a_toggle_conflict() {
    let agreeing = Validate::offline()
        .input("id,flag,reason,adminAccess\n4,false,p,true\n4,false,p,true\n")
        .run();
    assert_eq!(agreeing.code, 0, "{}{}", agreeing.stdout, agreeing.stderr);
    let run = Validate::offline()
        .input("id,flag,reason,adminAccess\n4,false,p,true\n4,false,p,false\n")
        .run();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("lines 2, 3") || said.contains("2 and 3"),
        "{said}"
    );
}

#[test]
fn a_rule_decides_admin_access_and_matches_on_it() {
    // Of 40 seeded identities the bots are 7, 14, 21, 28 and 35 (marked, with the seeded
    // reason), and admin access is on for every fifth: only bot 35 has both.
    let sim = simulator(|c| c.identities = 40);
    let work = Workdir::new();
    work.write(
        "rules.toml",
        "[[rule]]\nname = \"bots-without-admin\"\nservice_account = true\n\
         reason = \"Seeded: automation account\"\nadmin_access = false\n\
         [rule.match]\nusername = \"^svc-\"\nadmin_access = true\n",
    );
    let plan = Plan::on(&sim)
        .within(&work)
        .args(["--rules", "rules.toml"])
        .report("plan.csv")
        .run();
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert_eq!(
        ids_with(&plan.rows, "would_update"),
        [35],
        "{}",
        plan.stderr
    );
    let apply = Apply::on(&sim)
        .within(&work)
        .args(["--rules", "rules.toml", "--undo", "undo.csv"])
        .report("apply.csv")
        .run();
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let row = apply.rows.iter().find(|r| r["id"] == "35").unwrap();
    assert_eq!(
        (row["outcome"].as_str(), row["source"].as_str()),
        ("updated", "rule:bots-without-admin"),
        "{row:?}"
    );
    assert_eq!(
        (
            row["admin_access"].as_str(),
            row["previous_admin_access"].as_str()
        ),
        ("false", "true"),
        "{row:?}"
    );
    assert_eq!(row["verified"], "yes", "{row:?}");
    assert_eq!(sim.stats.toggles_applied.load(Ordering::Relaxed), 1);
    assert_eq!(
        sim.stats.applied.load(Ordering::Relaxed),
        0,
        "the flag and reason were already so"
    );
    export_csv(&sim, &work, "infrastructure", "after.csv");
    assert_eq!(
        column_by_id(&work.path("after.csv"), "adminAccess")[&35],
        "false"
    );
    // The undo file puts the admin access back.
    let undone = Apply::on(&sim)
        .within(&work)
        .file("undo.csv")
        .report("undone.csv")
        .run();
    assert_eq!(undone.code, 0, "{}", undone.stderr);
    export_csv(&sim, &work, "infrastructure", "restored.csv");
    assert_eq!(
        column_by_id(&work.path("restored.csv"), "adminAccess")[&35],
        "true"
    );
}

#[test]
fn a_row_changing_its_flag_and_a_toggle_counts_once_is_resent_and_is_in_the_evidence() {
    // Id 3 is a person with no admin access: the review marks it and turns admin access on.
    let sim = simulator(|c| c.identities = 12);
    let work = Workdir::new();
    let input = "id,serviceAccount,serviceAccountReason,adminAccess\n3,true,deploy bot,true\n";
    let run = Apply::on(&sim)
        .within(&work)
        .input(input)
        .args(["--max-changes", "1", "--evidence", "ev.md"])
        .report("r.csv")
        .run();
    assert_eq!(run.code, 0, "one identity, two fields: {}", run.stderr);
    assert_eq!(sim.stats.applied.load(Ordering::Relaxed), 1);
    assert_eq!(sim.stats.toggles_applied.load(Ordering::Relaxed), 1);
    let evidence = std::fs::read_to_string(work.path("ev.md")).unwrap();
    let line = evidence.lines().find(|l| l.starts_with("| 3 |")).unwrap();
    assert!(
        line.contains("not a service account; admin access off")
            && line.contains("service account (\"deploy bot\"); admin access on"),
        "{line}"
    );
    // Drata holds it now: nothing to send, unless --resend, which sends every field again.
    let again = Apply::on(&sim)
        .within(&work)
        .file("input.csv")
        .report("again.csv")
        .run();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(sim.stats.toggles.load(Ordering::Relaxed), 1, "nothing sent");
    let resent = Apply::on(&sim)
        .within(&work)
        .file("input.csv")
        .args(["--resend"])
        .report("resent.csv")
        .run();
    assert_eq!(resent.code, 0, "{}", resent.stderr);
    assert_eq!(
        sim.stats.toggles.load(Ordering::Relaxed),
        2,
        "the toggle sent again"
    );
}
