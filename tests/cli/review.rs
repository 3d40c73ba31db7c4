//! What the reviewer meant: apply sends what plan shows, the three-way review against the
//! state an export carries, reasons that survive the round trip, and the check after the run.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::*;

/// Ids whose report row has `outcome`, sorted (rows are written as they finish).
fn ids(report: &[std::collections::HashMap<String, String>], outcome: &str) -> Vec<u64> {
    let mut ids = ids_with(report, outcome);
    ids.sort_unstable();
    ids
}

fn puts(sim: &RunningSimulator) -> u64 {
    sim.stats.puts.load(Ordering::Relaxed)
}

fn write_records(work: &Workdir, name: &str, records: &[Vec<String>]) {
    let mut writer = csv::Writer::from_path(work.path(name)).unwrap();
    for record in records {
        writer.write_record(record).unwrap();
    }
    writer.flush().unwrap();
}

/// Sets the flag and reason cells of the row of `id`.
fn edit(records: &mut [Vec<String>], id: u64, flag: &str, reason: &str) {
    let row = records.iter_mut().find(|r| r[0] == id.to_string()).unwrap();
    row[1] = flag.to_owned();
    row[2] = reason.to_owned();
    if flag == "true" {
        // A service account is linked to nobody (linkedUser).
        row[6] = String::new();
    }
}

fn export(sim: &RunningSimulator, work: &Workdir, name: &str) {
    let run = Export::on(sim).within(work).args(["-o", name]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn plain_apply_of_an_export_sends_only_the_edited_rows_and_resend_sends_all() {
    let sim = simulator(|c| c.identities = 30);
    let work = Workdir::new();
    export(&sim, &work, "review.csv");
    let mut rows = records(&work.path("review.csv"));
    assert_eq!(
        &rows[0][13..],
        [
            "drataServiceAccount",
            "drataReason",
            "drataLinkedUser",
            "drataAdminAccess",
            "drataDbAccess",
            "exportedAt"
        ]
    );
    for id in [1, 2, 3] {
        edit(&mut rows, id, "true", &format!("deploy bot {id}"));
    }
    write_records(&work, "reviewed.csv", &rows);
    let before = puts(&sim);
    let run = Apply::on(&sim)
        .within(&work)
        .file("reviewed.csv")
        .args(["--report", "r.csv", "--evidence", "e.md"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(puts(&sim) - before, 3, "exactly the edited rows are sent");
    let report = read_report(&work.path("r.csv"));
    assert_eq!(ids(&report, "updated"), vec![1, 2, 3]);
    for id in [1, 2, 3] {
        let row = line(&report, id + 1);
        assert_eq!(row["previous_service_account"], "false");
        assert_eq!(row["verified"], "yes");
        assert_eq!(row["source"], "input");
    }
    let evidence = std::fs::read_to_string(work.path("e.md")).unwrap();
    assert!(
        evidence.contains("3 identities were updated; 3 of them verified"),
        "{evidence}"
    );
    for id in [1, 2, 3] {
        assert!(
            evidence.contains(&format!("| {id} | ")) && evidence.contains("not a service account"),
            "{evidence}"
        );
    }
    assert!(!evidence.contains("not read"), "{evidence}");

    let before = puts(&sim);
    let run = Apply::on(&sim)
        .within(&work)
        .file("reviewed.csv")
        .args(["--report", "r2.csv", "--resend"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Unmarked rows with no reason cannot be sent; every other row is.
    let sendable = rows[1..].iter().filter(|r| !r[2].is_empty()).count() as u64;
    assert_eq!(puts(&sim) - before, sendable);
    assert!(sendable > 3);
}

#[test]
fn rows_drata_changed_since_the_export_are_drifted_or_in_conflict() {
    let sim = simulator(|c| c.identities = 20);
    let work = Workdir::new();
    export(&sim, &work, "review.csv");
    // Meanwhile, a colleague marks 8 and 9 in Drata.
    work.write(
        "colleague.csv",
        "id,flag,reason\n8,true,colleague: CI\n9,true,colleague: backups\n",
    );
    let run = Apply::on(&sim)
        .within(&work)
        .file("colleague.csv")
        .args(["--report", "c.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut rows = records(&work.path("review.csv"));
    for id in [1, 2, 3] {
        edit(&mut rows, id, "true", "reviewer: bot");
    }
    edit(&mut rows, 8, "true", "reviewer: something else");
    write_records(&work, "reviewed.csv", &rows);

    let plan = Plan::on(&sim)
        .within(&work)
        .file("reviewed.csv")
        .args(["--report", "p.csv"])
        .run();
    assert_eq!(plan.code, 1, "a conflict fails the plan: {}", plan.stderr);
    let report = read_report(&work.path("p.csv"));
    assert_eq!(ids(&report, "would_update"), vec![1, 2, 3]);
    assert_eq!(ids(&report, "drifted"), vec![9]);
    assert_eq!(ids(&report, "conflict"), vec![8]);
    let conflict = line(&report, 9);
    assert_eq!(conflict["baseline_service_account"], "false");
    assert_eq!(conflict["previous_reason"], "colleague: CI");
    assert_eq!(conflict["reason"], "reviewer: something else");
    assert!(
        plan.stdout
            .contains("exported less than a day ago; 2 identities changed in Drata since"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("CONFLICT"), "{}", plan.stdout);
    assert!(plan.stdout.contains("drifted"), "{}", plan.stdout);

    let before = puts(&sim);
    let run = Apply::on(&sim)
        .within(&work)
        .file("reviewed.csv")
        .args(["--report", "a.csv"])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(puts(&sim) - before, 3);
    let report = read_report(&work.path("a.csv"));
    assert_eq!(ids(&report, "drifted"), vec![9]);
    assert_eq!(line(&report, 10)["previous_reason"], "colleague: backups");

    let before = puts(&sim);
    let run = Apply::on(&sim)
        .within(&work)
        .file("reviewed.csv")
        .args(["--report", "o.csv", "--overwrite-drift"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(puts(&sim) - before, 1, "the conflict alone is sent");
    let report = read_report(&work.path("o.csv"));
    assert_eq!(ids(&report, "updated"), vec![8]);
    assert_eq!(ids(&report, "drifted"), vec![9], "drift is still kept");

    export(&sim, &work, "after.csv");
    let after = records(&work.path("after.csv"));
    let row9 = after.iter().find(|r| r[0] == "9").unwrap();
    assert_eq!(row9[2], "colleague: backups", "Drata's change was kept");
}

/// Reasons that begin with what spreadsheets and our own prefix care about.
const AWKWARD: [&str; 8] = [
    "'quoted",
    "'-x legacy",
    "'=1+1",
    "-x legacy",
    "=1+1",
    "+44 on call",
    "@ops team",
    "\tindented",
];

/// One CSV cell as our writers make it: one `'` before what the reader strips.
fn prefixed(reason: &str) -> String {
    if reason.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) {
        format!("'{reason}")
    } else {
        reason.to_owned()
    }
}

/// Drata's reasons of ids 1..=8, read from an export as the input reader reads them.
fn exported_reasons(sim: &RunningSimulator, work: &Workdir, name: &str) -> Vec<String> {
    export(sim, work, name);
    records(&work.path(name))
        .into_iter()
        .skip(1)
        .take(8)
        .map(|r| {
            let cell = r[2].clone();
            assert_eq!(r[14], cell, "the baseline reason is written the same way");
            match cell.strip_prefix('\'') {
                Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) => {
                    rest.to_owned()
                }
                _ => cell,
            }
        })
        .collect()
}

#[test]
fn awkward_reasons_survive_export_apply_and_undo_byte_for_byte() {
    let sim = simulator(|c| c.identities = 8);
    let work = Workdir::new();
    let mut seed = String::from("id,flag,reason\n");
    for (index, reason) in AWKWARD.iter().enumerate() {
        let cell = prefixed(reason).replace('"', "\"\"");
        seed.push_str(&format!("{},true,\"{cell}\"\n", index + 1));
    }
    work.write("seed.csv", &seed);
    let run = Apply::on(&sim)
        .within(&work)
        .file("seed.csv")
        .args(["--report", "s.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(exported_reasons(&sim, &work, "x.csv"), AWKWARD);

    for name in ["review.csv", "review.xlsx"] {
        export(&sim, &work, name);
        let before = puts(&sim);
        let report = format!("{name}.report.csv");
        let run = Apply::on(&sim)
            .within(&work)
            .file(name)
            .args(["--report", &report])
            .run();
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(
            puts(&sim) - before,
            0,
            "{name}: an unedited export sends nothing"
        );
        let plan = Plan::on(&sim)
            .within(&work)
            .file(name)
            .args(["--report", "p.csv", "--force"])
            .run();
        assert!(plan.stdout.contains("No change"), "{name}: {}", plan.stdout);
    }

    let mut change = String::from("id,flag,reason\n");
    for id in 1..=8 {
        change.push_str(&format!("{id},false,reviewed\n"));
    }
    work.write("change.csv", &change);
    let run = Apply::on(&sim)
        .within(&work)
        .file("change.csv")
        .args(["--report", "c.csv", "--undo", "undo.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = Apply::on(&sim)
        .within(&work)
        .file("undo.csv")
        .args(["--report", "u.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(exported_reasons(&sim, &work, "y.csv"), AWKWARD);
}

/// ids 1..=3 as a scripted server holds them before the run: unmarked.
fn checked_run(
    reply: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> (
    Run,
    Vec<std::collections::HashMap<String, String>>,
    Workdir,
    String,
) {
    let server = TestServer::start(move |seen, _| reply(seen)).seed(1..=3);
    let work = Workdir::new();
    let Finished { run, rows, .. } = Apply::on(&server)
        .within(&work)
        .input("id,flag,reason\n1,true,ci\n2,true,ci\n")
        .args([
            "--undo",
            "undo.csv",
            "--evidence",
            "e.md",
            "--max-attempts",
            "2",
            "--timeout",
            "0.3",
        ])
        .run();
    let evidence = std::fs::read_to_string(work.path("e.md")).unwrap_or_default();
    (run, rows, work, evidence)
}

/// The ids in the undo file, sorted: rows go there as they finish, in any order.
fn undo_ids(work: &Workdir) -> Vec<String> {
    let mut ids: Vec<String> = records(&work.path("undo.csv"))
        .into_iter()
        .skip(1)
        .map(|r| r[0].clone())
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_row_applied_behind_a_502_or_a_timeout_is_updated_verified_and_undoable() {
    for (what, slow) in [("502", false), ("timeout", true)] {
        let (run, rows, work, evidence) = checked_run(move |seen| match seen.id() {
            Some(2) if slow => Reply::identity(2)
                .after(Duration::from_millis(900))
                .applied(true),
            Some(2) => Reply::json(502, "bad gateway").applied(true),
            id => Reply::identity(id.unwrap_or(1)),
        });
        assert_eq!(run.code, 0, "{what}: {}", run.stderr);
        let row = line(&rows, 3);
        assert_eq!(row["outcome"], "updated", "{what}");
        assert_eq!(row["verified"], "yes", "{what}");
        assert!(
            row["error"].contains("the API answered"),
            "{what}: {}",
            row["error"]
        );
        assert_eq!(line(&rows, 2)["verified"], "yes");
        assert_eq!(undo_ids(&work), ["1", "2"], "{what}");
        assert!(
            evidence.contains("2 identities were updated; 2 of them verified"),
            "{what}: {evidence}"
        );
    }
}

#[test]
fn a_2xx_that_drata_does_not_show_fails_the_run_and_stays_in_the_undo_file() {
    let (run, rows, work, evidence) = checked_run(|seen| match seen.id() {
        Some(2) => Reply::identity(2).applied(false),
        id => Reply::identity(id.unwrap_or(1)),
    });
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("verified=no"), "{}", run.stderr);
    let row = line(&rows, 3);
    assert_eq!(row["outcome"], "updated");
    assert_eq!(row["verified"], "no");
    assert_eq!(line(&rows, 2)["verified"], "yes");
    // The undo file only grows: a check that does not show 2 (a stale listing, or a
    // change Drata did not keep) never takes its row out.
    assert_eq!(undo_ids(&work), ["1", "2"]);
    assert!(
        run.stderr.contains("not shown by Drata yet"),
        "{}",
        run.stderr
    );
    assert!(evidence.contains("1 of them verified"), "{evidence}");
}

#[test]
fn no_verify_skips_the_second_read() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap_or(1))).seed(1..=3);
    let Finished { run, rows, .. } = Apply::on(&server)
        .input("id,flag,reason\n1,true,ci\n")
        .args(["--no-verify"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(line(&rows, 2)["verified"], "");
    assert_eq!(server.listings(), 1, "the state is read once, before");
    let Finished { run, rows, .. } = Apply::on(&server)
        .input("id,flag,reason\n2,true,ci\n")
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(line(&rows, 2)["verified"], "yes");
    assert_eq!(server.listings(), 3, "before and after");
}

/// The check's cost: ceil((N+1)/50) GETs for N identities.
#[test]
fn the_check_after_the_run_reads_the_listing_once_more() {
    let sim = simulator(|c| c.identities = 1000);
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,ci\n");
    let lists = || sim.stats.lists.load(Ordering::Relaxed);
    let before = lists();
    let run = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--report", "r.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(lists() - before, 2 * 1001_u64.div_ceil(50));
}

#[test]
fn resend_goes_on_without_a_refused_listing_and_says_so() {
    // A key that may update identities but not list them: the listing is answered 403.
    let server = TestServer::scripted(|seen, _| match seen.method.as_str() {
        "GET" => Reply::json(403, r#"{"message":"Forbidden"}"#),
        _ => Reply::identity(seen.id().unwrap()),
    });
    let csv = "id,flag,reason\n1,true,a\n2,true,b\n";
    let refused = Apply::on(&server).input(csv).run();
    assert_eq!(
        refused.code, 3,
        "without --resend the state is needed: {}",
        refused.stderr
    );
    assert!(
        server.seen().iter().all(|s| s.method == "GET"),
        "nothing sent"
    );

    let resent = Apply::on(&server).input(csv).args(["--resend"]).run();
    assert_eq!(resent.code, 0, "{}", resent.stderr);
    assert_eq!(ids(&resent.rows, "updated"), [1, 2]);
    assert!(resent.rows.iter().all(|r| r["verified"].is_empty()));
    assert!(
        resent
            .stderr
            .contains("could not be read (403): --resend goes on without it"),
        "{}",
        resent.stderr
    );
    let listings = server.seen().iter().filter(|s| s.method == "GET").count();
    assert_eq!(
        listings, 2,
        "one refused listing per run, none to check after"
    );
    assert_eq!(
        server.seen().iter().filter(|s| s.method == "PUT").count(),
        2
    );
}
