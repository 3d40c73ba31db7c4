//! `--rules`: rules files checked offline, the nightly run (twice: the second sends
//! nothing), input rows beating rules, the export's rule column, the evidence's lines,
//! and the guards against a rule that would change too much.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use crate::support::*;

const RULES: &str = r#"
[[rule]]
name = "automation"
service_account = true
reason = "Automation account {username}; rule {rule}"
[rule.match]
username = "-(bot|runner|ci)-\\d+$|^github-actions-"
email_absent = true
marked = false
"#;

#[test]
fn the_nightly_run_decides_new_automation_and_a_second_run_sends_nothing() {
    let sim = simulator(|c| c.identities = 300);
    let work = Workdir::new();
    work.write("rules.toml", RULES);
    let args = [
        "apply",
        "--rules",
        "rules.toml",
        "--max-changes",
        "50",
        "--report",
        "first.csv",
        "--evidence",
        "evidence.md",
    ];
    let first = Invocation::new(args, Some(Endpoint::from(&sim)))
        .within(&work)
        .run();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let applied: HashMap<u64, u64> = sim
        .applied()
        .into_iter()
        .map(|(id, n)| (id, n as u64))
        .collect();
    assert_eq!(
        applied,
        HashMap::from([(44, 1), (94, 1), (144, 1), (194, 1), (244, 1)])
    );
    let rows = read_report(&work.path("first.csv"));
    assert!(
        rows.iter()
            .all(|r| r["source"] == "rule:automation" && r["line"].is_empty()),
        "{rows:?}"
    );
    // Rule rows are checked after the run like the input's, though they have no line.
    assert!(
        rows.iter()
            .all(|r| r["outcome"] == "updated" && r["verified"] == "yes"),
        "{rows:?}"
    );
    let deploy = rows.iter().find(|r| r["id"] == "44").unwrap();
    assert_eq!(
        deploy["reason"],
        "Automation account deploy-bot-44; rule automation"
    );
    let evidence = std::fs::read_to_string(work.path("evidence.md")).unwrap();
    assert!(
        evidence.contains(&format!(
            "| Rules | rules.toml (SHA-256 `{}`) |",
            sha256_file(&work.path("rules.toml"))
        )),
        "{evidence}"
    );
    assert!(evidence.contains("| 44 | deploy-bot-44 |"), "{evidence}");
    assert!(evidence.contains("| rule:automation | yes |"), "{evidence}");

    let puts = sim.stats.puts.load(Ordering::Relaxed);
    let args = [
        "apply",
        "--rules",
        "rules.toml",
        "--max-changes",
        "50",
        "--report",
        "second.csv",
    ];
    let second = Invocation::new(args, Some(Endpoint::from(&sim)))
        .within(&work)
        .run();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(
        sim.stats.puts.load(Ordering::Relaxed),
        puts,
        "the second night sends no PUT"
    );
}

#[test]
fn an_input_row_wins_over_a_rule_and_unmatched_identities_are_counted() {
    let sim = simulator(|c| c.identities = 100);
    let work = Workdir::new();
    work.write("rules.toml", RULES);
    work.write(
        "review.csv",
        "id,serviceAccount,reason\n44,false,A person's test account after all\n",
    );
    let run = Plan::on(&sim)
        .within(&work)
        .file("review.csv")
        .args(["--rules", "rules.toml", "--report", "plan.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = read_report(&work.path("plan.csv"));
    let sources: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r["id"].clone(), r["source"].clone()))
        .collect();
    assert_eq!(
        sources,
        [
            ("44".to_owned(), "input".to_owned()),
            ("94".to_owned(), "rule:automation".to_owned())
        ]
    );
    assert!(
        run.stderr
            .contains("rule automation: 1 matched, 1 would change, 0 already so"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("98 identities matched no rule"),
        "{}",
        run.stderr
    );
    // The plan names the rule where an input row has its line.
    assert!(
        run.stdout.contains("rule automation  id 94  ci-runner-94"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("line 0"), "{}", run.stdout);
}

#[test]
fn export_with_rules_names_the_deciding_rule() {
    let sim = simulator(|c| c.identities = 100);
    let work = Workdir::new();
    work.write("rules.toml", RULES);
    let run = Export::on(&sim)
        .within(&work)
        .args(["--rules", "rules.toml", "-o", "out.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(work.path("out.csv")).unwrap();
    let header: Vec<String> = csv::Reader::from_reader(text.as_bytes())
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header[header.len() - 7..],
        [
            "rule",
            "drataServiceAccount",
            "drataReason",
            "drataLinkedUser",
            "drataAdminAccess",
            "drataDbAccess",
            "exportedAt"
        ],
        "the baseline columns stay the last ones"
    );
    let rows = records_by_header(csv::Reader::from_reader(text.as_bytes()));
    let ruled: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| !r["rule"].is_empty())
        .map(|r| (r["id"].as_str(), r["rule"].as_str()))
        .collect();
    assert_eq!(ruled, [("44", "automation"), ("94", "automation")]);
}

#[test]
fn validate_names_every_problem_by_line_and_column_and_sends_nothing() {
    let work = Workdir::new();
    work.write("bad.toml", "[[rule]]\nname = \"a\"\nservice_account = true\nreason = \"x\"\n[rule.match]\nusername = \"(\"\n\n[[rule]]\nname = \"a\"\nservice_account = true\nreason = \"x\"\n");
    let run = Validate::offline()
        .within(&work)
        .args(["--rules", "bad.toml"])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("bad.toml:6:12: username: the regular expression does not compile"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("bad.toml:9:8: rule name \"a\" is already used on line 2"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("bad.toml:9:8: rule \"a\" has no condition"),
        "{}",
        run.stderr
    );
    work.write(
        "typo.toml",
        "[[rule]]\nname = \"a\"\nservice_account = true\nreason = \"x\"\nmatches = 1\n",
    );
    let run = Validate::offline()
        .within(&work)
        .args(["--rules", "typo.toml"])
        .run();
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("typo.toml:5:1: unknown key \"matches\""),
        "{}",
        run.stderr
    );
    work.write("good.toml", RULES);
    assert_eq!(
        Validate::offline()
            .within(&work)
            .args(["--rules", "good.toml"])
            .run()
            .code,
        0
    );
}

#[test]
fn guards_a_rule_that_changes_too_much_and_a_mass_unmarking() {
    let sim = simulator(|c| c.identities = 300);
    let work = Workdir::new();
    work.write("rules.toml", RULES);
    let run = Apply::on(&sim)
        .within(&work)
        .args([
            "--rules",
            "rules.toml",
            "--max-changes",
            "3",
            "--report",
            "r.csv",
        ])
        .run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("rule automation would change 5 identities, more than --max-changes 3"),
        "{}",
        run.stderr
    );
    work.write("unmark.toml", "[[rule]]\nname = \"unmark-all\"\nservice_account = false\nreason = \"x\"\n[rule.match]\nmarked = true\n");
    let run = Apply::on(&sim)
        .within(&work)
        .args(["--rules", "unmark.toml", "--report", "u.csv"])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("rule \"unmark-all\" unmarks every service account: pass --max-changes"),
        "{}",
        run.stderr
    );
    assert_eq!(
        sim.stats.puts.load(Ordering::Relaxed),
        0,
        "nothing was sent"
    );
}

/// A rule's row the first run updated stays in the resumed report when its identity has left
/// the listing (carried `skipped`, with its rule); an identity an input row now names, even
/// an invalid one, gets that row alone: one row per identity, no id twice.
#[test]
fn a_resumed_run_keeps_a_row_for_every_identity_a_rule_updated() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap())).seed(1..=4);
    let work = Workdir::new();
    work.write(
        "rules.toml",
        "[[rule]]\nname = \"bots\"\nservice_account = true\nreason = \"Automation {username}\"\n[rule.match]\nusername = \"^user[123]$\"\nmarked = false\n",
    );
    work.write("in.csv", "id,flag,reason\n4,true,A person's decision\n");
    let first = Apply::on(&server)
        .within(&work)
        .file("in.csv")
        .args(["--rules", "rules.toml", "--report", "r.csv"])
        .run();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let mut updated = ids_with(&first.rows, "updated");
    updated.sort_unstable();
    assert_eq!(updated, [1, 2, 3, 4]);
    // Id 3 is deleted in Drata; id 2 is now named by an input row whose flag is unreadable.
    server.forget(3);
    work.write(
        "in.csv",
        "id,flag,reason\n4,true,A person's decision\n2,maybe,unsure\n",
    );
    let resumed = Apply::on(&server)
        .within(&work)
        .file("in.csv")
        .args(["--rules", "rules.toml", "--report", "r2.csv"])
        .args(["--resume-from", "r.csv", "--skip-invalid"])
        .run();
    assert_ne!(resumed.code, 2, "{}", resumed.stderr);
    let rows = by_id(&resumed.rows);
    assert_eq!(
        resumed.rows.len(),
        4,
        "one row per identity: {:?}",
        resumed.rows
    );
    let row = |id: u64| {
        let row = &rows[&id];
        (
            row["line"].as_str(),
            row["outcome"].as_str(),
            row["source"].as_str(),
        )
    };
    assert_eq!(row(1), ("", "skipped", "rule:bots"));
    assert_eq!(row(2), ("3", "invalid", "input"), "the input's row wins");
    assert_eq!(row(3), ("", "skipped", "rule:bots"), "gone, still done");
    assert_eq!(row(4), ("2", "skipped", "input"));
    assert_eq!(rows[&3]["reason"], "Automation user3");
}

fn by_id(rows: &[HashMap<String, String>]) -> HashMap<u64, HashMap<String, String>> {
    let by_id: HashMap<u64, HashMap<String, String>> = rows
        .iter()
        .map(|r| (r["id"].parse().unwrap(), r.clone()))
        .collect();
    assert_eq!(by_id.len(), rows.len(), "no id twice: {rows:?}");
    by_id
}

#[test]
fn a_rules_file_over_the_cap_is_refused_naming_the_cap() {
    let work = Workdir::new();
    // Valid TOML (comments) one byte past 4 MiB: refused for its size, not its content.
    let line = format!("# {}\n", "x".repeat(1022));
    let mut big = RULES.to_owned();
    while big.len() <= 4 * 1024 * 1024 {
        big.push_str(&line);
    }
    work.write("big.toml", &big);
    let expected = "the rules file big.toml is larger than 4 MiB, the most a rules file may hold";
    let run = Validate::offline()
        .within(&work)
        .args(["--rules", "big.toml"])
        .run()
        .run;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(expected), "{}", run.stderr);
    // At the cap exactly, the file is read and checked.
    big.truncate(4 * 1024 * 1024);
    let cut = big.rfind('\n').unwrap() + 1;
    big.truncate(cut);
    work.write("at-cap.toml", &big);
    let run = Validate::offline()
        .within(&work)
        .args(["--rules", "at-cap.toml"])
        .run()
        .run;
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[cfg(unix)]
#[test]
fn a_rules_file_that_never_ends_is_refused_at_the_cap() {
    let work = Workdir::new();
    let start = std::time::Instant::now();
    let run = Validate::offline()
        .within(&work)
        .args(["--rules", "/dev/zero"])
        .run()
        .run;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the rules file /dev/zero is larger than 4 MiB"),
        "{}",
        run.stderr
    );
    // Reading 2 GB took seconds; 4 MiB takes milliseconds, even in a debug build.
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}

/// A rule that matches nothing (here a typo in its pattern) is a warning in `plan` and
/// `apply`, naming the rule; the other rules run as ever.
#[test]
fn a_rule_that_matches_no_identity_is_a_warning_naming_it() {
    let sim = simulator(|c| c.identities = 100);
    let work = Workdir::new();
    let rules = format!(
        "{RULES}\n[[rule]]\nname = \"typo\"\nservice_account = true\nreason = \"never\"\n[rule.match]\nusername = \"^sevice-\"\n"
    );
    work.write("rules.toml", &rules);
    let plan = Plan::on(&sim)
        .within(&work)
        .args(["--rules", "rules.toml"])
        .no_report()
        .run();
    let apply = Apply::on(&sim)
        .within(&work)
        .args(["--rules", "rules.toml", "--report", "r.csv"])
        .run();
    for run in [plan.run, apply.run] {
        assert_eq!(run.code, 0, "{}", run.stderr);
        let warning = run
            .stderr
            .lines()
            .find(|line| line.contains("rule typo matched no identity"))
            .unwrap_or_else(|| panic!("no warning:\n{}", run.stderr));
        assert!(warning.contains("WARN"), "{warning}");
        assert!(!run.stderr.contains("rule automation matched no identity"));
    }
}

/// The nightly job's `--quiet` stays silent on a night whose rules find nothing new.
#[test]
fn a_quiet_run_whose_rules_match_nothing_says_nothing() {
    let sim = simulator(|c| c.identities = 10);
    let work = Workdir::new();
    work.write("rules.toml", RULES);
    let run = Apply::on(&sim)
        .within(&work)
        .args(["--rules", "rules.toml", "--report", "r.csv", "--quiet"])
        .run()
        .run;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}
