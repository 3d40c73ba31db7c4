//! The plan as a diff people and scripts can read: previous state in the report, every
//! change with -v, a JSON plan, an exit code for "changes pending"; and options people
//! type out of habit.

use std::sync::atomic::Ordering;

use crate::support::*;

/// 25 rows that would all change (ids 1..=25 without 7, 14, 21 are unmarked), and id 7
/// already as desired.
fn changes_csv() -> String {
    let mut csv = String::from("id,flag,reason\n7,true,Seeded: automation account\n");
    for id in (1..=28).filter(|id| id % 7 != 0) {
        csv.push_str(&format!("{id},true,bot {id}\n"));
    }
    csv
}

#[test]
fn the_plan_report_carries_the_state_before() {
    let sim = simulator(|_| {});
    let run = Plan::on(&sim)
        .input("id,flag,reason\n7,false,human after all\n2,true,bot\n")
        .args(["--report", "p.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = run.rows.clone();
    assert_eq!(line(&rows, 2)["previous_service_account"], "true");
    assert_eq!(
        line(&rows, 2)["previous_reason"],
        "Seeded: automation account"
    );
    assert_eq!(line(&rows, 3)["previous_service_account"], "false");
    assert_eq!(line(&rows, 3)["previous_reason"], "");
}

#[test]
fn verbose_plans_print_every_change_and_json_plans_hold_them_all() {
    let sim = simulator(|_| {});
    let short = Plan::on(&sim)
        .input(changes_csv())
        .args(["--report", "a.csv"])
        .run();
    assert_eq!(short.code, 0, "{}", short.stderr);
    assert!(
        short.stdout.contains("Would update 24 of 25 rows"),
        "{}",
        short.stdout
    );
    assert!(short.stdout.contains("and 4 more"), "{}", short.stdout);
    let verbose = Plan::on(&sim)
        .input(changes_csv())
        .args(["--report", "b.csv", "-v"])
        .run();
    assert_eq!(
        verbose.stdout.lines().filter(|l| l.contains("→")).count(),
        24
    );

    let json = Plan::on(&sim)
        .input(changes_csv())
        .args(["--report", "c.csv", "--json"])
        .run();
    assert_eq!(json.code, 0, "{}", json.stderr);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(plan["rows"], 25);
    assert_eq!(plan["would_update"], 24);
    let changes = plan["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 24);
    let first = &changes[0];
    assert_eq!(first["id"], 1);
    assert_eq!(first["before"]["service_account"], false);
    assert_eq!(first["after"]["service_account"], true);
    assert_eq!(first["after"]["reason"], "bot 1");
    assert_eq!(sim.stats.puts.load(Ordering::Relaxed), 0);
}

#[test]
fn detailed_exitcode_tells_changes_pending_from_nothing_to_do() {
    let sim = simulator(|_| {});
    let pending = Plan::on(&sim)
        .input(changes_csv())
        .args(["--detailed-exitcode", "--report", "p.csv"])
        .run();
    assert_eq!(pending.code, 4, "{}", pending.stderr);
    let done = Plan::on(&sim)
        .input("id,flag,reason\n7,true,Seeded: automation account\n")
        .args(["--detailed-exitcode", "--report", "d.csv"])
        .run();
    assert_eq!(done.code, 0, "{}", done.stderr);
    let without = Plan::on(&sim)
        .input(changes_csv())
        .args(["--report", "w.csv"])
        .run();
    assert_eq!(without.code, 0, "the flag decides: {}", without.stderr);
}

#[test]
fn plan_help_lists_only_what_plan_takes_and_guessed_flags_point_the_way() {
    let work = Workdir::new();
    let help = Plan::offline()
        .within(&work)
        .args(["--help"])
        .no_report()
        .run();
    assert_eq!(help.code, 0);
    let options = help
        .stdout
        .split("Options:")
        .nth(1)
        .and_then(|rest| rest.split("Examples:").next())
        .unwrap();
    assert!(options.contains("--detailed-exitcode"), "{options}");
    for apply_only in ["--reconcile", "--undo", "--resume-from"] {
        assert!(!options.contains(apply_only), "{apply_only}: {options}");
    }
    work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let dry = Apply::offline()
        .within(&work)
        .file("in.csv")
        .args(["--dry-run"])
        .run();
    assert_eq!(dry.code, 2);
    assert!(dry.stderr.contains("drata-svcacct plan"), "{}", dry.stderr);
    let output = Apply::offline()
        .within(&work)
        .file("in.csv")
        .args(["-o", "r.csv"])
        .run();
    assert_eq!(output.code, 2);
    assert!(output.stderr.contains("--report PATH"), "{}", output.stderr);

    let sim = simulator(|_| {});
    for jobs in [&["-j", "3"][..], &["--jobs", "3"], &["--parallel", "3"]] {
        let run = Apply::on(&sim)
            .within(&work)
            .file("in.csv")
            .args(["--report", "j.csv", "--force"])
            .args(jobs)
            .run();
        assert_eq!(run.code, 0, "{jobs:?}: {}", run.stderr);
    }
    let timeout = Apply::offline()
        .within(&work)
        .file("in.csv")
        .args(["--timeout", "0.0001", "--simulate"])
        .run();
    assert_eq!(timeout.code, 2);
    assert!(timeout.stderr.contains("0.1 to 3600"), "{}", timeout.stderr);
}

#[test]
fn quiet_silences_the_diff_but_not_a_json_plan_asked_for() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("in.csv", &changes_csv());
    let quiet = Plan::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--report", "q.csv", "-q"])
        .run();
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert_eq!(quiet.stdout, "", "no diff under -q");
    assert_eq!(quiet.stderr, "", "a plan that needs nothing says nothing");
    let json = Plan::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--report", "j.csv", "-q", "--json", "--log-format", "json"])
        .run();
    assert_eq!(json.code, 0, "{}", json.stderr);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(plan["would_update"], 24);
    assert_eq!(json.stderr, "");
}

#[test]
fn a_closed_standard_output_ends_a_plan_quietly_with_its_report_and_summary() {
    let work = Workdir::new();
    work.write("in.csv", &rows_csv(1, 3000));
    // -v prints every change, about 250 KB: far more than a pipe holds, so the plan is
    // still writing when the reader goes away, as with `| head -1`.
    let mut child = command(
        work.dir.path(),
        &["plan", "in.csv", "--simulate", "-v", "--report", "p.csv"],
    )
    .spawn()
    .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert!(first.starts_with(b"Would update 3000 of 3000 rows"));
    drop(stdout);
    let run = finish(child);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.to_lowercase().contains("pipe"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("plan finished"), "{}", run.stderr);
    assert_eq!(read_report(&work.path("p.csv")).len(), 3000);
}
