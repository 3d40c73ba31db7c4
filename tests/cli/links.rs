//! Linking identities to the people they belong to: the export's `linkedUser` column edited
//! and applied through `PUT …/connect`, beside the service-account flag, against the
//! simulator (whose seeded people are linked, but for ids 19 and 69 of every hundred).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use crate::support::*;

fn write_records(work: &Workdir, name: &str, records: &[Vec<String>]) {
    let mut writer = csv::Writer::from_path(work.path(name)).unwrap();
    for record in records {
        writer.write_record(record).unwrap();
    }
    writer.flush().unwrap();
}

fn column(records: &[Vec<String>], name: &str) -> usize {
    records[0]
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", records[0]))
}

/// Sets cells of the row of `id`, by column name.
fn edit(records: &mut [Vec<String>], id: u64, cells: &[(&str, &str)]) {
    let at: Vec<(usize, String)> = cells
        .iter()
        .map(|(name, value)| (column(records, name), (*value).to_owned()))
        .collect();
    let row = records.iter_mut().find(|r| r[0] == id.to_string()).unwrap();
    for (index, value) in at {
        row[index] = value;
    }
}

/// `linkedUser` of every identity, by id.
fn links(records: &[Vec<String>]) -> HashMap<u64, String> {
    let at = column(records, "linkedUser");
    records[1..]
        .iter()
        .map(|r| (r[0].parse().unwrap(), r[at].clone()))
        .collect()
}

fn export(sim: &RunningSimulator, work: &Workdir, name: &str) -> Vec<Vec<String>> {
    let run = Export::on(sim).within(work).args(["-o", name]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    records(&work.path(name))
}

/// Requests that change Drata: (connect, service-account).
fn sent(sim: &RunningSimulator) -> (u64, u64) {
    (
        sim.stats.connects.load(Ordering::Relaxed),
        sim.stats.puts.load(Ordering::Relaxed),
    )
}

const ALICE: &str = "alice.nguyen@example.com";
const BRUNO: &str = "bruno.nguyen@example.com";

/// Five decisions of a review: two unlinked people linked, one unlinked, one linked to
/// another person, an unmarked bot marked.
fn reviewed(records: &mut [Vec<String>]) {
    edit(records, 19, &[("linkedUser", "Goran.Nguyen@example.com")]);
    edit(records, 69, &[("linkedUser", "chen.smith@example.com")]);
    edit(records, 1, &[("linkedUser", "")]);
    edit(records, 2, &[("linkedUser", BRUNO)]);
    edit(
        records,
        44,
        &[
            ("serviceAccount", "true"),
            ("serviceAccountReason", "Deploy pipeline"),
        ],
    );
}

#[test]
fn a_review_links_unlinks_and_marks_exactly_what_it_says_and_its_undo_restores_the_links() {
    let sim = simulator(|c| c.identities = 120);
    let work = Workdir::new();
    let mut rows = export(&sim, &work, "first.csv");
    let first = links(&rows);
    assert_eq!(first[&1], ALICE);
    assert_eq!(first[&19], "", "seeded unlinked");
    assert_eq!(first[&7], "", "a service account is linked to nobody");
    let drata_linked = column(&rows, "drataLinkedUser");
    assert_eq!(rows[1][drata_linked], ALICE, "the baseline of the link");
    reviewed(&mut rows);
    write_records(&work, "reviewed.csv", &rows);

    let plan = Plan::on(&sim)
        .within(&work)
        .file("reviewed.csv")
        .args(["--report", "plan.report.csv"])
        .run();
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let changed: Vec<&str> = plan.stdout.lines().filter(|l| l.contains('→')).collect();
    assert_eq!(changed.len(), 5, "{}", plan.stdout);
    for expected in [
        "id 19  goran.nguyen [AWS aws-prod #1]: linked to nobody → goran.nguyen@example.com",
        "id 69  chen.smith [AZURE azure-corp #3]: linked to nobody → chen.smith@example.com",
        "id 1  alice.nguyen [AWS aws-prod #1]: linked to alice.nguyen@example.com → nobody",
        "id 2  alice.nguyen [GCP gcp-main #2]: linked to alice.nguyen@example.com → bruno.nguyen@example.com",
        "→ service account (\"Deploy pipeline\")",
    ] {
        assert!(plan.stdout.contains(expected), "{expected}: {}", plan.stdout);
    }
    assert!(
        plan.stdout.contains("4 link changes"),
        "link changes counted apart: {}",
        plan.stdout
    );
    assert_eq!(sent(&sim), (0, 0), "plan sends nothing");

    let apply = |input: &str, report: &str, undo: &str| {
        let run = Apply::on(&sim)
            .within(&work)
            .file(input)
            .args(["--report", report, "--undo", undo])
            .run();
        assert_eq!(run.code, 0, "{input}: {}", run.stderr);
        read_report(&work.path(report))
    };
    let report = apply("reviewed.csv", "r1.csv", "undo.csv");
    assert_eq!(sent(&sim), (4, 1), "4 connect, 1 service-account");
    let updated = ids_with(&report, "updated");
    assert_eq!(updated.len(), 5, "{report:?}");
    for row in report.iter().filter(|r| r["outcome"] == "updated") {
        assert_eq!(row["verified"], "yes", "{row:?}");
        assert_eq!(row["attempts"], "1", "{row:?}");
    }
    let row_of = |id: u64| report.iter().find(|r| r["id"] == id.to_string()).unwrap();
    assert_eq!(row_of(2)["linked_user"], BRUNO);
    assert_eq!(row_of(2)["previous_linked_user"], ALICE);
    assert_eq!(row_of(1)["linked_user"], "");
    let after = links(&export(&sim, &work, "after.csv"));
    assert_eq!(after[&2], BRUNO);
    assert_eq!(after[&1], "");
    assert_eq!(after[&19], "goran.nguyen@example.com");

    // Applied again, nothing differs: nothing is sent.
    apply("reviewed.csv", "r2.csv", "undo2.csv");
    assert_eq!(sent(&sim), (4, 1), "a second apply sends nothing");

    // The undo file puts every link (and the flag) back.
    let undo = Apply::on(&sim)
        .within(&work)
        .file("undo.csv")
        .args(["--report", "r3.csv"])
        .run();
    assert_eq!(undo.code, 0, "{}", undo.stderr);
    assert_eq!(sent(&sim), (8, 2));
    let restored = export(&sim, &work, "restored.csv");
    assert_eq!(links(&restored), first, "every link back");
    let flag = column(&restored, "serviceAccount");
    assert_eq!(restored[44][flag], "false");
}

#[test]
fn a_service_account_naming_a_person_or_an_unknown_email_is_invalid_and_nothing_is_sent() {
    let sim = simulator(|c| c.identities = 60);
    let work = Workdir::new();
    let mut rows = export(&sim, &work, "first.csv");
    edit(
        &mut rows,
        1,
        &[("serviceAccount", "true"), ("serviceAccountReason", "ci")],
    );
    edit(&mut rows, 2, &[("linkedUser", "nobody.here@example.com")]);
    edit(&mut rows, 19, &[("linkedUser", BRUNO)]);
    write_records(&work, "reviewed.csv", &rows);
    let run = Apply::on(&sim)
        .within(&work)
        .file("reviewed.csv")
        .args(["--report", "r.csv"])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(sent(&sim), (0, 0), "nothing sent");
    let report = read_report(&work.path("r.csv"));
    let row_of = |id: &str| report.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(row_of("1")["outcome"], "invalid");
    assert!(
        row_of("1")["error"].contains("does not link a service account"),
        "{:?}",
        row_of("1")
    );
    assert_eq!(row_of("2")["outcome"], "invalid");
    assert!(
        row_of("2")["error"].contains("nobody.here@example.com"),
        "the email named: {:?}",
        row_of("2")
    );
    assert!(
        run.stderr.contains("nobody.here@example.com"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_service_account_that_becomes_a_person_is_unmarked_before_it_is_linked() {
    let sim = simulator(|c| c.identities = 60);
    let work = Workdir::new();
    let mut rows = export(&sim, &work, "first.csv");
    // Id 7 is a seeded service account; id 3 a linked person who becomes one.
    edit(
        &mut rows,
        7,
        &[
            ("serviceAccount", "false"),
            ("serviceAccountReason", "a person after all"),
            ("linkedUser", ALICE),
        ],
    );
    edit(
        &mut rows,
        3,
        &[
            ("serviceAccount", "true"),
            ("serviceAccountReason", "shared admin"),
            ("linkedUser", ""),
        ],
    );
    write_records(&work, "reviewed.csv", &rows);
    let run = Apply::on(&sim)
        .within(&work)
        .file("reviewed.csv")
        .args(["--report", "r.csv"])
        .run();
    // The simulator, like Drata, refuses to link a service account: a link sent first
    // would fail.
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(sent(&sim), (2, 2), "two requests per row");
    let report = read_report(&work.path("r.csv"));
    for id in ["7", "3"] {
        let row = report.iter().find(|r| r["id"] == id).unwrap();
        assert_eq!(row["outcome"], "updated", "{row:?}");
        assert_eq!(row["attempts"], "2", "{row:?}");
    }
    let after = export(&sim, &work, "after.csv");
    assert_eq!(links(&after)[&7], ALICE);
    assert_eq!(links(&after)[&3], "");
}

#[test]
fn a_link_changed_in_drata_after_the_export_and_unedited_in_the_sheet_drifts() {
    let sim = simulator(|c| c.identities = 60);
    let work = Workdir::new();
    let mut rows = export(&sim, &work, "first.csv");
    // Someone links id 1 to another person in Drata after the export.
    work.write(
        "elsewhere.csv",
        &format!("id,serviceAccount,serviceAccountReason,linkedUser\n1,false,x,{BRUNO}\n"),
    );
    let elsewhere = Apply::on(&sim)
        .within(&work)
        .file("elsewhere.csv")
        .args(["--report", "elsewhere.report.csv"])
        .run();
    assert_eq!(elsewhere.code, 0, "{}", elsewhere.stderr);
    assert_eq!(sent(&sim), (1, 0));
    // The sheet leaves id 1 as exported, and edits id 2's link.
    edit(&mut rows, 2, &[("linkedUser", "")]);
    write_records(&work, "reviewed.csv", &rows);
    let run = Apply::on(&sim)
        .within(&work)
        .file("reviewed.csv")
        .args(["--report", "r.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(sent(&sim), (2, 0), "only id 2's unlink");
    let report = read_report(&work.path("r.csv"));
    let one = report.iter().find(|r| r["id"] == "1").unwrap();
    assert_eq!(one["outcome"], "drifted", "{one:?}");
    let after = export(&sim, &work, "after.csv");
    assert_eq!(links(&after)[&1], BRUNO, "Drata's change is kept");
}

const DANA: &str = "dana@example.com";

/// A server whose listing holds id 5, a service account, and id 6, a person linked to
/// Dana (user 9); `answer` answers the PUTs.
fn server_of_two(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestServer {
    TestServer::start(move |seen, _| answer(seen)).seed_with(
        [
            serde_json::json!({"id": 5, "username": "ci-runner", "user": null,
                "serviceAccount": "2026-01-05T00:00:00.000Z", "serviceAccountReason": "CI runner"}),
            serde_json::json!({"id": 6, "username": "dana", "serviceAccount": null,
                "user": {"id": 9, "email": DANA}}),
        ],
        &[(9, DANA)],
    )
}

#[test]
fn a_row_whose_second_request_is_refused_is_partly_applied_kept_in_the_undo_file_and_undone() {
    // Drata accepts the unmarking, then refuses the link.
    let server = server_of_two(|seen| {
        if seen.path.ends_with("/connect") {
            Reply::json(400, r#"{"message":"refused"}"#)
        } else {
            Reply::identity(seen.id().unwrap())
        }
    });
    let work = Workdir::new();
    work.write(
        "flip.csv",
        &format!("id,serviceAccount,serviceAccountReason,linkedUser\n5,false,a person after all,{DANA}\n"),
    );
    let run = Apply::on(&server)
        .within(&work)
        .file("flip.csv")
        .args(["--report", "r.csv", "--undo", "undo.csv"])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        server.puts_by_endpoint(),
        (1, 1),
        "unmarked, then the link refused"
    );
    let report = read_report(&work.path("r.csv"));
    let row = &report[0];
    assert_eq!(row["outcome"], "failed", "{row:?}");
    assert_eq!(row["attempts"], "2", "{row:?}");
    assert_eq!(row["verified"], "no", "{row:?}");
    for said in [
        "partly applied",
        "the service-account request was applied",
        "the link request",
    ] {
        assert!(row["error"].contains(said), "{said}: {row:?}");
    }
    let half = server.identity(5).unwrap();
    assert!(half["serviceAccount"].is_null(), "Drata holds half: {half}");

    // The undo file holds the row: the state before the run.
    let undo = undo_records(&work.path("undo.csv"));
    assert_eq!(
        undo,
        [
            vec![
                "id",
                "serviceAccount",
                "serviceAccountReason",
                "drataServiceAccount",
                "drataReason",
                "linkedUser",
                "drataLinkedUser"
            ],
            // Before the run, and what Drata holds now: the flag applied, the link not.
            vec!["5", "true", "CI runner", "false", "", "", ""],
        ],
    );
    let back = Apply::on(&server)
        .within(&work)
        .file("undo.csv")
        .args(["--report", "u.csv"])
        .run();
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(
        server.puts_by_endpoint(),
        (1, 2),
        "only the flag to put back"
    );
    let restored = server.identity(5).unwrap();
    assert!(restored["serviceAccount"].is_string(), "{restored}");
    assert_eq!(restored["serviceAccountReason"], "CI runner", "{restored}");
    assert!(restored["user"].is_null(), "{restored}");
}

/// Exports, has the flag of id 6 changed elsewhere (marked), unlinks id 6 in the sheet and
/// applies it: the report's row of id 6 and the exit code.
fn unlink_while_the_flag_drifted(server: &TestServer) -> (HashMap<String, String>, i32) {
    let work = Workdir::new();
    let exported = Export::on(server)
        .within(&work)
        .args(["-o", "first.csv"])
        .run();
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let mut rows = records(&work.path("first.csv"));
    assert_eq!(links(&rows)[&6], DANA);
    work.write(
        "elsewhere.csv",
        "id,serviceAccount,serviceAccountReason\n6,true,shared admin\n",
    );
    let elsewhere = Apply::on(server)
        .within(&work)
        .file("elsewhere.csv")
        .args(["--report", "e.csv"])
        .run();
    assert_eq!(elsewhere.code, 0, "{}", elsewhere.stderr);
    assert_eq!(server.puts_by_endpoint(), (0, 1));
    edit(&mut rows, 6, &[("linkedUser", "")]);
    write_records(&work, "reviewed.csv", &rows);
    let args = [
        "apply",
        "reviewed.csv",
        "--report",
        "r.csv",
        "--evidence",
        "evidence.md",
    ];
    let run = Invocation::new(args, Some(Endpoint::from(server)))
        .within(&work)
        .run();
    assert_eq!(
        server.puts_by_endpoint(),
        (1, 1),
        "only the link is sent: {}",
        run.stderr
    );
    // The evidence shows the flag as Drata kept it, not as the sheet said.
    let evidence = std::fs::read_to_string(work.path("evidence.md")).unwrap();
    let change = evidence.lines().find(|l| l.starts_with("| 6 |")).unwrap();
    let kept = "service account (\"shared admin\")";
    assert!(
        change.contains(&format!(
            "| {kept}; linked to {DANA} | {kept}; linked to nobody |"
        )),
        "{change}"
    );
    let report = read_report(&work.path("r.csv"));
    let row = report.iter().find(|r| r["id"] == "6").unwrap().clone();
    (row, run.code)
}

#[test]
fn a_row_that_sends_the_link_alone_is_verified_on_the_link_not_on_the_drifted_flag() {
    let server = server_of_two(|seen| Reply::identity(seen.id().unwrap()));
    let (row, code) = unlink_while_the_flag_drifted(&server);
    assert_eq!(code, 0, "{row:?}");
    assert_eq!(row["outcome"], "updated", "{row:?}");
    assert_eq!(row["verified"], "yes", "{row:?}");
    let now = server.identity(6).unwrap();
    assert!(now["user"].is_null(), "unlinked: {now}");
    assert_eq!(
        now["serviceAccountReason"], "shared admin",
        "Drata's flag kept"
    );
}

#[test]
fn a_link_answered_200_but_not_stored_is_not_verified() {
    let server = server_of_two(|seen| {
        let answer = Reply::identity(seen.id().unwrap());
        if seen.path.ends_with("/connect") {
            answer.applied(false)
        } else {
            answer
        }
    });
    let (row, code) = unlink_while_the_flag_drifted(&server);
    assert_eq!(code, 1, "{row:?}");
    assert_eq!(row["outcome"], "updated", "{row:?}");
    assert_eq!(row["verified"], "no", "{row:?}");
    assert_eq!(server.identity(6).unwrap()["user"]["email"], DANA);
}

#[test]
fn a_link_edited_in_the_sheet_and_changed_in_drata_conflicts_unless_drift_is_overwritten() {
    let sim = simulator(|c| c.identities = 60);
    let work = Workdir::new();
    let mut rows = export(&sim, &work, "first.csv");
    // A third person, neither id 2's (Alice) nor Bruno.
    let third = links(&rows)
        .into_values()
        .find(|email| !email.is_empty() && email != ALICE && email != BRUNO)
        .unwrap();
    // Someone links id 2 to Bruno in Drata after the export; the sheet links it to another.
    work.write(
        "elsewhere.csv",
        &format!("id,serviceAccount,serviceAccountReason,linkedUser\n2,false,x,{BRUNO}\n"),
    );
    let elsewhere = Apply::on(&sim)
        .within(&work)
        .file("elsewhere.csv")
        .args(["--report", "e.csv"])
        .run();
    assert_eq!(elsewhere.code, 0, "{}", elsewhere.stderr);
    assert_eq!(sent(&sim), (1, 0));
    edit(&mut rows, 2, &[("linkedUser", &third)]);
    write_records(&work, "reviewed.csv", &rows);

    let run = Apply::on(&sim)
        .within(&work)
        .file("reviewed.csv")
        .args(["--report", "r.csv"])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(sent(&sim), (1, 0), "a conflict is not sent");
    let report = read_report(&work.path("r.csv"));
    let two = report.iter().find(|r| r["id"] == "2").unwrap();
    assert_eq!(two["outcome"], "conflict", "{two:?}");
    assert!(two["error"].contains("the link was edited"), "{two:?}");
    assert_eq!(links(&export(&sim, &work, "kept.csv"))[&2], BRUNO);

    let args = [
        "apply",
        "reviewed.csv",
        "--report",
        "o.csv",
        "--overwrite-drift",
    ];
    let overwritten = Invocation::new(args, Some(Endpoint::from(&sim)))
        .within(&work)
        .run();
    assert_eq!(overwritten.code, 0, "{}", overwritten.stderr);
    assert_eq!(sent(&sim), (2, 0), "the link alone is sent");
    let report = read_report(&work.path("o.csv"));
    let two = report.iter().find(|r| r["id"] == "2").unwrap();
    assert_eq!(two["outcome"], "updated", "{two:?}");
    assert_eq!(two["verified"], "yes", "{two:?}");
    assert_eq!(links(&export(&sim, &work, "after.csv"))[&2], third);
}

/// Applies to a fresh server of two a row of id 5 whose unmarking Drata accepts and whose
/// link to Dana it refuses; the evidence is written to `evidence`.
fn partly_applied_with_evidence(work: &Workdir, evidence: &str) {
    let server = server_of_two(|seen| {
        if seen.path.ends_with("/connect") {
            Reply::json(400, r#"{"message":"refused"}"#)
        } else {
            Reply::identity(seen.id().unwrap())
        }
    });
    work.write(
        "flip.csv",
        &format!("id,serviceAccount,serviceAccountReason,linkedUser\n5,false,a person after all,{DANA}\n"),
    );
    let args = [
        "apply",
        "flip.csv",
        "--report",
        "r.csv",
        "--evidence",
        evidence,
    ];
    let run = Invocation::new(args, Some(Endpoint::from(&server)))
        .within(work)
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(server.puts_by_endpoint(), (1, 1));
}

#[test]
fn the_evidence_names_a_partly_applied_row_with_what_drata_holds_now() {
    let work = Workdir::new();
    partly_applied_with_evidence(&work, "ev.md");
    let evidence = std::fs::read_to_string(work.path("ev.md")).unwrap();
    assert!(
        !evidence.contains("No identity was changed"),
        "Drata holds a change: {evidence}"
    );
    let section = evidence
        .split("## Partly applied (failed; Drata holds part of the decision)")
        .nth(1)
        .unwrap_or_else(|| panic!("no section: {evidence}"));
    let line = section.lines().find(|l| l.starts_with("| 5 |")).unwrap();
    assert!(line.contains("| user5 |"), "as Drata answered: {line}");
    assert!(
        line.contains("| service account (\"CI runner\"); linked to nobody | not a service account; linked to nobody |"),
        "before, and what Drata holds now: {line}"
    );
    assert!(line.contains("the link request"), "{line}");
    // The counts: one failed, none updated; the row is not among the identities changed.
    assert!(evidence.contains("| failed | 1 |"), "{evidence}");
    assert!(!evidence.contains("| updated |"), "{evidence}");
    let changed = evidence.split("## Identities changed").nth(1).unwrap();
    let changed = changed.split("## Partly applied").next().unwrap();
    assert!(!changed.contains("| 5 |"), "{changed}");
    // The state was read again after the run: the record says it was checked.
    assert!(!evidence.contains("not checked |"), "{evidence}");
    assert!(
        evidence.contains("0 verified, 0 not verified"),
        "{evidence}"
    );
}

#[test]
fn the_evidence_workbook_has_a_sheet_of_partly_applied_rows() {
    use calamine::{Reader, Xlsx};
    let work = Workdir::new();
    partly_applied_with_evidence(&work, "ev.xlsx");
    let mut workbook: Xlsx<_> = calamine::open_workbook(work.path("ev.xlsx")).unwrap();
    assert_eq!(
        workbook.sheet_names(),
        ["Summary", "Changes", "Partly applied", "Report"]
    );
    let summary = workbook.worksheet_range("Summary").unwrap();
    let fact = |name: &str| {
        summary
            .rows()
            .find(|r| r[0] == name)
            .map(|r| r[1].to_string())
    };
    assert_eq!(fact("Identities partly applied").as_deref(), Some("1"));
    assert_eq!(fact("Identities changed").as_deref(), Some("0"));
    let partly = workbook.worksheet_range("Partly applied").unwrap();
    let rows: Vec<Vec<String>> = partly
        .rows()
        .map(|r| r.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let cell = |name: &str| {
        let at = rows[0].iter().position(|h| h == name).unwrap();
        rows[1][at].clone()
    };
    assert_eq!(cell("id"), "5");
    assert_eq!(cell("username"), "user5");
    assert_eq!(cell("before_service_account"), "true");
    assert_eq!(cell("now_service_account"), "false");
    assert_eq!(cell("now_linked_user"), "nobody");
    assert_eq!(cell("now_read"), "yes", "read by the check after the run");
    assert_eq!(cell("applied"), "service account");
    assert!(cell("error").contains("the link request"), "{rows:?}");
}

/// Applies the row of `partly_applied_with_evidence` (unmark 5, link it to Dana) to a fresh
/// server whose `connect` answers `connect`, with `extra` arguments; returns the evidence's
/// line for id 5 in the partly applied section (`None`: not there) and the evidence.
fn partly_evidence(
    connect: impl Fn() -> Reply + Send + Sync + 'static,
    extra: &[&str],
) -> (Option<String>, String) {
    let work = Workdir::new();
    let server = server_of_two(move |seen| {
        if seen.path.ends_with("/connect") {
            connect()
        } else {
            Reply::identity(seen.id().unwrap())
        }
    });
    work.write(
        "flip.csv",
        &format!("id,serviceAccount,serviceAccountReason,linkedUser\n5,false,a person after all,{DANA}\n"),
    );
    let mut args = vec![
        "apply",
        "flip.csv",
        "--report",
        "r.csv",
        "--evidence",
        "ev.md",
    ];
    args.extend_from_slice(extra);
    let run = Invocation::new(&args, Some(Endpoint::from(&server)))
        .within(&work)
        .run();
    assert_eq!(server.puts_by_endpoint(), (1, 1), "{}", run.stderr);
    let evidence = std::fs::read_to_string(work.path("ev.md")).unwrap();
    let line = evidence
        .split("## Partly applied")
        .nth(1)
        .and_then(|s| s.lines().find(|l| l.starts_with("| 5 |")))
        .map(str::to_owned);
    (line, evidence)
}

#[test]
fn a_partly_applied_row_not_checked_after_the_run_is_labelled_expected_not_checked() {
    let refused = || Reply::json(400, r#"{"message":"refused"}"#);
    let (line, evidence) = partly_evidence(refused, &["--no-verify"]);
    let line = line.unwrap_or_else(|| panic!("no partly applied row: {evidence}"));
    assert!(
        line.contains("| expected, not checked: not a service account; linked to nobody |"),
        "a computation is not shown as what Drata holds: {line}"
    );
    // Checked, the same row shows what the check read, unlabelled.
    let (line, evidence) = partly_evidence(refused, &[]);
    let line = line.unwrap_or_else(|| panic!("no partly applied row: {evidence}"));
    assert!(
        line.contains("| not a service account; linked to nobody |") && !line.contains("expected"),
        "{line}"
    );
}

#[test]
fn a_partly_applied_row_shows_the_link_the_check_after_the_run_read() {
    // Drata refuses the link, yet stores another person's: the check reads it.
    let other = || {
        Reply::json(400, r#"{"message":"refused"}"#)
            .applied(true)
            .storing(r#"{"userId": 10, "email": "other@example.com"}"#)
    };
    let (line, evidence) = partly_evidence(other, &[]);
    let line = line.unwrap_or_else(|| panic!("no partly applied row: {evidence}"));
    assert!(
        line.contains("| not a service account; linked to other@example.com |"),
        "what the check read, not what was expected: {line}"
    );
    // Not checked, the same row would say what was expected, labelled so.
    let (line, _) = partly_evidence(other, &["--no-verify"]);
    assert!(line
        .unwrap()
        .contains("| expected, not checked: not a service account; linked to nobody |"));
}

#[test]
fn a_link_stored_behind_a_502_is_shown_held_in_full() {
    // Drata stores the link and answers 502: the check shows both parts held.
    let stored = || Reply::json(502, r#"{"message":"bad gateway"}"#).applied(true);
    let (line, evidence) = partly_evidence(stored, &["--max-attempts", "1"]);
    assert_eq!(line, None, "not partly applied: {evidence}");
    let changed = evidence.split("## Identities changed").nth(1).unwrap();
    let five = changed.lines().find(|l| l.starts_with("| 5 |"));
    let five = five.unwrap_or_else(|| panic!("{evidence}"));
    assert!(five.contains(DANA), "{five}");
    assert!(five.contains("not a service account"), "{five}");
}
