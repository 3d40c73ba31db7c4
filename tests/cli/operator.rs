//! What an operator runs and reads: the summary JSON, evidence, JSON logs, progress,
//! completions, the man page and help, option checks, the built-in and standalone simulator,
//! and version-control identities.

use std::time::Duration;

use crate::support::*;

#[test]
fn summary_json_has_counts_requests_and_digests() {
    let sim = simulator(|_| {});
    let run = Apply::on(&sim)
        .input("id,flag,reason\n1,true,a\n1,true,a\n5000,true,b\n")
        .summary()
        .no_report()
        .run();
    let summary_path = run.path("summary.json");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    assert_eq!(summary["rows"], 3);
    assert_eq!(summary["counts"]["updated"], 1);
    assert_eq!(summary["counts"]["duplicate"], 1);
    assert_eq!(summary["counts"]["failed"], 1);
    // Two PUTs, and the listing read twice: before (what differs) and after (the check).
    let pages = sim.stats.lists.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(pages % 2, 0, "as many pages after as before");
    assert_eq!(summary["requests"], 2 + pages);
    assert_eq!(summary["exit_code"], 1);
    assert_eq!(summary["input"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(summary["report"]["sha256"].as_str().unwrap().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&summary_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// The summary's fields, sorted: its JSON schema.
const SUMMARY_KEYS: [&str; 25] = [
    "base_url",
    "command",
    "concurrency",
    "counts",
    "effective_rate_per_minute",
    "elapsed_seconds",
    "exit_code",
    "finished_at",
    "input",
    "latency_ms",
    "not_verified",
    "rate_limited",
    "rate_reductions",
    "report",
    "requests",
    "resume_command",
    "retries",
    "rows",
    "run_id",
    "started_at",
    "stopped",
    "tool",
    "unrecorded_rows",
    "verified",
    "version",
];

#[test]
fn summary_json_schema_field_by_field() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n2,true,b\n");
    let run = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--summary-json", "s.json", "--report", "r.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path("s.json")).unwrap()).unwrap();
    let object = summary.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, SUMMARY_KEYS);
    assert_eq!(summary["tool"], "drata-svcacct");
    assert_eq!(summary["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(summary["run_id"].as_str().unwrap().len(), 16);
    assert_eq!(summary["command"], "apply");
    assert_eq!(summary["input"]["path"], "in.csv");
    let input_bytes = std::fs::read(work.path("in.csv")).unwrap();
    assert_eq!(summary["input"]["sha256"], sha256_hex(&input_bytes));
    assert_eq!(summary["report"]["path"], "r.csv");
    assert_eq!(
        summary["report"]["sha256"],
        sha256_file(&work.path("r.csv")),
        "the digest is of the finished report"
    );
    assert_eq!(summary["base_url"], format!("{}/", sim.base_url()));
    for stamp in ["started_at", "finished_at"] {
        assert!(summary[stamp].as_str().unwrap().ends_with('Z'), "{stamp}");
    }
    assert!(summary["elapsed_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["rows"], 2);
    let counts = summary["counts"].as_object().unwrap();
    assert_eq!(counts.len(), 11, "every outcome, zeros included");
    assert_eq!(counts["updated"], 2);
    assert_eq!(counts["failed"], 0);
    assert_eq!(
        (&counts["drifted"], &counts["conflict"]),
        (&0.into(), &0.into())
    );
    // Both rows sent were checked against the listing read after the run.
    assert_eq!(
        (&summary["verified"], &summary["not_verified"]),
        (&2.into(), &0.into())
    );
    // Two PUTs, and the listing read twice: before (what differs) and after (the check).
    let pages = sim.stats.lists.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(pages % 2, 0, "as many pages after as before");
    assert_eq!(summary["requests"], 2 + pages);
    assert_eq!(summary["retries"], 0);
    assert_eq!(summary["rate_limited"], 0);
    assert!(summary["effective_rate_per_minute"].as_f64().unwrap() > 0.0);
    // `--rate unlimited` (the builder's default on the simulator) and the default
    // `--concurrency auto`: the cap starts at 4 and grows by one per fine answer, the two
    // PUTs (listing pages do not count).
    assert_eq!(
        summary["concurrency"],
        serde_json::json!({"mode": "auto", "limit": 6, "max": 6, "reductions": 0})
    );
    let latency = summary["latency_ms"].as_object().unwrap();
    let mut latency_keys: Vec<&str> = latency.keys().map(String::as_str).collect();
    latency_keys.sort();
    assert_eq!(latency_keys, vec!["p50", "p95"]);
    let (p50, p95) = (
        latency["p50"].as_f64().unwrap(),
        latency["p95"].as_f64().unwrap(),
    );
    assert!(0.0 <= p50 && p50 <= p95 && p95 < 30_000.0, "{p50} {p95}");
    assert_eq!(summary["stopped"], serde_json::Value::Null);
    assert_eq!(summary["resume_command"], serde_json::Value::Null);
    assert_eq!(summary["unrecorded_rows"], 0);
    assert_eq!(summary["exit_code"], 0);
}

#[test]
fn evidence_records_who_what_and_the_identities_changed() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write(
        "in.csv",
        "id,flag,reason\n7,true,Seeded: automation account\n1,true,CI | deploy\n5000,true,gone\n",
    );
    let run = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--reconcile", "--evidence", "e.md", "--report", "r.csv"])
        .env("USER", "auditor-alice")
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let evidence = std::fs::read_to_string(work.path("e.md")).unwrap();
    for section in [
        "# Drata service-account changes: apply run ",
        "## Counts",
        "## Identities changed",
    ] {
        assert!(evidence.contains(section), "missing {section}:\n{evidence}");
    }
    // The account comes from the system's user database, never from $USER.
    assert!(
        evidence.contains(&format!("| Ran by | {} on ", system_account())),
        "{evidence}"
    );
    assert!(!evidence.contains("auditor-alice"), "{evidence}");
    assert!(evidence.contains(&format!(
        "| Tool | drata-svcacct {} |",
        env!("CARGO_PKG_VERSION")
    )));
    let report_digest = sha256_file(&work.path("r.csv"));
    assert!(evidence.contains(&report_digest), "report SHA-256");
    assert!(evidence.contains("| unchanged | 1 |") && evidence.contains("| updated | 1 |"));
    assert!(
        evidence.contains("| 1 | alice.nguyen | alice.nguyen@example.com | AWS aws-prod #1 | not a service account | service account (\"CI \\| deploy\") | input | yes |"),
        "{evidence}"
    );
    assert!(
        !evidence.contains("| 7 |"),
        "unchanged rows are not listed as changed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(work.path("e.md"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn json_logs_are_one_object_per_event_with_the_run_id() {
    let sim = simulator(|_| {});
    let run = Apply::on(&sim)
        .input("id,flag,reason\n1,true,a\n2,true,b\n")
        .args(["--log-format", "json", "--report", "r.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let rows: Vec<&serde_json::Value> = events.iter().filter(|e| e["message"] == "row").collect();
    assert_eq!(rows.len(), 2);
    let summary = events
        .iter()
        .find(|e| e["message"] == "summary")
        .expect("summary event");
    for row in &rows {
        assert_eq!(row["run_id"], summary["run_id"]);
        assert_eq!(row["outcome"], "updated");
        assert_eq!(row["attempts"], 1);
        assert_eq!(row["status"], 200);
        assert!(row["line"].is_u64() && row["id"].is_u64());
    }
}

#[test]
fn progress_is_logged_off_a_terminal_and_silenced_by_quiet() {
    let server = TestServer::start(|seen, _| {
        Reply::identity(seen.id().unwrap()).after(Duration::from_millis(30))
    });
    let csv = rows_csv(1, 20);
    let Finished { run, .. } = Apply::on(&server)
        .input(&csv)
        .args(["--concurrency", "1", "--rate", "unlimited"])
        .args(["--progress-interval", "0.05"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("progress done="), "{}", run.stderr);
    assert!(
        run.stderr.contains("apply finished: 20 rows"),
        "{}",
        run.stderr
    );
    let Finished { run, .. } = Apply::on(&server)
        .input(&csv)
        .args(["--concurrency", "1", "--rate", "unlimited"])
        .args(["--progress-interval", "0.05", "-q"])
        .run();
    assert_eq!(run.code, 0);
    assert_eq!(run.stderr, "", "quiet and successful: nothing at all");
}

#[test]
fn completions_for_every_shell_a_man_page_and_help_with_use_cases() {
    let work = Workdir::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let run = Invocation::new(["completions", shell], None)
            .within(&work)
            .run();
        assert_eq!(run.code, 0, "{shell}");
        assert!(run.stdout.contains("drata-svcacct"), "{shell}");
        assert!(
            run.stdout.contains("reconcile"),
            "{shell}: options are completed"
        );
    }
    let man = Invocation::new(["man"], None).within(&work).run();
    assert_eq!(man.code, 0);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH"),
        "{}",
        &man.stdout[..100]
    );
    let help = Apply::offline()
        .within(&work)
        .args(["--help"])
        .no_report()
        .run();
    for use_case in [
        "Quarterly access review",
        "One-off migration",
        "Nightly cron job",
    ] {
        assert!(help.stdout.contains(use_case), "{use_case}");
    }
}

#[test]
fn help_and_version_are_answers_and_errors_come_in_the_log_format_asked_for() {
    let work = Workdir::new();
    for args in [&["--version"][..], &["--log-format", "json", "--help"]] {
        let run = Invocation::new(args, None).within(&work).run();
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(run.stdout.contains("drata-svcacct"), "{args:?}");
        assert_eq!(run.stderr, "", "{args:?}");
    }
    let unknown = Apply::offline()
        .within(&work)
        .file("in.csv")
        .args(["--no-such-option"])
        .no_report()
        .run();
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.starts_with("error: ") && unknown.stderr.contains("--no-such-option"),
        "clap's own words: {}",
        unknown.stderr
    );
    assert_eq!(unknown.stdout, "");
    // An error found after parsing: one line, shown under -q too.
    let missing = Invocation::new(["-q", "validate", "missing.csv"], None)
        .within(&work)
        .run();
    assert_eq!(missing.code, 2);
    assert_eq!(missing.stderr.lines().count(), 1, "{}", missing.stderr);
    assert!(
        missing
            .stderr
            .starts_with("drata-svcacct: error: cannot read missing.csv"),
        "{}",
        missing.stderr
    );
}

#[test]
fn options_that_make_no_sense_are_refused_before_any_io() {
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n");
    for args in [
        vec!["plan", "in.csv", "--simulate", "--resume-from", "old.csv"],
        vec!["plan", "in.csv", "--simulate", "--reconcile"],
        vec!["apply", "in.csv", "--simulate", "--concurrency", "5000"],
        vec!["simulate", "--error-rate", "1.5"],
    ] {
        let run = Invocation::new(&args, None).within(&work).run();
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
}

#[test]
fn the_readme_command_runs_on_the_builtin_simulator() {
    let work = Workdir::new();
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/quarterly-review.csv");
    let report = work.path("r.csv");
    let run = Apply::offline()
        .within(&work)
        .file(sample.to_str().unwrap())
        .args(["--simulate", "--report", report.to_str().unwrap()])
        .args(["--retry-base-ms", "5"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = read_report(&report);
    assert_eq!(rows.len(), 50);
    // Only the rows that differ from the simulator's state are sent, as plan shows.
    assert_eq!(ids_with(&rows, "updated").len(), 8);
    assert_eq!(ids_with(&rows, "unchanged").len(), 42);
    assert!(rows
        .iter()
        .all(|r| r["outcome"] != "updated" || r["verified"] == "yes"));
    assert!(run.stderr.contains("updated 8"), "{}", run.stderr);
}

#[test]
fn simulate_ignores_an_exported_base_url() {
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let run = Apply::offline()
        .within(&work)
        .file("in.csv")
        .args(["--simulate", "--rate", "unlimited", "--report", "r.csv"])
        .env("DRATA_BASE_URL", "https://public-api.drata.com/public")
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[cfg(unix)]
#[test]
fn the_simulate_command_serves_the_api_and_stops_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let work = Workdir::new();
    let listen = format!("127.0.0.1:{port}");
    let mut child = command(
        work.dir.path(),
        &[
            "simulate",
            "--listen",
            &listen,
            "--identities",
            "10",
            "--rate-limit",
            "unlimited",
        ],
    )
    .spawn()
    .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut buffer = [0u8; 1024];
    while !seen.contains("simulator listening") {
        let n = std::io::Read::read(&mut stderr, &mut buffer).unwrap();
        assert!(n > 0, "the simulator exited: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    work.write("in.csv", "id,flag,reason\n3,true,bot\n");
    // With and without the /public prefix, with the default token.
    for base in [
        format!("http://{listen}/public"),
        format!("http://{listen}"),
    ] {
        let run = Apply::on(base.as_str())
            .within(&work)
            .file("in.csv")
            .args(["--report", "r.csv", "--force"])
            .key("sim-token")
            .run();
        assert_eq!(run.code, 0, "{base}: {}", run.stderr);
    }
    let run = Apply::on(&format!("http://{listen}/public"))
        .within(&work)
        .file("in.csv")
        .args(["--report", "r2.csv"])
        .key("wrong")
        .run();
    assert_eq!(run.code, 3, "a wrong token is a 401");
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn version_control_identities_use_their_own_paths() {
    // The listing shows octocat marked once its PUT came: the check after the run reads it.
    let marked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen_put = std::sync::Arc::clone(&marked);
    let server = TestServer::scripted(move |seen, _| {
        if seen.method == "GET" {
            let state = if seen_put.load(std::sync::atomic::Ordering::SeqCst) {
                r#""2026-11-29T00:00:00.000Z","serviceAccountReason":"GitHub Actions bot""#
            } else {
                "null"
            };
            Reply::json(
                200,
                &format!(
                    r#"{{"data":[{{"id":3,"username":"octocat","serviceAccount":{state}}}],"page":1,"limit":50,"total":1}}"#
                ),
            )
        } else {
            seen_put.store(true, std::sync::atomic::Ordering::SeqCst);
            Reply::identity(seen.id().unwrap())
        }
    });
    let Finished { run, rows, .. } = Apply::on(&server)
        .input("username,flag,reason\noctocat,true,GitHub Actions bot\n")
        .args(["--kind", "version-control", "--reconcile"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(line(&rows, 2)["id"], "3");
    let paths: Vec<String> = server
        .seen()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(
        paths,
        vec![
            "GET /public/user-identities/version-control?page=1&limit=50".to_owned(),
            "PUT /public/user-identities/version-control/3/service-account".to_owned(),
            "GET /public/user-identities/version-control?page=1&limit=50".to_owned(),
        ]
    );

    // The simulator serves both kinds, each with its own state.
    let sim = simulator(|_| {});
    let run = Apply::on(&sim)
        .input("id,flag,reason\n1,true,bot\n")
        .args(["--kind", "version-control", "--report", "r.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        sim.applied().is_empty(),
        "infrastructure identity 1 untouched"
    );
    let plan = Plan::on(&sim)
        .input("id,flag,reason\n1,true,bot\n")
        .args(["--kind", "version-control", "--report", "p.csv"])
        .run();
    assert_eq!(plan.code, 0);
    assert_eq!(plan.rows[0]["outcome"], "unchanged");
}

#[test]
fn json_logs_are_pure_json_with_levels_that_say_what_needs_a_human() {
    // Rows 1-3 succeed, 4 fails (404), 5 and later meet a 401 that aborts the run.
    let server = TestServer::start(|seen, _| match seen.id() {
        Some(4) => Reply::json(404, r#"{"message":"Not Found"}"#),
        Some(id) if id >= 5 => Reply::json(401, r#"{"message":"Unauthorized"}"#),
        Some(id) => Reply::identity(id),
        None => Reply::json(404, "{}"),
    });
    let Finished { run, rows, .. } = Apply::on(&server)
        .input(&(rows_csv(1, 8) + "bad,true,x\n"))
        .args(["-q", "--log-format", "json", "--concurrency", "1"])
        .args(["--skip-invalid"])
        .run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(rows.len(), 9);
    let events: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let at = |level: &str, message: &str| {
        events
            .iter()
            .filter(|e| {
                e["level"] == level && e["message"].as_str().unwrap_or("").contains(message)
            })
            .count()
    };
    assert_eq!(
        at("WARN", "invalid row"),
        2,
        "the count and the row: {}",
        run.stderr
    );
    let failed_rows = events
        .iter()
        .filter(|e| e["level"] == "WARN" && e["message"] == "row")
        .count();
    assert_eq!(
        failed_rows, 2,
        "the 404 row and the 401 row, at WARN under -q"
    );
    assert_eq!(at("ERROR", "run aborted: HTTP 401"), 1, "{}", run.stderr);
    let summary = events
        .iter()
        .find(|e| e["message"] == "summary")
        .expect("the summary, since the run failed");
    let stopped = summary["stopped"].as_str().unwrap();
    assert!(
        stopped.starts_with("HTTP 401") && !stopped.contains("not sent"),
        "rows were sent before the abort: {stopped}"
    );
}

#[test]
fn usage_errors_are_json_under_json_logs() {
    let work = Workdir::new();
    let usage = Apply::offline()
        .within(&work)
        .file("missing.csv")
        .args(["--log-format", "json", "--simulate"])
        .run();
    assert_eq!(usage.code, 2);
    let error: serde_json::Value = serde_json::from_str(usage.stderr.trim()).unwrap();
    assert_eq!(error["level"], "ERROR");
    assert!(error["message"].as_str().unwrap().contains("missing.csv"));
    // So is one clap finds, before any of our code runs.
    let unknown = Apply::offline()
        .within(&work)
        .file("in.csv")
        .args(["--log-format", "json", "--no-such-option"])
        .run();
    assert_eq!(unknown.code, 2);
    let error: serde_json::Value = serde_json::from_str(unknown.stderr.trim()).unwrap();
    assert_eq!(error["level"], "ERROR");
    assert!(error["detail"]
        .as_str()
        .unwrap()
        .contains("--no-such-option"));
}

#[test]
fn the_builtin_simulator_holds_every_id_of_the_input() {
    let work = Workdir::new();
    work.write("in.csv", &rows_csv(1101, 100));
    let run = Plan::offline()
        .within(&work)
        .file("in.csv")
        .args(["--simulate", "--report", "p.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = read_report(&work.path("p.csv"));
    assert!(
        rows.iter().all(|r| r["outcome"] != "not_found"),
        "ids past the default 1,000 exist: {rows:?}"
    );
}

/// Runs the binary with its standard output read for `keep` bytes, then closed, as
/// `| head -c` does.
fn with_stdout_closed_early(args: &[&str], keep: usize) -> Run {
    let work = Workdir::new();
    let mut bad = String::from("id,flag,reason\n");
    for id in 1..=20_000 {
        bad.push_str(&format!("{id},maybe,x\n"));
    }
    work.write("bad.csv", &bad);
    let mut child = command(work.dir.path(), args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buffer = vec![0u8; keep];
    std::io::Read::read_exact(&mut stdout, &mut buffer).unwrap();
    drop(stdout);
    finish(child)
}

#[test]
fn a_closed_standard_output_ends_any_command_quietly() {
    for (args, code) in [
        // The exit code still says that rows are invalid.
        (&["validate", "bad.csv"][..], 1),
        (&["man"], 0),
        (&["completions", "bash"], 0),
    ] {
        let run = with_stdout_closed_early(args, 64);
        assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains("panicked") && !run.stderr.contains("Broken pipe"),
            "{args:?}: {}",
            run.stderr
        );
    }
}
