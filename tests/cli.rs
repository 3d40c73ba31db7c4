//! End-to-end tests: the real binary over loopback HTTP, against the project's simulator
//! or a scripted server bound to port 0.

mod support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use support::*;

/// Runs `apply` on `csv` against a fresh simulator; returns the run, the report rows and
/// the simulator. Asserts rows in == rows out whenever the run got as far as a report.
fn apply_on_simulator(
    csv: &str,
    extra: &[&str],
) -> (
    Run,
    Vec<HashMap<String, String>>,
    drata_svcacct::simulator::RunningSimulator,
) {
    let work = Workdir::new();
    let sim = simulator(|_| {});
    let input = work.write("input.csv", csv);
    let report = work.path("report.csv");
    let url = sim.base_url();
    let mut args = vec![
        "apply",
        input.to_str().unwrap(),
        "--base-url",
        &url,
        "--report",
        report.to_str().unwrap(),
        "--rate",
        "unlimited",
    ];
    args.extend_from_slice(extra);
    let run = drata(work.dir.path(), &args, &[("DRATA_API_KEY", SIM_TOKEN)]);
    let rows = if report.exists() {
        read_report(&report)
    } else {
        Vec::new()
    };
    (run, rows, sim)
}

fn line(rows: &[HashMap<String, String>], n: u64) -> HashMap<String, String> {
    by_line(rows)
        .remove(&n)
        .unwrap_or_else(|| panic!("no report row for line {n}"))
}

// ---- SPEC "Input" -------------------------------------------------------------------

#[test]
fn input_bom_crlf_and_quoted_fields_with_delimiters_quotes_and_newlines() {
    let csv = "\u{feff}id,serviceAccount,serviceAccountReason\r\n\
               1,true,\"Deploy role, prod\"\r\n\
               2,true,\"said \"\"bot\"\"\"\r\n\
               3,true,\"two\r\nlines\"\r\n\
               4,false,plain\r\n";
    let (run, rows, _sim) = apply_on_simulator(csv, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        outcomes(&rows),
        vec![
            (2, "updated".into()),
            (3, "updated".into()),
            (4, "updated".into()),
            (6, "updated".into()),
        ],
        "a record's line is where it starts; the quoted newline moves line 5 to 6"
    );
    assert_eq!(line(&rows, 2)["reason"], "Deploy role, prod");
    assert_eq!(line(&rows, 3)["reason"], "said \"bot\"");
    assert_eq!(line(&rows, 4)["reason"], "two\r\nlines");
}

#[test]
fn input_blank_lines_are_ignored_but_still_counted() {
    let csv = "id,flag,reason\n\n1,true,a\n   \n\n2,false,b\n";
    let (run, rows, _sim) = apply_on_simulator(csv, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        outcomes(&rows),
        vec![(3, "updated".into()), (6, "updated".into())]
    );
}

#[test]
fn input_a_row_of_delimiters_is_a_row_not_a_blank_line() {
    let (run, rows, _sim) = apply_on_simulator("id,flag,reason\n1,true,a\n,,\n", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        outcomes(&rows),
        vec![(2, "not_attempted".into()), (3, "invalid".into())]
    );
}

#[test]
fn input_headers_match_ignoring_case_spaces_underscores_and_dashes_in_any_order() {
    let csv = "Reviewer,Service Account Reason,SERVICE_ACCOUNT,I-D,Email\n\
               dana,CI runner,yes,5,x@example.com\n";
    // "I-D" normalizes to "id"; extra columns are ignored.
    let (run, rows, _sim) = apply_on_simulator(csv, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = line(&rows, 2);
    assert_eq!(
        (
            row["id"].as_str(),
            row["service_account"].as_str(),
            row["reason"].as_str()
        ),
        ("5", "true", "CI runner")
    );
    assert_eq!(row["outcome"], "updated");
}

#[test]
fn input_column_options_and_delimiter_override_the_defaults() {
    let csv = "identity;is_bot;why;serviceAccount\n7;n;left the company;true\n";
    let (run, rows, _sim) = apply_on_simulator(
        csv,
        &[
            "--id-column",
            "identity",
            "--flag-column",
            "Is Bot",
            "--reason-column",
            "why",
            "--delimiter",
            ";",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = line(&rows, 2);
    assert_eq!(row["id"], "7");
    assert_eq!(
        row["service_account"], "false",
        "--flag-column wins over serviceAccount"
    );
    assert_eq!(row["reason"], "left the company");
}

#[test]
fn input_ids_are_decimal_integers_from_1_to_2_pow_53_minus_1() {
    let csv = "id,flag,reason\n\
               \x20 8 ,true,spaces around\n\
               9007199254740991,true,largest\n\
               9007199254740992,true,too large\n\
               0,true,zero\n\
               -4,true,negative\n\
               1e3,true,not decimal\n\
               ,true,empty\n";
    let (run, rows, _sim) = apply_on_simulator(csv, &["--skip-invalid"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let outcomes = outcomes(&rows);
    assert_eq!(outcomes[0], (2, "updated".into()));
    // The simulator has 1000 identities: a valid but unknown id is the API's 404.
    assert_eq!(outcomes[1], (3, "failed".into()));
    assert_eq!(line(&rows, 3)["http_status"], "404");
    for n in 4..=8 {
        let row = line(&rows, n);
        assert_eq!(row["outcome"], "invalid", "line {n}");
        assert!(
            row["error"].contains("column id"),
            "line {n}: {}",
            row["error"]
        );
        assert_eq!(row["attempts"], "0");
    }
}

#[test]
fn input_flags_accept_the_spec_words_in_any_case() {
    let mut csv = String::from("id,flag,reason\n");
    let words = [
        "true", "FALSE", "Yes", "no", "Y", "n", "1", " 0 ", "maybe", "t",
    ];
    for (i, word) in words.iter().enumerate() {
        csv.push_str(&format!("{},{word},r\n", i + 1));
    }
    let (run, rows, _sim) = apply_on_simulator(&csv, &["--skip-invalid"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let expected = [
        "true", "false", "true", "false", "true", "false", "true", "false",
    ];
    for (i, flag) in expected.iter().enumerate() {
        let row = line(&rows, i as u64 + 2);
        assert_eq!(row["service_account"], *flag);
        assert_eq!(row["outcome"], "updated");
    }
    for n in [10, 11] {
        let row = line(&rows, n);
        assert_eq!(row["outcome"], "invalid");
        assert_eq!(row["service_account"], "", "true, false or empty");
        assert!(row["error"].contains("column flag"), "{}", row["error"]);
    }
}

#[test]
fn input_reasons_are_trimmed_required_and_at_most_30000_utf16_units() {
    let exactly = "😀".repeat(15_000); // 30000 UTF-16 code units
    let over = format!("{exactly}a");
    let csv = format!(
        "id,flag,reason\n1,true,  padded  \n2,true,{exactly}\n3,true,{over}\n4,true,\n5,false,   \n"
    );
    let (run, rows, sim) = apply_on_simulator(&csv, &["--skip-invalid"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(line(&rows, 2)["reason"], "padded");
    assert_eq!(
        line(&rows, 3)["outcome"],
        "updated",
        "30000 units is allowed"
    );
    let too_long = line(&rows, 4);
    assert_eq!(too_long["outcome"], "invalid");
    assert!(too_long["error"].contains("30001"), "{}", too_long["error"]);
    assert_eq!(line(&rows, 5)["outcome"], "invalid");
    assert_eq!(line(&rows, 6)["outcome"], "invalid");
    assert_eq!(sim.stats.applied.load(Ordering::Relaxed), 2);
}

#[test]
fn input_reason_option_fills_blank_cells_and_an_absent_column() {
    let (run, rows, _sim) = apply_on_simulator(
        "id,flag,reason\n1,true,own reason\n2,true,\n",
        &["--reason", "Q3 review"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(line(&rows, 2)["reason"], "own reason");
    assert_eq!(line(&rows, 3)["reason"], "Q3 review");

    let (run, rows, _sim) = apply_on_simulator("id,flag\n1,true\n", &["--reason", "Q3 review"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(line(&rows, 2)["reason"], "Q3 review");
}

#[test]
fn input_identical_duplicates_are_sent_once_and_conflicts_invalidate_every_row() {
    let csv = "id,flag,reason\n\
               1,true,same\n\
               1,yes,  same \n\
               2,true,one\n\
               2,true,other\n\
               2,true,one\n";
    let (run, rows, sim) = apply_on_simulator(csv, &["--skip-invalid"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        outcomes(&rows),
        vec![
            (2, "updated".into()),
            (3, "duplicate".into()),
            (4, "invalid".into()),
            (5, "invalid".into()),
            (6, "invalid".into()),
        ]
    );
    assert!(
        line(&rows, 5)["error"].contains("lines 4, 5, 6"),
        "{}",
        line(&rows, 5)["error"]
    );
    assert_eq!(sim.stats.puts.load(Ordering::Relaxed), 1);
}

#[test]
fn input_wrong_field_counts_name_the_line_and_the_column() {
    let csv = "id,flag,reason\n1,true,ok\n2,true\n3,true,a,b\n";
    let (run, rows, _sim) = apply_on_simulator(csv, &["--skip-invalid"]);
    assert_eq!(run.code, 1);
    assert_eq!(line(&rows, 2)["outcome"], "updated");
    assert!(line(&rows, 3)["error"].contains("column reason: missing"));
    assert!(line(&rows, 4)["error"].contains("column 4 (no header)"));
}

#[test]
fn input_invalid_rows_block_the_run_unless_skip_invalid() {
    let csv = "id,flag,reason\n1,true,ok\n2,perhaps,bad flag\n3,true,ok\n";
    let (run, rows, sim) = apply_on_simulator(csv, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("line 3, column flag"), "{}", run.stderr);
    assert_eq!(
        sim.stats.requests.load(Ordering::Relaxed),
        0,
        "nothing sent"
    );
    assert_eq!(
        outcomes(&rows),
        vec![
            (2, "not_attempted".into()),
            (3, "invalid".into()),
            (4, "not_attempted".into()),
        ],
        "the report still has every row"
    );

    let (run, rows, sim) = apply_on_simulator(csv, &["--skip-invalid"]);
    assert_eq!(run.code, 1);
    assert_eq!(outcomes(&rows)[0], (2, "updated".into()));
    assert_eq!(sim.stats.applied.load(Ordering::Relaxed), 2);
}

#[test]
fn input_missing_columns_and_unreadable_files_exit_2_before_anything_is_sent() {
    let (run, rows, sim) = apply_on_simulator("id,reason\n1,x\n", &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no service-account flag column"),
        "{}",
        run.stderr
    );
    assert!(rows.is_empty());
    assert_eq!(sim.stats.requests.load(Ordering::Relaxed), 0);

    let work = Workdir::new();
    let run = drata(work.dir.path(), &["validate", "nope.csv"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("nope.csv"), "{}", run.stderr);
}

#[test]
fn input_from_standard_input() {
    let work = Workdir::new();
    let sim = simulator(|_| {});
    let url = sim.base_url();
    let run = run_with_stdin(
        work.dir.path(),
        &["apply", "-", "--base-url", &url, "--rate", "unlimited"],
        &[("DRATA_API_KEY", SIM_TOKEN)],
        Some("id,flag,reason\n1,true,a\n2,false,b\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = std::fs::read_dir(work.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("stdin.report.") && name.ends_with(".csv")
        })
        .expect("default report name for standard input");
    assert_eq!(read_report(&report).len(), 2);
}

#[test]
fn validate_needs_no_token_or_network_and_lists_every_problem() {
    let work = Workdir::new();
    let input = work.write(
        "in.csv",
        "id,flag,reason\n1,true,a\nx,true,b\n3,maybe,c\n1,false,d\n",
    );
    let run = drata(work.dir.path(), &["validate", input.to_str().unwrap()], &[]);
    assert_eq!(run.code, 1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert!(lines[0].starts_with("line 2, column id: id 1 appears on lines 2, 5"));
    assert!(lines[1].starts_with("line 3, column id:"));
    assert!(lines[2].starts_with("line 4, column flag:"));
    assert!(lines[3].starts_with("line 5, column id:"));

    let good = work.write("good.csv", "id,flag,reason\n1,true,a\n");
    let run = drata(work.dir.path(), &["validate", good.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

// ---- SPEC "Network behaviour" -------------------------------------------------------

fn apply_on_server(
    server: &TestServer,
    csv: &str,
    extra: &[&str],
) -> (Run, Vec<HashMap<String, String>>, Workdir) {
    let work = Workdir::new();
    let input = work.write("input.csv", csv);
    let report = work.path("report.csv");
    let mut args = vec![
        "apply",
        input.to_str().unwrap(),
        "--base-url",
        &server.url,
        "--report",
        report.to_str().unwrap(),
        "--retry-base-ms",
        "10",
    ];
    args.extend_from_slice(extra);
    let run = drata(work.dir.path(), &args, &[("DRATA_API_KEY", "test-key")]);
    let rows = if report.exists() {
        read_report(&report)
    } else {
        Vec::new()
    };
    (run, rows, work)
}

#[test]
fn network_500_then_200_retries_once() {
    let server = TestServer::start(|seen, index| match index {
        0 => Reply::json(500, r#"{"message":"boom"}"#),
        _ => Reply::identity(seen.id().unwrap()),
    });
    let (run, rows, _work) = apply_on_server(&server, "id,flag,reason\n42,true,ci\n", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = line(&rows, 2);
    assert_eq!(
        (
            row["outcome"].as_str(),
            row["attempts"].as_str(),
            row["http_status"].as_str()
        ),
        ("updated", "2", "200")
    );
    assert_eq!(row["username"], "user42");
    let request = &server.seen()[0];
    assert_eq!(request.method, "PUT");
    assert_eq!(
        request.path,
        "/public/user-identities/infrastructure/42/service-account"
    );
    assert_eq!(request.headers["authorization"], "Bearer test-key");
    assert!(request.headers["user-agent"].starts_with("drata-svcacct/"));
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"serviceAccount": true, "serviceAccountReason": "ci"})
    );
}

#[test]
fn network_429_with_retry_after_pauses_then_succeeds() {
    let server = TestServer::start(|seen, index| match index {
        0 => Reply::json(429, r#"{"message":"slow down"}"#).with_header("retry-after", "1"),
        _ => Reply::identity(seen.id().unwrap()),
    });
    let (run, rows, _work) = apply_on_server(
        &server,
        "id,flag,reason\n1,true,a\n",
        &["--rate", "unlimited"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = line(&rows, 2);
    assert_eq!(
        (row["outcome"].as_str(), row["attempts"].as_str()),
        ("updated", "2")
    );
    let seen = server.seen();
    let waited = seen[1].at.duration_since(seen[0].at);
    assert!(
        waited >= Duration::from_millis(900),
        "Retry-After honoured: {waited:?}"
    );
    assert!(run.stderr.contains("429s 1"), "{}", run.stderr);
}

#[test]
fn network_a_429_pauses_every_worker() {
    // Request 0 gets a 429 with Retry-After: 1; the other workers must wait too.
    let server = TestServer::start(|seen, index| match index {
        0 => Reply::json(429, "{}").with_header("retry-after", "1"),
        _ => Reply::identity(seen.id().unwrap()).after(Duration::from_millis(20)),
    });
    let (run, rows, _work) = apply_on_server(
        &server,
        &rows_csv(1, 12),
        &["--rate", "unlimited", "--concurrency", "4"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(rows.len(), 12);
    let seen = server.seen();
    let first = seen[0].at;
    // Requests already in flight when the 429 arrived may land; the rest wait.
    let early = seen
        .iter()
        .filter(|s| s.at.duration_since(first) < Duration::from_millis(800))
        .count();
    assert!(early <= 4, "{early} requests went out during the pause");
}

#[test]
fn network_404_fails_the_row_and_the_run_goes_on() {
    let server = TestServer::start(|seen, _| match seen.id() {
        Some(2) => Reply::json(404, r#"{"message":"User identity not found"}"#),
        id => Reply::identity(id.unwrap()),
    });
    let (run, rows, _work) = apply_on_server(
        &server,
        "id,flag,reason\n1,true,a\n2,true,b\n3,true,c\n",
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        outcomes(&rows),
        vec![
            (2, "updated".into()),
            (3, "failed".into()),
            (4, "updated".into())
        ]
    );
    let failed = line(&rows, 3);
    assert_eq!(failed["attempts"], "1", "404 is not retried");
    assert_eq!(failed["http_status"], "404");
    assert!(
        failed["error"].contains("User identity not found"),
        "{}",
        failed["error"]
    );
}

#[test]
fn network_400_array_messages_are_joined() {
    let server = TestServer::start(|_, _| {
        Reply::json(
            400,
            r#"{"statusCode":400,"message":["a is bad","b is worse"]}"#,
        )
    });
    let (run, rows, _work) = apply_on_server(&server, "id,flag,reason\n1,true,a\n", &[]);
    assert_eq!(run.code, 1);
    assert!(line(&rows, 2)["error"].contains("a is bad; b is worse"));
}

#[test]
fn network_401_aborts_with_exit_3_and_unsent_rows_not_attempted() {
    let server = TestServer::start(|_, _| Reply::json(401, r#"{"message":"Unauthorized"}"#));
    let (run, rows, _work) = apply_on_server(
        &server,
        &rows_csv(1, 6),
        &["--concurrency", "1", "--rate", "unlimited"],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(server.seen().len(), 1, "no request after the 401");
    assert_eq!(rows.len(), 6);
    let outcomes = outcomes(&rows);
    assert_eq!(outcomes[0], (2, "failed".into()));
    for (n, outcome) in &outcomes[1..] {
        assert_eq!(outcome, "not_attempted", "line {n}");
        assert!(line(&rows, *n)["error"].contains("401"));
    }
    assert!(run.stderr.contains("--resume-from"), "{}", run.stderr);
}

#[test]
fn network_redirects_are_not_followed() {
    let server = TestServer::start(|_, _| {
        Reply::json(302, "").with_header("location", "https://elsewhere.example/")
    });
    let (run, rows, _work) = apply_on_server(&server, "id,flag,reason\n1,true,a\n", &[]);
    assert_eq!(run.code, 1);
    assert_eq!(server.seen().len(), 1);
    let row = line(&rows, 2);
    assert_eq!(row["http_status"], "302");
    assert!(row["error"].contains("redirect"), "{}", row["error"]);
}

#[test]
fn network_retries_stop_at_max_attempts() {
    let server = TestServer::start(|_, _| Reply::json(503, "unavailable"));
    let (run, rows, _work) = apply_on_server(
        &server,
        "id,flag,reason\n1,true,a\n",
        &["--max-attempts", "3"],
    );
    assert_eq!(run.code, 1);
    let row = line(&rows, 2);
    assert_eq!(
        (row["outcome"].as_str(), row["attempts"].as_str()),
        ("failed", "3")
    );
    assert_eq!(server.seen().len(), 3);
}

#[test]
fn network_timeouts_are_retried() {
    let server = TestServer::start(|seen, index| match index {
        0 => Reply::identity(seen.id().unwrap()).after(Duration::from_secs(3)),
        _ => Reply::identity(seen.id().unwrap()),
    });
    let (run, rows, _work) =
        apply_on_server(&server, "id,flag,reason\n1,true,a\n", &["--timeout", "0.3"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(line(&rows, 2)["attempts"], "2");
}

#[test]
fn network_rate_is_honoured() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap()));
    let (run, rows, _work) = apply_on_server(
        &server,
        &rows_csv(1, 30),
        &["--rate", "20/s", "--concurrency", "8"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(rows.len(), 30);
    let times: Vec<_> = server.seen().iter().map(|s| s.at).collect();
    // In any one-second window: at most 20 plus the burst of 1, with slack for scheduling.
    for (i, start) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .filter(|t| t.duration_since(*start) < Duration::from_secs(1))
            .count();
        assert!(in_window <= 23, "{in_window} requests within one second");
    }
    let span = times.last().unwrap().duration_since(times[0]);
    assert!(
        span >= Duration::from_millis(1100),
        "30 requests at 20/s took {span:?}"
    );
}

#[test]
fn network_plain_http_is_refused_off_loopback() {
    let work = Workdir::new();
    let input = work.write("in.csv", "id,flag,reason\n1,true,a\n");
    for url in ["http://example.com/public", "http://10.1.2.3/"] {
        let run = drata(
            work.dir.path(),
            &["apply", input.to_str().unwrap(), "--base-url", url],
            &[("DRATA_API_KEY", "k")],
        );
        assert_eq!(run.code, 2, "{url}");
        assert!(run.stderr.contains("loopback"), "{}", run.stderr);
    }
    let run = drata(
        work.dir.path(),
        &["apply", input.to_str().unwrap()],
        &[
            ("DRATA_API_KEY", "k"),
            ("DRATA_BASE_URL", "http://example.com/"),
        ],
    );
    assert_eq!(run.code, 2, "DRATA_BASE_URL is checked too");
}

#[test]
fn a_missing_token_exits_2_and_sends_nothing() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap()));
    let work = Workdir::new();
    let input = work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let run = drata(
        work.dir.path(),
        &["apply", input.to_str().unwrap(), "--base-url", &server.url],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("DRATA_API_KEY"), "{}", run.stderr);
    assert!(server.seen().is_empty());
}

#[test]
fn the_token_file_is_read_first_line_trimmed() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap()));
    let work = Workdir::new();
    let key = work.write("key", "  file-key  \nsecond line\n");
    let (run, _rows, _w) = apply_on_server(
        &server,
        "id,flag,reason\n1,true,a\n",
        &["--token-file", key.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.seen()[0].headers["authorization"], "Bearer file-key");
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
    let input = work.write("in.csv", &rows_csv(1, 5));
    let report = work.path("report.csv");
    let summary = work.path("summary.json");
    let run = drata(
        work.dir.path(),
        &[
            "apply",
            input.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--report",
            report.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
            "--retry-base-ms",
            "1",
            "--max-attempts",
            "2",
            "-vv",
        ],
        &[("DRATA_API_KEY", KEY)],
    );
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

// ---- SPEC "The report" --------------------------------------------------------------

#[test]
fn report_is_private_complete_and_spreadsheet_safe() {
    let csv =
        "id,flag,reason\n1,true,=HYPERLINK(\"x\")\n2,true,+1\n3,true,@me\n4,true,-x\n5,true,ok\n";
    let work = Workdir::new();
    let sim = simulator(|_| {});
    let input = work.write("in.csv", csv);
    let report = work.path("r.csv");
    let url = sim.base_url();
    let args = [
        "apply",
        input.to_str().unwrap(),
        "--base-url",
        &url,
        "--report",
        report.to_str().unwrap(),
    ];
    let first = drata(work.dir.path(), &args, &[("DRATA_API_KEY", SIM_TOKEN)]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&report).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let rows = read_report(&report);
    assert_eq!(rows.len(), 5);
    assert_eq!(line(&rows, 2)["reason"], "'=HYPERLINK(\"x\")");
    assert_eq!(line(&rows, 3)["reason"], "'+1");
    assert_eq!(line(&rows, 4)["reason"], "'@me");
    assert_eq!(line(&rows, 5)["reason"], "'-x");
    assert_eq!(line(&rows, 6)["reason"], "ok");
    let finished = &line(&rows, 6)["finished_at"];
    assert!(
        finished.ends_with('Z') && finished.contains('T'),
        "{finished}"
    );

    let again = drata(work.dir.path(), &args, &[("DRATA_API_KEY", SIM_TOKEN)]);
    assert_eq!(again.code, 2, "an existing report is never overwritten");
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    assert_eq!(read_report(&report).len(), 5);

    let mut forced = args.to_vec();
    forced.push("--force");
    let forced = drata(work.dir.path(), &forced, &[("DRATA_API_KEY", SIM_TOKEN)]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
}

#[test]
fn summary_json_has_counts_requests_and_digests() {
    let work = Workdir::new();
    let sim = simulator(|_| {});
    let input = work.write(
        "in.csv",
        "id,flag,reason\n1,true,a\n1,true,a\n5000,true,b\n",
    );
    let summary_path = work.path("s.json");
    let url = sim.base_url();
    let run = drata(
        work.dir.path(),
        &[
            "apply",
            input.to_str().unwrap(),
            "--base-url",
            &url,
            "--summary-json",
            summary_path.to_str().unwrap(),
            "--rate",
            "unlimited",
        ],
        &[("DRATA_API_KEY", SIM_TOKEN)],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    assert_eq!(summary["rows"], 3);
    assert_eq!(summary["counts"]["updated"], 1);
    assert_eq!(summary["counts"]["duplicate"], 1);
    assert_eq!(summary["counts"]["failed"], 1);
    assert_eq!(summary["requests"], 2);
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

#[test]
fn the_readme_command_runs_on_the_builtin_simulator() {
    let work = Workdir::new();
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/quarterly-review.csv");
    let report = work.path("r.csv");
    let run = drata(
        work.dir.path(),
        &[
            "apply",
            sample.to_str().unwrap(),
            "--simulate",
            "--report",
            report.to_str().unwrap(),
            "--retry-base-ms",
            "5",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = read_report(&report);
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|r| r["outcome"] == "updated"));
    assert!(run.stderr.contains("updated 50"), "{}", run.stderr);
}

// ---- SPEC "Interruption and resume", issue "Never lose a row" -------------------------

#[cfg(unix)]
#[test]
fn interrupt_finishes_requests_in_flight_and_reports_the_rest_not_attempted() {
    let server = TestServer::start(|seen, _| {
        Reply::identity(seen.id().unwrap()).after(Duration::from_millis(300))
    });
    let work = Workdir::new();
    let input = work.write("in.csv", &rows_csv(1, 20));
    let report = work.path("r.csv");
    let child = command(
        work.dir.path(),
        &[
            "apply",
            input.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--report",
            report.to_str().unwrap(),
            "--rate",
            "unlimited",
            "--concurrency",
            "2",
        ],
    )
    .env("DRATA_API_KEY", "k")
    .spawn()
    .unwrap();
    wait_until(Duration::from_secs(20), "two requests", || {
        server.seen().len() >= 2
    });
    signal(&child, libc::SIGINT);
    let run = finish(child);
    assert_eq!(run.code, 130, "{}", run.stderr);
    let rows = read_report(&report);
    assert_eq!(rows.len(), 20, "rows in == rows out");
    let updated = ids_with(&rows, "updated").len();
    assert_eq!(
        updated,
        server.seen().len(),
        "every request in flight finished and was reported"
    );
    let not_attempted: Vec<_> = rows
        .iter()
        .filter(|r| r["outcome"] == "not_attempted")
        .collect();
    assert_eq!(updated + not_attempted.len(), 20);
    assert!(not_attempted
        .iter()
        .all(|r| r["error"] == "interrupted" && r["attempts"] == "0"));
    assert!(run.stderr.contains("--resume-from"), "{}", run.stderr);
}

#[cfg(unix)]
#[test]
fn a_second_interrupt_exits_at_once() {
    let server = TestServer::start(|seen, _| {
        Reply::identity(seen.id().unwrap()).after(Duration::from_secs(60))
    });
    let work = Workdir::new();
    let input = work.write("in.csv", &rows_csv(1, 3));
    let child = command(
        work.dir.path(),
        &[
            "apply",
            input.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--concurrency",
            "1",
        ],
    )
    .env("DRATA_API_KEY", "k")
    .spawn()
    .unwrap();
    wait_until(Duration::from_secs(20), "a request", || {
        !server.seen().is_empty()
    });
    signal(&child, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(100));
    let started = std::time::Instant::now();
    signal(&child, libc::SIGINT);
    let run = finish(child);
    assert_eq!(run.code, 130);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "did not wait for the 60 s answer"
    );
}

/// Runs the resume command the summary printed, as printed.
fn printed_resume_command(stderr: &str) -> Vec<String> {
    let mut lines = stderr.lines();
    lines
        .find(|l| l.contains("to finish the remaining rows, run:"))
        .expect("a resume command");
    let command = lines.next().expect("the command line").trim();
    command.split(' ').map(str::to_owned).collect()
}

#[test]
fn resume_sends_only_what_is_left_using_the_printed_command() {
    let fail_id_2 = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let switch = std::sync::Arc::clone(&fail_id_2);
    let server = TestServer::start(move |seen, _| match seen.id() {
        Some(2) if switch.load(Ordering::SeqCst) => Reply::json(404, r#"{"message":"not yet"}"#),
        id => Reply::identity(id.unwrap()),
    });
    let work = Workdir::new();
    let input = work.write(
        "in.csv",
        "id,flag,reason\n1,true,a\n2,true,b\n3,false,c\n3,false,c\n",
    );
    let first = drata(
        work.dir.path(),
        &[
            "apply",
            "in.csv",
            "--base-url",
            &server.url,
            "--report",
            "first.csv",
        ],
        &[("DRATA_API_KEY", "k")],
    );
    assert_eq!(first.code, 1, "{}", first.stderr);
    let _ = input;
    let command = printed_resume_command(&first.stderr);
    assert!(command.contains(&"--resume-from".to_owned()));
    assert!(
        !command.contains(&"--report".to_owned()),
        "a new report, not the old one"
    );

    fail_id_2.store(false, Ordering::SeqCst);
    let before = server.seen().len();
    let second = drata(
        work.dir.path(),
        &command
            .iter()
            .skip(1)
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[("DRATA_API_KEY", "k")],
    );
    assert_eq!(second.code, 0, "{}", second.stderr);
    let new_requests: Vec<_> = server.seen()[before..]
        .iter()
        .filter_map(Seen::id)
        .collect();
    assert_eq!(new_requests, vec![2], "only the failed row is sent again");
    let report = std::fs::read_dir(work.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("in.report.")
        })
        .expect("the resumed run's report");
    assert_eq!(
        outcomes(&read_report(&report)),
        vec![
            (2, "skipped".into()),
            (3, "updated".into()),
            (4, "skipped".into()),
            (5, "duplicate".into()),
        ],
        "the new report is complete on its own"
    );
}

#[test]
fn resume_tolerates_a_report_cut_short_and_matches_line_id_and_flag() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap()));
    let work = Workdir::new();
    let old = work.write(
        "old.csv",
        "line,id,service_account,reason,outcome,http_status,attempts,error,username,email,service_account_at,finished_at\n\
         2,1,true,a,updated,200,1,,u,e,t,2026-11-29T00:00:00Z\n\
         3,2,false,b,updated,200,1,,u,e,t,2026-11-29T00:00:00Z\n\
         4,3,true,c,failed,500,5,boom,,,,2026-11-29T00:00:00Z\n\
         5,4,true,'-d,unchanged,,0,,,,,2026-11-29T00:00:00Z\n\
         6,5,true,\"cut sho",
    );
    let (run, rows, _w) = apply_on_server(
        &server,
        "id,flag,reason\n1,true,a\n2,true,b\n3,true,c\n4,true,-d\n5,true,e\n",
        &["--resume-from", old.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        outcomes(&rows),
        vec![
            (2, "skipped".into()),
            (3, "updated".into()),
            (4, "updated".into()),
            (5, "skipped".into()),
            (6, "updated".into()),
        ],
        "line 3 wanted false before and true now; line 4 failed; line 6 was cut"
    );
    let mut sent: Vec<u64> = server.seen().iter().filter_map(Seen::id).collect();
    sent.sort();
    assert_eq!(sent, vec![2, 3, 5]);
}

#[cfg(unix)]
#[test]
fn a_killed_run_resumes_to_a_complete_report_without_resending_updated_rows() {
    let sim = simulator(|c| c.latency = Duration::from_millis(10));
    let work = Workdir::new();
    let input = work.write("in.csv", &rows_csv(1, 60));
    let first_report = work.path("first.csv");
    let url = sim.base_url();
    let mut child = command(
        work.dir.path(),
        &[
            "apply",
            input.to_str().unwrap(),
            "--base-url",
            &url,
            "--report",
            first_report.to_str().unwrap(),
            "--rate",
            "40/s",
        ],
    )
    .env("DRATA_API_KEY", SIM_TOKEN)
    .spawn()
    .unwrap();
    wait_until(Duration::from_secs(30), "15 reported rows", || {
        report_rows_so_far(&first_report) >= 15
    });
    child.kill().unwrap(); // SIGKILL
    let killed = finish(child);
    assert_ne!(killed.code, 0);
    let first_rows = read_report(&first_report);
    assert!(
        first_rows.len() >= 15 && first_rows.len() < 60,
        "{}",
        first_rows.len()
    );
    let updated_first = ids_with(&first_rows, "updated");

    let second_report = work.path("second.csv");
    let resumed = drata(
        work.dir.path(),
        &[
            "apply",
            input.to_str().unwrap(),
            "--base-url",
            &url,
            "--report",
            second_report.to_str().unwrap(),
            "--rate",
            "unlimited",
            "--resume-from",
            first_report.to_str().unwrap(),
        ],
        &[("DRATA_API_KEY", SIM_TOKEN)],
    );
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let rows = read_report(&second_report);
    assert_eq!(rows.len(), 60, "the resumed report is complete");
    let mut skipped = ids_with(&rows, "skipped");
    skipped.sort();
    let mut expected = updated_first.clone();
    expected.sort();
    assert_eq!(skipped, expected);
    assert_eq!(ids_with(&rows, "updated").len(), 60 - expected.len());
    let applied = sim.applied();
    for id in &updated_first {
        assert_eq!(
            applied.get(id),
            Some(&1),
            "id {id} was reported updated, then sent again"
        );
    }
    assert!(
        (1..=60).all(|id| applied.contains_key(&id)),
        "every row applied"
    );
}

#[test]
fn max_failures_count_aborts_the_run() {
    let server = TestServer::start(|_, _| Reply::json(404, r#"{"message":"gone"}"#));
    let (run, rows, _w) = apply_on_server(
        &server,
        &rows_csv(1, 10),
        &[
            "--max-failures",
            "2",
            "--concurrency",
            "1",
            "--rate",
            "unlimited",
        ],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(rows.len(), 10);
    let failed = ids_with(&rows, "failed").len();
    assert!((3..=4).contains(&failed), "{failed} failed");
    assert_eq!(ids_with(&rows, "not_attempted").len(), 10 - failed);
    assert!(run.stderr.contains("--max-failures"), "{}", run.stderr);
}

#[test]
fn max_failures_percentage_applies_once_20_rows_finished() {
    let server = TestServer::start(|_, _| Reply::json(404, "{}"));
    let (run, rows, _w) = apply_on_server(
        &server,
        &rows_csv(1, 40),
        &["--concurrency", "1", "--rate", "unlimited"],
    );
    assert_eq!(run.code, 3, "default 50%: {}", run.stderr);
    let failed = ids_with(&rows, "failed").len();
    assert!(
        (20..=21).contains(&failed),
        "{failed} failed before the abort"
    );
    assert_eq!(rows.len(), 40);

    // A third of the rows failing stays under 50%: the run goes on.
    let server = TestServer::start(|seen, _| match seen.id() {
        Some(id) if id % 3 == 0 => Reply::json(404, "{}"),
        id => Reply::identity(id.unwrap()),
    });
    let (run, rows, _w) = apply_on_server(&server, &rows_csv(1, 30), &["--rate", "unlimited"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(ids_with(&rows, "failed").len(), 10);
    assert_eq!(ids_with(&rows, "updated").len(), 20);
}

// ---- Fault matrix against the simulator ---------------------------------------------

/// Applies `n` rows against a simulator with faults; checks rows in == rows out, that
/// every `updated` row was applied by the server, and that the exit code matches.
fn fault_run(
    n: u64,
    configure: impl FnOnce(&mut drata_svcacct::config::SimulatorConfig),
    extra: &[&str],
) -> (
    Run,
    Vec<HashMap<String, String>>,
    drata_svcacct::simulator::RunningSimulator,
) {
    let sim = simulator(configure);
    let work = Workdir::new();
    let input = work.write("in.csv", &rows_csv(1, n));
    let report = work.path("r.csv");
    let url = sim.base_url();
    let mut args = vec![
        "apply",
        input.to_str().unwrap(),
        "--base-url",
        &url,
        "--report",
        report.to_str().unwrap(),
        "--retry-base-ms",
        "5",
        "--max-failures",
        "none",
    ];
    args.extend_from_slice(extra);
    let run = drata(work.dir.path(), &args, &[("DRATA_API_KEY", SIM_TOKEN)]);
    let rows = read_report(&report);
    assert_eq!(rows.len() as u64, n, "rows in == rows out");
    let applied = sim.applied();
    for id in ids_with(&rows, "updated") {
        assert!(
            applied.contains_key(&id),
            "id {id} reported updated, never applied"
        );
    }
    let expected = if rows.iter().all(|r| r["outcome"] == "updated") {
        0
    } else {
        1
    };
    assert_eq!(run.code, expected, "{}", run.stderr);
    (run, rows, sim)
}

#[test]
fn faults_30_percent_500s_are_retried_to_success() {
    let (_run, rows, sim) = fault_run(
        60,
        |c| c.error_rate = 0.3,
        &["--rate", "unlimited", "--max-attempts", "10"],
    );
    assert_eq!(ids_with(&rows, "updated").len(), 60);
    assert!(sim.stats.injected_errors.load(Ordering::Relaxed) > 5);
    assert_eq!(
        sim.stats.applied.load(Ordering::Relaxed),
        60,
        "nothing applied twice"
    );
}

#[test]
fn faults_dropped_connections_are_retried() {
    let (_run, rows, sim) = fault_run(
        40,
        |c| c.drop_rate = 0.2,
        &["--rate", "unlimited", "--max-attempts", "10"],
    );
    assert_eq!(ids_with(&rows, "updated").len(), 40);
    assert!(sim.stats.dropped.load(Ordering::Relaxed) > 0);
}

#[test]
fn faults_answers_slower_than_the_timeout_are_retried() {
    let (_run, rows, sim) = fault_run(
        20,
        |c| {
            c.slow_rate = 0.2;
            c.slow_delay = Duration::from_secs(5);
        },
        &[
            "--rate",
            "unlimited",
            "--timeout",
            "0.5",
            "--max-attempts",
            "10",
        ],
    );
    assert_eq!(ids_with(&rows, "updated").len(), 20);
    assert!(sim.stats.slowed.load(Ordering::Relaxed) > 0);
    assert!(
        rows.iter().any(|r| r["attempts"] != "1"),
        "some rows needed a retry"
    );
}

#[test]
fn faults_twice_the_servers_limit_settles_under_it() {
    let (run, rows, sim) = fault_run(
        60,
        |c| {
            c.rate_limit = "10/s".parse().unwrap();
            c.bucket_capacity = 5;
        },
        &["--rate", "20/s", "--concurrency", "8"],
    );
    assert_eq!(ids_with(&rows, "updated").len(), 60);
    let limited = sim.stats.rate_limited.load(Ordering::Relaxed) as f64;
    let requests = sim.stats.requests.load(Ordering::Relaxed) as f64;
    assert!(limited > 0.0, "the server's limit was exceeded");
    assert!(
        limited / requests < 0.3,
        "{limited} of {requests} answered 429"
    );
    assert!(run.stderr.contains("lowered the pace"), "{}", run.stderr);
}

// ---- Review follow-ups --------------------------------------------------------------

#[test]
fn validate_lists_every_problem_of_a_large_input() {
    let work = Workdir::new();
    let mut csv = String::from("id,flag,reason\n");
    for id in 1..=3000u64 {
        let flag = if id % 500 == 0 { "maybe" } else { "true" };
        csv.push_str(&format!(
            "{id},{flag},a reason long enough to fill the buffers {id}\n"
        ));
    }
    let input = work.write("big.csv", &csv);
    let run = drata(work.dir.path(), &["validate", input.to_str().unwrap()], &[]);
    assert_eq!(run.code, 1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{}", run.stdout);
    assert!(
        lines[5].starts_with("line 3001, column flag"),
        "{}",
        lines[5]
    );
}

#[test]
fn secrets_in_a_base_url_are_not_echoed() {
    let work = Workdir::new();
    let input = work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let run = drata(
        work.dir.path(),
        &[
            "apply",
            input.to_str().unwrap(),
            "--base-url",
            "http://me:hunter2@example.com/?key=hunter2",
        ],
        &[("DRATA_API_KEY", "k")],
    );
    assert_eq!(run.code, 2);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

#[test]
fn a_server_echoing_the_key_does_not_put_it_in_the_report() {
    let server = TestServer::start(|seen, _| {
        let echoed = seen.headers["authorization"].clone();
        Reply::json(400, &format!(r#"{{"message":"bad header {echoed}"}}"#))
    });
    let (run, rows, work) = apply_on_server(&server, "id,flag,reason\n1,true,a\n", &[]);
    assert_eq!(run.code, 1);
    assert!(
        line(&rows, 2)["error"].contains("<redacted>"),
        "{:?}",
        line(&rows, 2)
    );
    assert!(!work.all_file_text().contains("test-key"));
}

#[test]
fn an_invalid_key_in_the_environment_is_named_as_such() {
    let work = Workdir::new();
    let input = work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let run = drata(
        work.dir.path(),
        &["apply", input.to_str().unwrap()],
        &[("DRATA_API_KEY", "two words")],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("DRATA_API_KEY: the API key contains"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("two words"));
}

#[test]
fn the_resume_command_works_with_a_summary_file() {
    let server = TestServer::start(|seen, index| match index {
        0 => Reply::json(404, "{}"),
        _ => Reply::identity(seen.id().unwrap()),
    });
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let first = drata(
        work.dir.path(),
        &[
            "apply",
            "in.csv",
            "--base-url",
            &server.url,
            "--summary-json",
            "s.json",
        ],
        &[("DRATA_API_KEY", "k")],
    );
    assert_eq!(first.code, 1, "{}", first.stderr);
    let command = printed_resume_command(&first.stderr);
    assert!(
        command.contains(&"--summary-json=s.resumed.json".to_owned()),
        "{command:?}"
    );
    let second = drata(
        work.dir.path(),
        &command
            .iter()
            .skip(1)
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[("DRATA_API_KEY", "k")],
    );
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        work.path("s.resumed.json").exists(),
        "the resumed run has its own summary"
    );
}

#[test]
fn an_existing_summary_file_stops_the_run_before_anything_is_sent() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap()));
    let work = Workdir::new();
    work.write("s.json", "{}");
    work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let run = drata(
        work.dir.path(),
        &[
            "apply",
            "in.csv",
            "--base-url",
            &server.url,
            "--summary-json",
            "s.json",
            "--report",
            "r.csv",
        ],
        &[("DRATA_API_KEY", "k")],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(server.seen().is_empty());
    assert!(!work.path("r.csv").exists(), "no report is left behind");
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
        let run = drata(work.dir.path(), &args, &[]);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
}

#[test]
fn simulate_ignores_an_exported_base_url() {
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let run = drata(
        work.dir.path(),
        &[
            "apply",
            "in.csv",
            "--simulate",
            "--rate",
            "unlimited",
            "--report",
            "r.csv",
        ],
        &[("DRATA_BASE_URL", "https://public-api.drata.com/public")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn plan_never_sends_updates() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap_or(1)));
    let (_run, _rows, _w) = {
        let work = Workdir::new();
        work.write("in.csv", "id,flag,reason\n1,true,a\n");
        let run = drata(
            work.dir.path(),
            &[
                "plan",
                "in.csv",
                "--base-url",
                &server.url,
                "--report",
                "p.csv",
            ],
            &[("DRATA_API_KEY", "k")],
        );
        (run, (), work)
    };
    assert!(
        server.seen().iter().all(|s| s.method == "GET"),
        "plan sent a write"
    );
}

// ---- Reconcile, plan, undo, lookup (issue 4) ----------------------------------------

/// Runs the binary against a simulator from `dir`, with the simulator's token.
fn on_sim(sim: &drata_svcacct::simulator::RunningSimulator, work: &Workdir, args: &[&str]) -> Run {
    let url = sim.base_url();
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(&["--base-url", &url, "--rate", "unlimited"]);
    drata(work.dir.path(), &all, &[("DRATA_API_KEY", SIM_TOKEN)])
}

#[test]
fn the_listing_pages_like_the_api() {
    for (identities, pages) in [(0u64, 1u64), (50, 1), (51, 2), (1000, 20)] {
        let sim = simulator(|c| c.identities = identities);
        let work = Workdir::new();
        work.write("in.csv", "id,flag,reason\n1,false,x\n");
        let run = on_sim(&sim, &work, &["plan", "in.csv", "--report", "p.csv"]);
        let expected = if identities == 0 { 1 } else { 0 };
        assert_eq!(run.code, expected, "{identities}: {}", run.stderr);
        assert_eq!(
            sim.stats.lists.load(Ordering::Relaxed),
            pages,
            "{identities} identities"
        );
        let rows = read_report(&work.path("p.csv"));
        let outcome = if identities == 0 {
            "not_found"
        } else {
            "unchanged"
        };
        assert_eq!(rows[0]["outcome"], outcome);
    }
    // The pages themselves: limit at most 50, page and total as the API sends them.
    let sim = simulator(|c| c.identities = 51);
    let url = format!(
        "http://{}/public/user-identities/infrastructure?page=2&limit=50",
        sim.addr
    );
    let body = runtime().block_on(async {
        reqwest::Client::new()
            .get(&url)
            .bearer_auth(SIM_TOKEN)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    });
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (
            body["page"].as_u64(),
            body["limit"].as_u64(),
            body["total"].as_u64()
        ),
        (Some(2), Some(50), Some(51))
    );
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["id"], 51);
}

#[test]
fn plan_reports_what_would_change_and_sends_no_put() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    // 7 is seeded as a service account with "Seeded: automation account"; 1 and 2 are not.
    work.write(
        "in.csv",
        "id,flag,reason\n7,true, Seeded: automation account \n1,false,human\n2,true,bot now\n5000,true,x\n2,true,bot now\nbad,true,x\n",
    );
    let run = on_sim(
        &sim,
        &work,
        &["plan", "in.csv", "--report", "p.csv", "--skip-invalid"],
    );
    assert_eq!(run.code, 1, "not_found and invalid rows: {}", run.stderr);
    assert_eq!(sim.stats.puts.load(Ordering::Relaxed), 0);
    let rows = read_report(&work.path("p.csv"));
    assert_eq!(
        outcomes(&rows),
        vec![
            (2, "unchanged".into()),
            (3, "unchanged".into()),
            (4, "would_update".into()),
            (5, "not_found".into()),
            (6, "duplicate".into()),
            (7, "invalid".into()),
        ]
    );
    assert_eq!(line(&rows, 4)["username"], "alice.nguyen");
    assert!(
        run.stdout.contains("Would update 1 of 6 rows"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("id 2  alice.nguyen [GCP gcp-main #2]: not a service account → service account (\"bot now\")"),
        "{}",
        run.stdout
    );
}

#[test]
fn reconcile_skips_rows_in_the_desired_state_and_fails_unknown_ids_without_a_put() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write(
        "in.csv",
        "id,flag,reason\n7,true,Seeded: automation account\n14,true,a new reason\n1,false,human\n3,true,bot\n5000,false,gone\n",
    );
    let run = on_sim(
        &sim,
        &work,
        &["apply", "in.csv", "--reconcile", "--report", "r.csv"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let rows = read_report(&work.path("r.csv"));
    assert_eq!(
        outcomes(&rows),
        vec![
            (2, "unchanged".into()),
            (3, "updated".into()),
            (4, "unchanged".into()),
            (5, "updated".into()),
            (6, "failed".into()),
        ]
    );
    assert_eq!(line(&rows, 2)["attempts"], "0");
    assert_eq!(line(&rows, 6)["error"], "not found in Drata");
    assert_eq!(line(&rows, 6)["attempts"], "0");
    let mut applied: Vec<u64> = sim.applied().into_keys().collect();
    applied.sort();
    assert_eq!(applied, vec![3, 14], "only the rows that differ were sent");
}

#[test]
fn max_changes_refuses_before_the_first_put() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("in.csv", &rows_csv(1, 10));
    let run = on_sim(
        &sim,
        &work,
        &[
            "apply",
            "in.csv",
            "--reconcile",
            "--max-changes",
            "5",
            "--report",
            "r.csv",
        ],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("10 rows would be updated, more than --max-changes 5"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.stats.puts.load(Ordering::Relaxed), 0);
    let rows = read_report(&work.path("r.csv"));
    assert_eq!(rows.len(), 10);
    // Id 7 is already a service account, but with another reason: it would change too.
    assert!(rows.iter().all(|r| r["outcome"] == "not_attempted"));

    let run = on_sim(
        &sim,
        &work,
        &[
            "apply",
            "in.csv",
            "--reconcile",
            "--max-changes",
            "10",
            "--report",
            "r2.csv",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(sim.stats.puts.load(Ordering::Relaxed), 10);
}

#[test]
fn undo_restores_the_previous_state() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write(
        "in.csv",
        "id,flag,reason\n7,false,not a bot after all\n1,true,=now a bot\n2,false,unchanged human\n",
    );
    let run = on_sim(
        &sim,
        &work,
        &[
            "apply",
            "in.csv",
            "--reconcile",
            "--undo",
            "undo.csv",
            "--report",
            "r.csv",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut undo = csv::Reader::from_path(work.path("undo.csv")).unwrap();
    assert_eq!(
        undo.headers().unwrap(),
        vec!["id", "serviceAccount", "serviceAccountReason"]
    );
    let mut undo_rows: Vec<Vec<String>> = undo
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    undo_rows.sort();
    assert_eq!(undo_rows.len(), 2, "only updated rows: {undo_rows:?}");
    assert_eq!(undo_rows[0][0..2], ["1".to_owned(), "false".to_owned()]);
    assert!(undo_rows[0][2].contains("not a service account before"));
    assert_eq!(undo_rows[1], ["7", "true", "Seeded: automation account"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(work.path("undo.csv"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let rollback = on_sim(
        &sim,
        &work,
        &["apply", "undo.csv", "--reconcile", "--report", "u.csv"],
    );
    assert_eq!(rollback.code, 0, "{}", rollback.stderr);
    // Id 7 is a service account with its old reason again, id 1 is not one any more.
    let check = work.write(
        "check.csv",
        "id,flag,reason\n7,true,Seeded: automation account\n1,false,x\n",
    );
    let _ = check;
    let plan = on_sim(&sim, &work, &["plan", "check.csv", "--report", "c.csv"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(read_report(&work.path("c.csv"))
        .iter()
        .all(|r| r["outcome"] == "unchanged"));
}

#[test]
fn undo_requires_reconcile() {
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let run = drata(
        work.dir.path(),
        &["apply", "in.csv", "--simulate", "--undo", "u.csv"],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--reconcile"), "{}", run.stderr);
}

#[test]
fn rows_can_name_identities_by_username_or_email() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    // Person 0 (alice.nguyen) has ids 1, 2, 3 on AWS, GCP and Azure; person 1 is bruno.nguyen.
    work.write(
        "in.csv",
        "username,email,connection,serviceAccount,reason\n\
         alice.nguyen,,GCP,true,gcp bot\n\
         ,BRUNO.NGUYEN@example.com,aws-prod,false,human\n\
         alice.nguyen,,,true,ambiguous\n\
         nobody,,,true,unknown\n",
    );
    let run = on_sim(
        &sim,
        &work,
        &["apply", "in.csv", "--report", "r.csv", "--skip-invalid"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let rows = read_report(&work.path("r.csv"));
    assert_eq!(
        line(&rows, 2)["id"],
        "2",
        "the report shows the resolved id"
    );
    assert_eq!(line(&rows, 2)["outcome"], "updated");
    assert_eq!(line(&rows, 3)["id"], "4");
    assert_eq!(line(&rows, 3)["outcome"], "updated");
    let ambiguous = line(&rows, 4);
    assert_eq!(ambiguous["outcome"], "invalid");
    assert!(
        ambiguous["error"]
            .contains("1 (AWS aws-prod #1), 2 (GCP gcp-main #2), 3 (AZURE azure-corp #3)"),
        "{}",
        ambiguous["error"]
    );
    let unknown = line(&rows, 5);
    assert_eq!(unknown["outcome"], "invalid");
    assert!(
        unknown["error"].contains("username \"nobody\""),
        "{}",
        unknown["error"]
    );
    let mut applied: Vec<u64> = sim.applied().into_keys().collect();
    applied.sort();
    assert_eq!(applied, vec![2, 4]);

    // validate needs no network: such rows are checked for shape only.
    let run = drata(work.dir.path(), &["validate", "in.csv"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

// ---- Operator experience (issue 7) --------------------------------------------------

#[test]
fn summary_json_schema_field_by_field() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n2,true,b\n");
    let run = on_sim(
        &sim,
        &work,
        &[
            "apply",
            "in.csv",
            "--summary-json",
            "s.json",
            "--report",
            "r.csv",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path("s.json")).unwrap()).unwrap();
    let object = summary.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "base_url",
            "command",
            "counts",
            "effective_rate_per_minute",
            "elapsed_seconds",
            "exit_code",
            "finished_at",
            "input",
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
            "version",
        ]
    );
    assert_eq!(summary["tool"], "drata-svcacct");
    assert_eq!(summary["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(summary["run_id"].as_str().unwrap().len(), 16);
    assert_eq!(summary["command"], "apply");
    assert_eq!(summary["input"]["path"], "in.csv");
    let input_bytes = std::fs::read(work.path("in.csv")).unwrap();
    assert_eq!(
        summary["input"]["sha256"],
        drata_svcacct::summary::sha256_reader(&mut input_bytes.as_slice()).unwrap()
    );
    assert_eq!(summary["report"]["path"], "r.csv");
    assert_eq!(
        summary["report"]["sha256"],
        drata_svcacct::summary::sha256_file(&work.path("r.csv")).unwrap(),
        "the digest is of the finished report"
    );
    assert_eq!(summary["base_url"], format!("{}/", sim.base_url()));
    for stamp in ["started_at", "finished_at"] {
        assert!(summary[stamp].as_str().unwrap().ends_with('Z'), "{stamp}");
    }
    assert!(summary["elapsed_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["rows"], 2);
    let counts = summary["counts"].as_object().unwrap();
    assert_eq!(counts.len(), 9, "every outcome, zeros included");
    assert_eq!(counts["updated"], 2);
    assert_eq!(counts["failed"], 0);
    assert_eq!(summary["requests"], 2);
    assert_eq!(summary["retries"], 0);
    assert_eq!(summary["rate_limited"], 0);
    assert!(summary["effective_rate_per_minute"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["stopped"], serde_json::Value::Null);
    assert_eq!(summary["resume_command"], serde_json::Value::Null);
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
    let run = drata(
        work.dir.path(),
        &[
            "apply",
            "in.csv",
            "--reconcile",
            "--evidence",
            "e.md",
            "--report",
            "r.csv",
            "--base-url",
            &sim.base_url(),
            "--rate",
            "unlimited",
        ],
        &[("DRATA_API_KEY", SIM_TOKEN), ("USER", "auditor-alice")],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let evidence = std::fs::read_to_string(work.path("e.md")).unwrap();
    for section in [
        "# Drata service-account changes: apply run ",
        "## Counts",
        "## Identities changed",
    ] {
        assert!(evidence.contains(section), "missing {section}:\n{evidence}");
    }
    assert!(
        evidence.contains("| Ran by | auditor-alice on "),
        "{evidence}"
    );
    assert!(evidence.contains(&format!(
        "| Tool | drata-svcacct {} |",
        env!("CARGO_PKG_VERSION")
    )));
    let report_digest = drata_svcacct::summary::sha256_file(&work.path("r.csv")).unwrap();
    assert!(evidence.contains(&report_digest), "report SHA-256");
    assert!(evidence.contains("| unchanged | 1 |") && evidence.contains("| updated | 1 |"));
    assert!(
        evidence.contains("| 1 | alice.nguyen | alice.nguyen@example.com | not a service account | service account | CI \\| deploy |"),
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
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n2,false,b\n");
    let run = on_sim(
        &sim,
        &work,
        &[
            "apply",
            "in.csv",
            "--log-format",
            "json",
            "--report",
            "r.csv",
        ],
    );
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
        assert!(row["line"].is_u64() && row["id"].is_string());
    }
}

#[test]
fn completions_and_man_page() {
    let work = Workdir::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let run = drata(work.dir.path(), &["completions", shell], &[]);
        assert_eq!(run.code, 0, "{shell}");
        assert!(run.stdout.contains("drata-svcacct"), "{shell}");
        assert!(
            run.stdout.contains("reconcile"),
            "{shell}: options are completed"
        );
    }
    let man = drata(work.dir.path(), &["man"], &[]);
    assert_eq!(man.code, 0);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH"),
        "{}",
        &man.stdout[..100]
    );
    let help = drata(work.dir.path(), &["apply", "--help"], &[]);
    for use_case in [
        "Quarterly access review",
        "One-off migration",
        "Nightly cron job",
    ] {
        assert!(help.stdout.contains(use_case), "{use_case}");
    }
}

#[test]
fn version_control_identities_use_their_own_paths() {
    let server = TestServer::start(|seen, _| {
        if seen.method == "GET" {
            Reply::json(
                200,
                r#"{"data":[{"id":3,"username":"octocat","serviceAccount":null}],"page":1,"limit":50,"total":1}"#,
            )
        } else {
            Reply::identity(seen.id().unwrap())
        }
    });
    let (run, rows, _w) = apply_on_server(
        &server,
        "username,flag,reason\noctocat,true,GitHub Actions bot\n",
        &["--kind", "version-control", "--reconcile"],
    );
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
        ]
    );

    // The simulator serves both kinds, each with its own state.
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,bot\n");
    let run = on_sim(
        &sim,
        &work,
        &[
            "apply",
            "in.csv",
            "--kind",
            "version-control",
            "--report",
            "r.csv",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        sim.applied().is_empty(),
        "infrastructure identity 1 untouched"
    );
    let plan = on_sim(
        &sim,
        &work,
        &[
            "plan",
            "in.csv",
            "--kind",
            "version-control",
            "--report",
            "p.csv",
        ],
    );
    assert_eq!(plan.code, 0);
    assert_eq!(read_report(&work.path("p.csv"))[0]["outcome"], "unchanged");
}

// ---- Security hardening (issue 5) ---------------------------------------------------

#[test]
fn the_key_leaks_nowhere_on_any_path_at_any_verbosity() {
    const KEY: &str = "sk-CANARY-91b2e7d4";
    // Success, 404, 500 then success, 429, a timeout, then a 401 that aborts the run.
    let server = TestServer::start(|seen, _| match (seen.method.as_str(), seen.id()) {
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
        let key_file = work.write("key", &format!("{KEY}\n"));
        let run = drata(
            work.dir.path(),
            &[
                "apply",
                "in.csv",
                "--base-url",
                &server.url,
                "--token-file",
                key_file.to_str().unwrap(),
                "--reconcile",
                "--undo",
                "undo.csv",
                "--evidence",
                "e.md",
                "--summary-json",
                "s.json",
                "--report",
                "r.csv",
                "--timeout",
                "0.5",
                "--max-attempts",
                "2",
                "--retry-base-ms",
                "1",
                "--concurrency",
                "1",
                "--rate",
                "unlimited",
                "-vv",
                "--log-format",
                format,
            ],
            &[],
        );
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

#[cfg(unix)]
#[test]
fn a_token_file_readable_by_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap()));
    let work = Workdir::new();
    let key = work.write("key", "k1\n");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (run, _rows, _w) = apply_on_server(
        &server,
        "id,flag,reason\n1,true,a\n",
        &["--token-file", key.to_str().unwrap()],
    );
    assert_eq!(run.code, 0);
    assert!(
        run.stderr.contains("readable by others (mode 644)"),
        "{}",
        run.stderr
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (run, _rows, _w) = apply_on_server(
        &server,
        "id,flag,reason\n1,true,a\n",
        &["--token-file", key.to_str().unwrap()],
    );
    assert!(!run.stderr.contains("readable by others"), "{}", run.stderr);
}

#[cfg(unix)]
#[test]
fn output_files_never_follow_a_symlink() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let target = work.write("precious.txt", "do not touch\n");
    std::os::unix::fs::symlink(&target, work.path("r.csv")).unwrap();
    let run = on_sim(&sim, &work, &["apply", "in.csv", "--report", "r.csv"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = on_sim(
        &sim,
        &work,
        &["apply", "in.csv", "--report", "r.csv", "--force"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "do not touch\n");
    assert!(!std::fs::symlink_metadata(work.path("r.csv"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(read_report(&work.path("r.csv")).len(), 1);
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
    let (run, rows, _w) = apply_on_server(&server, "id,flag,reason\n1,true,a\n", &[]);
    assert_eq!(run.code, 1);
    assert_eq!(line(&rows, 2)["http_status"], "307");
    assert!(elsewhere.seen().is_empty(), "the redirect was not followed");
}

#[test]
fn a_100_megabyte_class_field_is_an_invalid_row_not_an_allocation() {
    let work = Workdir::new();
    let mut data = b"id,flag,reason\n1,true,ok\n2,true,".to_vec();
    data.extend(std::iter::repeat_n(
        b'x',
        8 * drata_svcacct::input::MAX_RECORD_BYTES,
    ));
    data.extend(b"\n3,false,fine\n");
    std::fs::write(work.path("big.csv"), &data).unwrap();
    let run = drata(work.dir.path(), &["validate", "big.csv"], &[]);
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
fn progress_is_logged_off_a_terminal_and_silenced_by_quiet() {
    let server = TestServer::start(|seen, _| {
        Reply::identity(seen.id().unwrap()).after(Duration::from_millis(30))
    });
    let csv = rows_csv(1, 20);
    let (run, _rows, _w) = apply_on_server(
        &server,
        &csv,
        &[
            "--concurrency",
            "1",
            "--rate",
            "unlimited",
            "--progress-interval",
            "0.05",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("progress done="), "{}", run.stderr);
    assert!(
        run.stderr.contains("apply finished: 20 rows"),
        "{}",
        run.stderr
    );
    let (run, _rows, _w) = apply_on_server(
        &server,
        &csv,
        &[
            "--concurrency",
            "1",
            "--rate",
            "unlimited",
            "--progress-interval",
            "0.05",
            "-q",
        ],
    );
    assert_eq!(run.code, 0);
    assert_eq!(run.stderr, "", "quiet and successful: nothing at all");
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
        let run = drata(
            work.dir.path(),
            &[
                "apply",
                "in.csv",
                "--base-url",
                &base,
                "--report",
                "r.csv",
                "--force",
            ],
            &[("DRATA_API_KEY", "sim-token")],
        );
        assert_eq!(run.code, 0, "{base}: {}", run.stderr);
    }
    let run = drata(
        work.dir.path(),
        &[
            "apply",
            "in.csv",
            "--base-url",
            &format!("http://{listen}/public"),
            "--report",
            "r2.csv",
        ],
        &[("DRATA_API_KEY", "wrong")],
    );
    assert_eq!(run.code, 3, "a wrong token is a 401");
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[cfg(unix)]
#[test]
fn signals_are_heard_while_standard_input_never_ends() {
    let work = Workdir::new();
    let mut child = command(work.dir.path(), &["apply", "-", "--simulate", "-v"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _stdin_kept_open = child.stdin.take();
    // A bound, not a wait: if signals go unheard, the child is killed and the test fails.
    let pid = child.id() as i32;
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog_done = std::sync::Arc::clone(&finished);
    std::thread::spawn(move || {
        for _ in 0..600 {
            if watchdog_done.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: kill(2) has no memory-safety preconditions; the child is not reaped yet.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut wait_for = |text: &str, seen: &mut String| {
        let mut buffer = [0u8; 1024];
        while !seen.contains(text) {
            let n = std::io::Read::read(&mut stderr, &mut buffer).unwrap();
            assert!(n > 0, "exited before {text:?}: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    };
    wait_for("reading the input", &mut seen);
    signal(&child, libc::SIGTERM);
    wait_for("interrupted", &mut seen);
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    finished.store(true, Ordering::SeqCst);
    assert_eq!(status.code(), Some(130));
}
