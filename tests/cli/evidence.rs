//! The evidence as an auditor reads it (the Markdown record and the `.xlsx` workbook), and
//! `upload-evidence`, which puts it into Drata's Evidence Library (here the simulator's).

use calamine::{open_workbook, Data, Reader, Xlsx};

use crate::support::*;

/// A sheet as rows of cell texts (numbers as integers), header first.
pub(crate) fn sheet(path: &std::path::Path, name: &str) -> Vec<Vec<String>> {
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
    let run = Apply::on(&sim)
        .within(&work)
        .file("review.csv")
        .args(["--reconcile", "--report", "r.csv", "--evidence", "e.xlsx"])
        .run()
        .run;
    (sim, work, run)
}

/// The Changes sheet of [`apply_with_workbook`]'s run: only the changed identities, by id.
fn check_changes(path: &std::path::Path) {
    let changes = sheet(path, "Changes");
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
            "verified",
            "before_linked_user",
            "after_linked_user"
        ]
    );
    let ids: Vec<&str> = changes[1..].iter().map(|row| row[0].as_str()).collect();
    assert_eq!(
        ids,
        ["2", "21", "44"],
        "sorted by id, only the changed ones"
    );
    assert_eq!(changes[1][1], "alice.nguyen");
    assert_eq!(changes[1][3], "GCP gcp-main #2");
    assert_eq!(changes[1][4], "false");
    assert_eq!(changes[1][6], "true");
    assert_eq!(changes[1][7], "CI runner");
    assert_eq!(changes[1][8], "input");
    assert_eq!(changes[3][3], "GCP gcp-main #2");
    assert_eq!(
        changes[3][7], "=deploy bot",
        "a text cell, as the reviewer wrote it"
    );
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
    assert_eq!(
        fact(&summary, "Input SHA-256"),
        sha256_file(&work.path("review.csv"))
    );
    assert_eq!(
        fact(&summary, "Report SHA-256"),
        sha256_file(&work.path("r.csv"))
    );
    assert_eq!(fact(&summary, "Rules SHA-256"), "none");
    assert_eq!(fact(&summary, "Rows updated"), "3");
    assert_eq!(fact(&summary, "Rows unchanged"), "1");
    assert_eq!(fact(&summary, "Rows failed"), "1");
    assert_eq!(fact(&summary, "Identities changed"), "3");
    for name in ["Verification", "Drifted", "Conflicts"] {
        fact(&summary, name);
    }

    check_changes(&path);

    let report = sheet(&path, "Report");
    let file = read_report(&work.path("r.csv"));
    assert_eq!(
        report.len(),
        file.len() + 1,
        "every report row, and the header"
    );
    assert_eq!(
        report[0][..5],
        ["line", "id", "service_account", "reason", "outcome"]
    );
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
    assert_eq!(
        bot[3], "=deploy bot",
        "the report's safety prefix is undone"
    );
}

#[test]
fn the_markdown_record_sorts_by_id_and_names_the_connection_and_the_account() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("review.csv", "id,flag,reason\n44,true,bot\n3,true,ci\n");
    let url = sim.base_url();
    let run = Apply::offline()
        .within(&work)
        .file("review.csv")
        .args([
            "--reconcile",
            "--evidence",
            "e.md",
            "--base-url",
            &url,
            "--rate",
            "unlimited",
        ])
        .no_report()
        .env("DRATA_API_KEY", SIM_TOKEN)
        .env("USER", "someone-else")
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let evidence = std::fs::read_to_string(work.path("e.md")).unwrap();
    assert!(
        evidence.contains(&format!("| Ran by | {} on ", system_account())),
        "{evidence}"
    );
    assert!(!evidence.contains("someone-else"));
    let three = evidence.find("| 3 | ").expect("id 3 listed");
    let forty_four = evidence.find("| 44 | ").expect("id 44 listed");
    assert!(three < forty_four, "sorted by id:\n{evidence}");
    assert!(evidence.contains("| AZURE azure-corp #3 |"), "{evidence}");
    assert!(evidence.contains("| Rules | none |"), "{evidence}");
}

/// `upload-evidence FILE ARGS...` against `sim`, from `work`.
fn upload(sim: &RunningSimulator, work: &Workdir, file: &str, args: &[&str]) -> Run {
    let mut all = vec!["upload-evidence", file];
    all.extend_from_slice(args);
    Invocation::new(&all, Some(Endpoint::from(sim)))
        .within(work)
        .run()
        .run
}

fn posts(sim: &RunningSimulator) -> u64 {
    sim.stats
        .evidence_posts
        .load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn the_upload_sends_the_workbook_with_every_field_the_reference_lists() {
    let (sim, work, _) = apply_with_workbook();
    let run = upload(
        &sim,
        &work,
        "e.xlsx",
        &[
            "--owner",
            "Alice.Nguyen@example.com",
            "--control",
            "dcf-24",
            "--control",
            "71",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let items = sim.evidence();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(run.stdout, format!("{}\n", item.id), "the item's id, alone");
    assert_eq!(item.workspace_id, 1, "the primary workspace");
    assert_eq!(
        item.owner_id, 1,
        "alice.nguyen is user 1, found by email in any case"
    );
    assert_eq!(item.control_ids, [24, 71]);
    assert_eq!(item.source, "S3_FILE");
    assert_eq!(item.renewal_schedule_type, "THREE_MONTHS");
    assert_eq!(item.file_name.as_deref(), Some("e.xlsx"));
    assert_eq!(
        item.file,
        std::fs::read(work.path("e.xlsx")).unwrap(),
        "the bytes sent"
    );
    assert_eq!(item.name, format!("e.xlsx {}", item.filed_at));
    assert_eq!(item.filed_at.len(), 10);
    assert!(item.renewal_date > item.filed_at, "{item:?}");
    let months = |date: &str| {
        let year: u32 = date[..4].parse().unwrap();
        let month: u32 = date[5..7].parse().unwrap();
        year * 12 + month
    };
    assert_eq!(months(&item.renewal_date) - months(&item.filed_at), 3);
    let description = item.description.clone().unwrap();
    let report_digest = sha256_file(&work.path("r.csv"));
    assert!(description.contains(&report_digest), "{description}");
    assert!(description.contains("Rows updated: 3"), "{description}");
}

#[test]
fn an_owner_by_id_a_named_workspace_and_a_yearly_renewal() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("notes.md", "# Q4 access review\n");
    let run = upload(
        &sim,
        &work,
        "notes.md",
        &[
            "--owner",
            "7",
            "--workspace",
            "2",
            "--renewal",
            "1y",
            "--name",
            "Q4 review",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let item = &sim.evidence()[0];
    assert_eq!((item.owner_id, item.workspace_id), (7, 2));
    assert_eq!(item.name, "Q4 review");
    assert_eq!(item.renewal_schedule_type, "ONE_YEAR");
    assert!(item.control_ids.is_empty());
}

#[test]
fn an_unknown_owner_or_control_is_a_clear_error_and_nothing_is_posted() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("e.md", "evidence\n");
    let run = upload(&sim, &work, "e.md", &["--owner", "nobody@example.com"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no Drata user has the email nobody@example.com"),
        "{}",
        run.stderr
    );
    let run = upload(
        &sim,
        &work,
        "e.md",
        &[
            "--owner",
            "alice.nguyen@example.com",
            "--control",
            "DCF-2400",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no control has the code DCF-2400 in workspace 1"),
        "{}",
        run.stderr
    );
    // A search that finds DCF-24 and DCF-240 for "DCF-2" takes the exact code only.
    let run = upload(&sim, &work, "e.md", &["--owner", "1", "--control", "DCF-2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(sim.evidence()[0].control_ids, [2]);
    assert_eq!(posts(&sim), 1, "only the last upload was posted");
}

#[test]
fn a_file_type_the_library_does_not_accept_is_refused_before_any_request() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("evidence.exe", "MZ");
    let run = upload(&sim, &work, "evidence.exe", &["--owner", "1"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("does not accept this file type"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(".xlsx"),
        "the accepted types are listed"
    );
    assert_eq!(
        sim.stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn without_a_primary_workspace_the_choice_is_refused_with_the_list() {
    let sim = simulator(|config| config.no_primary_workspace = true);
    let work = Workdir::new();
    work.write("e.md", "evidence\n");
    let run = upload(&sim, &work, "e.md", &["--owner", "1"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("1 (Acme (primary)), 2 (Acme EU)"),
        "{}",
        run.stderr
    );
    assert_eq!(posts(&sim), 0);
}

#[test]
fn a_post_stored_but_answered_too_late_makes_exactly_one_item() {
    let sim = simulator(|config| {
        config.evidence_stalled_posts = 1;
        config.slow_delay = std::time::Duration::from_secs(3);
    });
    let work = Workdir::new();
    work.write("e.md", "evidence\n");
    let run = upload(&sim, &work, "e.md", &["--owner", "1", "--timeout", "0.5"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let items = sim.evidence();
    assert_eq!(items.len(), 1, "one upload, one item: {items:?}");
    assert_eq!(posts(&sim), 1, "the name was found: not sent again");
    assert_eq!(run.stdout, format!("{}\n", items[0].id));
}

#[test]
fn a_file_too_large_for_drata_fails_with_its_message_and_is_not_retried() {
    let sim = simulator(|config| config.evidence_max_bytes = 4);
    let work = Workdir::new();
    work.write("e.md", "more than four bytes\n");
    let run = upload(&sim, &work, "e.md", &["--owner", "1"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("413") && run.stderr.contains("File too large"),
        "{}",
        run.stderr
    );
    assert_eq!(posts(&sim), 1);
    assert!(sim.evidence().is_empty());
}

#[test]
fn a_refused_key_is_fatal() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("e.md", "evidence\n");
    let url = sim.base_url();
    let run = Invocation::new(
        [
            "upload-evidence",
            "e.md",
            "--owner",
            "1",
            "--base-url",
            &url,
        ],
        None,
    )
    .within(&work)
    .env("DRATA_API_KEY", "wrong-key")
    .run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(posts(&sim), 0);
}

/// The README's quarterly walkthrough, against the simulator: export, review (the edit the
/// README's sed makes), apply with the workbook evidence, and upload it into the library.
#[test]
fn the_quarterly_walkthrough_ends_with_the_evidence_in_the_library() {
    let sim = simulator(|config| config.identities = 100);
    let work = Workdir::new();
    let run = Export::on(&sim)
        .within(&work)
        .args(["-o", "q4-review.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let exported = std::fs::read_to_string(work.path("q4-review.csv")).unwrap();
    let reviewed: String = exported
        .lines()
        .map(|line| match line.split_once(",false,,") {
            Some((id, rest)) if line.contains("name contains") => {
                format!("{id},true,Automation account; confirmed in the Q4 2026 review,{rest}\n")
            }
            _ => format!("{line}\n"),
        })
        .collect();
    work.write("q4-reviewed.csv", &reviewed);
    let run = Apply::on(&sim)
        .within(&work)
        .file("q4-reviewed.csv")
        .args(["--reconcile", "--evidence", "q4-evidence.xlsx"])
        .no_report()
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let changes = sheet(&work.path("q4-evidence.xlsx"), "Changes");
    assert!(changes.len() > 1, "the review changed something");
    let run = upload(
        &sim,
        &work,
        "q4-evidence.xlsx",
        &["--owner", "alice.nguyen@example.com", "--control", "DCF-24"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let items = sim.evidence();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].control_ids, [24]);
    assert_eq!(
        items[0].file,
        std::fs::read(work.path("q4-evidence.xlsx")).unwrap()
    );
}

/// The cells of a Markdown table row: split at the pipes no backslash escapes.
fn cells_of(line: &str) -> usize {
    let mut escaped = false;
    let mut pipes = 0;
    for c in line.chars() {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, '|') => pipes += 1,
            _ => escaped = false,
        }
    }
    pipes - 1
}

/// Every table in `markdown` has a header, a separator line, and rows of as many cells.
fn assert_tables_are_whole(markdown: &str) {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut at = 0;
    let mut tables = 0;
    while at < lines.len() {
        if !lines[at].starts_with('|') {
            at += 1;
            continue;
        }
        let width = cells_of(lines[at]);
        let separator = lines[at + 1];
        assert!(
            separator
                .split('|')
                .all(|c| c.trim().trim_matches(':').chars().all(|c| c == '-')),
            "no separator under {}:\n{markdown}",
            lines[at]
        );
        assert_eq!(cells_of(separator), width, "{separator}");
        at += 2;
        while at < lines.len() && lines[at].starts_with('|') {
            assert_eq!(cells_of(lines[at]), width, "a cell split: {}", lines[at]);
            at += 1;
        }
        tables += 1;
    }
    assert!(
        tables >= 3,
        "the facts, the counts, the changes:\n{markdown}"
    );
}

#[test]
fn the_markdown_record_keeps_pipes_and_line_breaks_inside_its_cells() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write(
        "review.csv",
        "id,flag,reason\n3,true,\"CI | deploy\nrunner, `main` only\"\n44,true,bot\n",
    );
    let run = Apply::on(&sim)
        .within(&work)
        .file("review.csv")
        .args(["--report", "r|1.csv", "--evidence", "e.md"])
        .run()
        .run;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let evidence = std::fs::read_to_string(work.path("e.md")).unwrap();
    assert_tables_are_whole(&evidence);
    assert!(
        evidence.contains("| fact | value |\n|---|---|\n"),
        "{evidence}"
    );
    assert!(evidence.contains("--report 'r\\|1.csv'"), "{evidence}");
    assert!(evidence.contains("CI \\| deploy"), "{evidence}");
    for fact in [
        "| Verification | 2 verified, 0 not verified |",
        "| updated | 2 |",
    ] {
        assert!(evidence.contains(fact), "{fact}:\n{evidence}");
    }
}
