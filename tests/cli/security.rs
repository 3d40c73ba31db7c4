//! The API key, the token file, the files a run writes, and hostile input: the key goes
//! only to the configured host and appears in no output or file, a server echoing it back
//! is redacted, output files never follow a symlink, and an oversized field is an invalid
//! row rather than an allocation.

use std::time::Duration;

use crate::support::*;

/// The reader's bound on one record: 1 MiB, as documented in `docs/` and named in the error
/// message below. A local copy rather than the library's constant, so that the test pins the
/// documented limit.
const MAX_RECORD_BYTES: usize = 1024 * 1024;

#[test]
fn a_missing_token_exits_2_and_sends_nothing() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap()));
    let run = Apply::on(&server)
        .input("id,flag,reason\n1,true,a\n")
        .no_key()
        .run();
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("DRATA_API_KEY"), "{}", run.stderr);
    assert!(server.seen().is_empty());
}

#[test]
fn an_invalid_key_in_the_environment_is_named_as_such() {
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let run = Apply::offline()
        .within(&work)
        .file("in.csv")
        .key("two words")
        .run();
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("DRATA_API_KEY: the API key contains"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("two words"));
}

#[test]
fn the_token_file_is_read_first_line_trimmed() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap()));
    let work = Workdir::new();
    let key = work.write("key", "  file-key  \nsecond line\n");
    let Finished { run, .. } = Apply::on(&server)
        .input("id,flag,reason\n1,true,a\n")
        .args(["--token-file", key.to_str().unwrap()])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.seen()[0].headers["authorization"], "Bearer file-key");
}

#[cfg(unix)]
#[test]
fn a_token_file_readable_by_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap()));
    let work = Workdir::new();
    let key = work.write("key", "k1\n");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let Finished { run, .. } = Apply::on(&server)
        .input("id,flag,reason\n1,true,a\n")
        .args(["--token-file", key.to_str().unwrap()])
        .run();
    assert_eq!(run.code, 0);
    assert!(
        run.stderr.contains("readable by others (mode 644)"),
        "{}",
        run.stderr
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let Finished { run, .. } = Apply::on(&server)
        .input("id,flag,reason\n1,true,a\n")
        .args(["--token-file", key.to_str().unwrap()])
        .run();
    assert!(!run.stderr.contains("readable by others"), "{}", run.stderr);
}

#[test]
fn the_api_key_appears_in_no_output() {
    const KEY: &str = "sk-LEAKCANARY-7f3a9c";
    let server = TestServer::start(|seen, index| match (seen.id(), index) {
        (_, 0) => Reply::json(500, "oops"),
        (Some(2), _) => Reply::json(404, "{}"),
        (Some(3), _) => Reply::json(429, "{}").with_header("retry-after", "0"),
        (Some(id), _) => Reply::identity(id),
        _ => Reply::json(400, "{}"),
    });
    let work = Workdir::new();
    work.write("in.csv", &rows_csv(1, 5));
    let report = work.path("report.csv");
    let summary = work.path("summary.json");
    let run = Apply::on(&server)
        .within(&work)
        .file("in.csv")
        .args(["--report", report.to_str().unwrap()])
        .args(["--summary-json", summary.to_str().unwrap()])
        .args(["--retry-base-ms", "1", "--max-attempts", "2", "-vv"])
        .key(KEY)
        .run();
    assert!(run.code == 1, "{}", run.stderr);
    assert_eq!(
        server.seen()[0].headers["authorization"],
        format!("Bearer {KEY}")
    );
    for (what, text) in [
        ("stdout", run.stdout.as_str()),
        ("stderr", run.stderr.as_str()),
        ("files", work.all_file_text().as_str()),
    ] {
        assert!(!text.contains("LEAKCANARY"), "the key leaked into {what}");
    }
    assert!(run.stderr.len() > 200, "-vv did log: {}", run.stderr);
}

#[test]
fn the_key_leaks_nowhere_on_any_path_at_any_verbosity() {
    const KEY: &str = "sk-CANARY-91b2e7d4";
    // Success, 404, 500 then success, 429, a timeout, then a 401 that aborts the run.
    let server = TestServer::scripted(|seen, _| match (seen.method.as_str(), seen.id()) {
        ("GET", _) => Reply::json(
            200,
            r#"{"data":[{"id":1},{"id":2},{"id":3},{"id":4},{"id":5},{"id":6}],"page":1,"limit":50,"total":6}"#,
        ),
        (_, Some(2)) => Reply::json(404, r#"{"message":"no such identity"}"#),
        (_, Some(3)) => Reply::json(500, "oops"),
        (_, Some(4)) => Reply::json(429, "{}").with_header("retry-after", "0"),
        (_, Some(5)) => Reply::identity(5).after(Duration::from_secs(3)),
        (_, Some(6)) => Reply::json(401, r#"{"message":"Unauthorized"}"#),
        (_, Some(id)) => Reply::identity(id),
        _ => Reply::json(400, "{}"),
    });
    for format in ["text", "json"] {
        let work = Workdir::new();
        work.write("in.csv", &rows_csv(1, 6));
        work.write("key", &format!("{KEY}\n"));
        let run = Apply::on(&server)
            .within(&work)
            .file("in.csv")
            .args(["--token-file", "key", "--reconcile", "--undo", "undo.csv"])
            .args(["--evidence", "e.md", "--summary-json", "s.json"])
            .args([
                "--report",
                "r.csv",
                "--timeout",
                "0.5",
                "--max-attempts",
                "2",
            ])
            .args(["--retry-base-ms", "1", "--concurrency", "1"])
            .args(["--rate", "unlimited", "-vv", "--log-format", format])
            .no_key()
            .run();
        assert_eq!(run.code, 3, "the 401 aborts: {}", run.stderr);
        for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                !text.contains("CANARY"),
                "the key leaked into {what} ({format})"
            );
        }
        for name in ["r.csv", "undo.csv", "e.md", "s.json"] {
            let text = std::fs::read_to_string(work.path(name)).unwrap();
            assert!(
                !text.contains("CANARY"),
                "the key leaked into {name} ({format})"
            );
        }
        assert!(run.stderr.lines().count() > 10, "-vv logged ({format})");
    }
    assert!(server
        .seen()
        .iter()
        .all(|s| s.headers["authorization"] == format!("Bearer {KEY}")));
}

#[test]
fn a_server_echoing_the_key_does_not_put_it_in_the_report() {
    let server = TestServer::start(|seen, _| {
        let echoed = seen.headers["authorization"].clone();
        Reply::json(400, &format!(r#"{{"message":"bad header {echoed}"}}"#))
    });
    let Finished {
        run, rows, work, ..
    } = Apply::on(&server).input("id,flag,reason\n1,true,a\n").run();
    assert_eq!(run.code, 1);
    assert!(
        line(&rows, 2)["error"].contains("<redacted>"),
        "{:?}",
        line(&rows, 2)
    );
    assert!(!work.all_file_text().contains("test-key"));
}

#[test]
fn secrets_in_a_base_url_are_not_echoed() {
    let run = Apply::on("http://me:hunter2@example.com/?key=hunter2")
        .input("id,flag,reason\n1,true,a\n")
        .key("k")
        .run();
    assert_eq!(run.code, 2);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

#[test]
fn the_key_goes_only_to_the_configured_host() {
    let elsewhere = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap_or(1)));
    let target = format!(
        "{}/user-identities/infrastructure/1/service-account",
        elsewhere.url
    );
    let server =
        TestServer::start(move |_, _| Reply::json(307, "").with_header("location", &target));
    let Finished { run, rows, .. } = Apply::on(&server).input("id,flag,reason\n1,true,a\n").run();
    assert_eq!(run.code, 1);
    assert_eq!(line(&rows, 2)["http_status"], "307");
    assert!(elsewhere.seen().is_empty(), "the redirect was not followed");
}

#[cfg(unix)]
#[test]
fn output_files_never_follow_or_replace_a_symlink_even_with_force() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let target = work.write("precious.txt", "do not touch\n");
    std::os::unix::fs::symlink(&target, work.path("r.csv")).unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let run = Apply::on(&sim)
            .within(&work)
            .file("in.csv")
            .report("r.csv")
            .args(extra)
            .run();
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("symbolic link is in the way"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "do not touch\n");
    assert!(std::fs::symlink_metadata(work.path("r.csv"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(sim.stats.puts.load(std::sync::atomic::Ordering::Relaxed), 0);
}

// FIFOs and /dev/null are Unix's.
#[cfg(unix)]
#[test]
fn force_replaces_only_regular_files_never_devices_fifos_or_the_input() {
    use std::os::unix::fs::FileTypeExt;
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let fifo = work.path("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let refused = [
        (
            vec!["--report", "/dev/null", "--force"],
            "a device is in the way",
        ),
        (vec!["--report", "fifo", "--force"], "a FIFO is in the way"),
        (
            vec!["--report", "in.csv", "--force"],
            "it is the input file",
        ),
        (
            vec!["--report", "./in.csv", "--force"],
            "it is the input file",
        ),
        (
            vec!["--report", "r.csv", "--summary-json", "r.csv"],
            "another output of this run has the same path",
        ),
        (vec!["--report", "-"], "only --summary-json and --evidence"),
    ];
    for (extra, message) in refused {
        let run = Apply::on(&sim)
            .within(&work)
            .file("in.csv")
            .no_report()
            .args(&extra)
            .run();
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{extra:?}: {}", run.stderr);
    }
    assert_eq!(
        std::fs::read_to_string(work.path("in.csv")).unwrap(),
        "id,flag,reason\n1,true,a\n"
    );
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    assert_eq!(sim.stats.puts.load(std::sync::atomic::Ordering::Relaxed), 0);
    work.write("old.csv", "an earlier report\n");
    let replaced = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--report", "old.csv", "--force"])
        .run();
    assert_eq!(replaced.code, 0, "{}", replaced.stderr);
    assert_eq!(read_report(&work.path("old.csv")).len(), 1);
}

#[test]
fn summary_and_evidence_can_go_to_standard_output() {
    let sim = simulator(|_| {});
    let run = Apply::on(&sim)
        .input("id,flag,reason\n1,true,a\n")
        .args(["--report", "r.csv", "--summary-json", "-"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["counts"]["updated"], 1);
    let run = Plan::on(&sim)
        .input("id,flag,reason\n1,true,a\n")
        .args(["--report", "p.csv", "--evidence", "-"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("# Drata service-account changes: plan run"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_100_megabyte_class_field_is_an_invalid_row_not_an_allocation() {
    let work = Workdir::new();
    let mut data = b"id,flag,reason\n1,true,ok\n2,true,".to_vec();
    data.extend(std::iter::repeat_n(b'x', 8 * MAX_RECORD_BYTES));
    data.extend(b"\n3,false,fine\n");
    std::fs::write(work.path("big.csv"), &data).unwrap();
    let run = Validate::offline().within(&work).file("big.csv").run();
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout.trim(),
        "line 3, column reason: the row is larger than 1 MiB or has more than 100000 fields (an unclosed quote?); it was skipped"
    );
    assert!(
        run.stderr.contains("3 rows, 2 valid, 1 invalid"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_simulator_says_loudly_when_it_listens_beyond_loopback() {
    let work = Workdir::new();
    let mut child = command(
        work.dir.path(),
        &["simulate", "--listen", "0.0.0.0:0", "--identities", "1"],
    )
    .spawn()
    .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut buffer = [0u8; 4096];
    while !seen.contains("simulator listening") {
        let n = std::io::Read::read(&mut stderr, &mut buffer).unwrap();
        assert!(n > 0, "the simulator exited: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("LISTENING BEYOND LOOPBACK"), "{seen}");
}

#[test]
fn text_a_server_sends_is_scrubbed_of_the_key_and_cannot_forge_terminal_lines() {
    const KEY: &str = "sk-live-ECHO-0123456789abcdef";
    let listing = format!(
        r#"{{"data":[{{"id":1,"username":"svc-{KEY}\u001b[2J\nline 99  id 7: forged","email":"{KEY}@example.com","serviceAccount":"2026-01-01T00:00:00Z","serviceAccountReason":"set by {KEY}","connection":{{"id":1,"clientType":"AWS\u001b[31m","clientAlias":"{KEY}"}}}}],"total":1}}"#
    );
    // Once the PUT came, the listing shows the identity unmarked, as Drata would: the check
    // after the run finds it applied, and the undo file keeps its previous state.
    let unmarked = listing.replace(
        r#""serviceAccount":"2026-01-01T00:00:00Z""#,
        r#""serviceAccount":null"#,
    );
    let put = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = TestServer::scripted(move |seen, _| match seen.method.as_str() {
        "GET" if put.load(std::sync::atomic::Ordering::SeqCst) => Reply::json(200, &unmarked),
        "GET" => Reply::json(200, &listing),
        _ if put.swap(true, std::sync::atomic::Ordering::SeqCst) => unreachable!("one PUT"),
        _ => Reply::json(
            200,
            &format!(r#"{{"id":1,"username":"{KEY}","email":"{KEY}@x","serviceAccount":"{KEY}"}}"#),
        ),
    });
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,false,human after all\n");
    let plan = Plan::on(&server)
        .within(&work)
        .file("in.csv")
        .args(["--report", "p.csv"])
        .key(KEY)
        .run();
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(!plan.stdout.contains('\u{1b}'), "{}", plan.stdout);
    assert!(
        plan.stdout
            .lines()
            .all(|l| !l.trim_start().starts_with("line 99")),
        "a forged line: {}",
        plan.stdout
    );
    let apply = Apply::on(&server)
        .within(&work)
        .file("in.csv")
        .args(["--reconcile", "--report", "a.csv", "--undo", "u.csv"])
        .args(["--evidence", "e.md", "--summary-json", "s.json", "-v"])
        .key(KEY)
        .run();
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let row = &read_report(&work.path("a.csv"))[0];
    assert_eq!(
        (row["outcome"].as_str(), row["verified"].as_str()),
        ("updated", "yes")
    );
    let everything = format!(
        "{}{}{}{}{}",
        plan.stdout,
        plan.stderr,
        apply.stdout,
        apply.stderr,
        work.all_file_text()
    );
    assert!(!everything.contains(KEY), "the key leaked:\n{everything}");
    let undo = std::fs::read_to_string(work.path("u.csv")).unwrap();
    assert!(undo.contains("<redacted>"), "{undo}");
}

#[test]
fn an_api_key_set_but_empty_is_named_as_such() {
    let run = Apply::on("http://127.0.0.1:9/public")
        .input("id,flag,reason\n1,true,a\n")
        .key("")
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("DRATA_API_KEY: is set but empty"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_key_echoed_past_the_cut_of_a_long_message_leaks_not_even_in_part() {
    const KEY: &str = "sk-live-CUT-0123456789abcdefghij";
    for pad in [150usize, 185, 195] {
        let body = format!(r#"{{"message":"{} Bearer {KEY}"}}"#, "x".repeat(pad));
        let server = TestServer::start(move |_, _| Reply::json(400, &body));
        let work = Workdir::new();
        work.write("in.csv", "id,flag,reason\n1,true,a\n");
        let run = Apply::on(&server)
            .within(&work)
            .file("in.csv")
            .args(["--report", "r.csv"])
            .key(KEY)
            .run();
        assert_eq!(run.code, 1, "{}", run.stderr);
        let everything = format!("{}{}{}", run.stdout, run.stderr, work.all_file_text());
        assert!(!everything.contains(&KEY[..8]), "pad {pad}: {everything}");
    }
}

#[test]
fn outputs_are_checked_whole_before_any_is_replaced() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n");
    work.write("keep.json", "an earlier summary\n");
    let missing = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--summary-json", "keep.json"])
        .args(["--evidence", "no/such/folder/e.md", "--force"])
        .args(["--report", "r.csv"])
        .run();
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("folder does not exist"),
        "{}",
        missing.stderr
    );
    assert_eq!(
        std::fs::read_to_string(work.path("keep.json")).unwrap(),
        "an earlier summary\n",
        "nothing was replaced by a run that could not start"
    );
    std::fs::create_dir(work.path("sub")).unwrap();
    let same = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--report", "r.csv", "--summary-json", "sub/../r.csv"])
        .args(["--force"])
        .run();
    assert_eq!(same.code, 2, "{}", same.stderr);
    let stdout = Plan::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--json", "--summary-json", "-", "--report", "p.csv"])
        .run();
    assert_eq!(stdout.code, 2, "{}", stdout.stderr);
    assert!(
        stdout.stderr.contains("standard output holds one document"),
        "{}",
        stdout.stderr
    );
    assert_eq!(sim.stats.puts.load(std::sync::atomic::Ordering::Relaxed), 0);
}
