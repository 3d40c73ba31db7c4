//! Interruption and resume: signals, rows in flight, the printed resume command, and resuming
//! from a report cut short or left by a killed run.

use std::sync::atomic::Ordering;
#[cfg(unix)] // the signal tests' delays
use std::time::Duration;

use crate::support::*;

#[cfg(unix)]
#[test]
fn interrupt_finishes_requests_in_flight_and_reports_the_rest_not_attempted() {
    stop_finishes_requests_in_flight(libc::SIGINT, 130);
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_same_way_and_exits_143() {
    stop_finishes_requests_in_flight(libc::SIGTERM, 143);
}

#[cfg(unix)]
fn stop_finishes_requests_in_flight(sent: i32, code: i32) {
    let server = TestServer::start(|seen, _| {
        Reply::identity(seen.id().unwrap()).after(Duration::from_millis(300))
    });
    let started = Apply::on(&server)
        .input(rows_csv(1, 20))
        .args(["--rate", "unlimited", "--concurrency", "2"])
        .spawn();
    wait_until(Duration::from_secs(20), "two requests", || {
        server.seen().len() >= 2
    });
    signal(&started.child, sent);
    let Finished { run, rows, .. } = started.finish();
    assert_eq!(run.code, code, "{}", run.stderr);
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
    let run = Apply::on(&server)
        .input(rows_csv(1, 3))
        .args(["--concurrency", "1"])
        .no_report()
        .spawn();
    wait_until(Duration::from_secs(20), "a request", || {
        !server.seen().is_empty()
    });
    signal(&run.child, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(100));
    let started = std::time::Instant::now();
    signal(&run.child, libc::SIGINT);
    let run = run.finish();
    assert_eq!(run.code, 130);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "did not wait for the 60 s answer"
    );
}

#[cfg(unix)]
#[test]
fn signals_are_heard_while_standard_input_never_ends() {
    let started = Apply::offline()
        .file("-")
        .args(["--simulate", "-v"])
        .no_report()
        .spawn_with(|command| {
            command.stdin(std::process::Stdio::piped());
        });
    let mut child = started.child;
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
    assert_eq!(status.code(), Some(143), "the second signal's code");
}

/// A file an option names may be a FIFO whose writer never comes (`--token-file
/// <(pass show drata)` gone wrong): the first SIGINT ends the run at once with 130, naming
/// the file, where before only SIGKILL did. Each case is bounded: a run that does not exit
/// within 20 s of the signal is killed and the test fails.
#[cfg(unix)]
#[test]
fn sigint_ends_a_run_waiting_on_a_fifo_an_option_names() {
    let cases = [
        ("--token-file", "the token file"),
        ("--rules", "the rules file"),
        ("--resume-from", "the report of --resume-from"),
    ];
    for (option, what) in cases {
        let work = Workdir::new();
        let fifo = std::ffi::CString::new(work.path("never.fifo").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) reads a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo");
        let apply = Apply::on("http://127.0.0.1:9/public")
            .within(&work)
            .input(rows_csv(1, 2))
            .args([option, "never.fifo", "-v"]);
        let apply = if option == "--token-file" {
            apply.no_key()
        } else {
            apply
        };
        let mut child = apply.spawn().child;
        let stderr = read_in_background(child.stderr.take().unwrap());
        let marker = format!("reading {what} file=never.fifo");
        wait_until(Duration::from_secs(30), &marker, || {
            stderr.lock().unwrap().contains(&marker)
        });
        signal(&child, libc::SIGINT);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("{option}: still waiting 20 s after SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let expected = format!("interrupted while reading {what} never.fifo: nothing was sent");
        // The last of standard error arrives with the pipe's end, after the exit.
        wait_until(Duration::from_secs(10), &expected, || {
            stderr.lock().unwrap().contains(&expected)
        });
        assert_eq!(
            status.code(),
            Some(130),
            "{option}: {}",
            stderr.lock().unwrap()
        );
    }
}

/// A report that never ends is refused at its first line's cap, not read whole: before,
/// `--resume-from /dev/zero` filled memory with one endless record.
#[cfg(unix)]
#[test]
fn a_report_that_never_ends_is_refused_at_the_line_cap() {
    let Finished { run, .. } = Apply::on("http://127.0.0.1:9/public")
        .input(rows_csv(1, 2))
        .args(["--resume-from", "/dev/zero"])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("/dev/zero is not a drata-svcacct report: a line is longer than 1 MiB"),
        "{}",
        run.stderr
    );
}

/// Everything `stream` yields, as it comes, read by a thread of its own.
#[cfg(unix)]
fn read_in_background(
    mut stream: impl std::io::Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<String>> {
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let filled = std::sync::Arc::clone(&text);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut buffer) {
            filled
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    text
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
fn sends_only_what_is_left_using_the_printed_command() {
    let fail_id_2 = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let switch = std::sync::Arc::clone(&fail_id_2);
    let server = TestServer::start(move |seen, _| match seen.id() {
        Some(2) if switch.load(Ordering::SeqCst) => Reply::json(503, r#"{"message":"try later"}"#),
        id => Reply::identity(id.unwrap()),
    });
    let work = Workdir::new();
    let first = Apply::on(&server)
        .within(&work)
        .input("id,flag,reason\n1,true,a\n2,true,b\n3,false,c\n3,false,c\n")
        .args(["--report", "first.csv", "--max-attempts", "1"])
        .run();
    assert_eq!(first.code, 1, "{}", first.stderr);
    let command = printed_resume_command(&first.stderr);
    assert!(command.contains(&"--resume-from".to_owned()));
    assert!(
        command.contains(&"--report=first.resumed.csv".to_owned()),
        "a new report, named as the user named the first: {command:?}"
    );

    fail_id_2.store(false, Ordering::SeqCst);
    let before = server.seen().len();
    let second = Invocation::new(&command[1..], None)
        .within(&work)
        .key(TEST_KEY)
        .run();
    assert_eq!(second.code, 0, "{}", second.stderr);
    let new_requests: Vec<_> = server.seen()[before..]
        .iter()
        .filter_map(Seen::id)
        .collect();
    assert_eq!(new_requests, vec![2], "only the failed row is sent again");
    let report = work.path("first.resumed.csv");
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
fn the_resume_command_carries_a_base_url_given_through_the_environment() {
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let switch = std::sync::Arc::clone(&fail);
    let server = TestServer::start(move |seen, _| match seen.id() {
        Some(2) if switch.load(Ordering::SeqCst) => Reply::json(503, "{}"),
        id => Reply::identity(id.unwrap()),
    });
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n2,true,b\n");
    let first = Apply::offline()
        .within(&work)
        .file("in.csv")
        .args(["--max-attempts", "1"])
        .no_report()
        .env("DRATA_API_KEY", "k")
        .env("DRATA_BASE_URL", server.url.as_str())
        .run();
    assert_eq!(first.code, 1, "{}", first.stderr);
    let command = printed_resume_command(&first.stderr);
    assert!(
        command.contains(&format!("--base-url={}", server.url)),
        "{command:?}"
    );
    fail.store(false, Ordering::SeqCst);
    // Without DRATA_BASE_URL, as from another shell: the command alone reaches the server.
    let words: Vec<&str> = command.iter().skip(1).map(String::as_str).collect();
    let second = Invocation::new(&words, None)
        .within(&work)
        .env("DRATA_API_KEY", "k")
        .run();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(server.seen().last().and_then(Seen::id), Some(2));
}

#[test]
fn the_resume_command_works_with_a_summary_file() {
    let server = TestServer::start(|seen, index| match index {
        0 => Reply::json(500, "{}"),
        _ => Reply::identity(seen.id().unwrap()),
    });
    let work = Workdir::new();
    let first = Apply::on(&server)
        .within(&work)
        .input("id,flag,reason\n1,true,a\n")
        .args(["--summary-json", "s.json", "--max-attempts", "1"])
        .no_report()
        .run();
    assert_eq!(first.code, 1, "{}", first.stderr);
    let command = printed_resume_command(&first.stderr);
    assert!(
        command.contains(&"--summary-json=s.resumed.json".to_owned()),
        "{command:?}"
    );
    let second = Invocation::new(&command[1..], None)
        .within(&work)
        .key(TEST_KEY)
        .run();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        work.path("s.resumed.json").exists(),
        "the resumed run has its own summary"
    );
}

#[test]
fn tolerates_a_report_cut_short_and_matches_line_id_flag_and_reason() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap()));
    let work = Workdir::new();
    let api = format!("{}/", server.url);
    let old = work.write(
        "old.csv",
        &format!(
            "line,id,service_account,reason,outcome,http_status,attempts,error,username,email,service_account_at,finished_at,previous_service_account,previous_reason,kind,api\n\
             2,1,true,a,updated,200,1,,u,e,t,2026-11-29T00:00:00Z,,,infrastructure,{api}\n\
             3,2,false,b,updated,200,1,,u,e,t,2026-11-29T00:00:00Z,,,infrastructure,{api}\n\
             4,3,true,c,failed,500,5,boom,,,,2026-11-29T00:00:00Z,,,infrastructure,{api}\n\
             5,4,true,'-d,unchanged,,0,,,,,2026-11-29T00:00:00Z,,,infrastructure,{api}\n\
             6,5,true,old reason,updated,200,1,,u,e,t,2026-11-29T00:00:00Z,,,infrastructure,{api}\n\
             7,6,true,\"cut sho"
        ),
    );
    let Finished { run, rows, .. } = Apply::on(&server)
        .input("id,flag,reason\n1,true,a\n2,true,b\n3,true,c\n4,true,-d\n5,true,new reason\n6,true,f\n")
        .args(["--resume-from", old.to_str().unwrap()])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        outcomes(&rows),
        vec![
            (2, "skipped".into()),
            (3, "updated".into()),
            (4, "updated".into()),
            (5, "skipped".into()),
            (6, "updated".into()),
            (7, "updated".into()),
        ],
        "line 3 wanted false before and true now; line 4 failed; line 6's reason changed; line 7 was cut"
    );
    let mut sent: Vec<u64> = server.seen().iter().filter_map(Seen::id).collect();
    sent.sort();
    assert_eq!(sent, vec![2, 3, 5, 6]);
}

#[test]
fn rows_whose_reason_was_fixed_after_the_run_are_sent_again() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    let first = Apply::on(&sim)
        .within(&work)
        .input("id,flag,reason\n1,true,typo\n2,true,ok\n3,true,typo\n")
        .report("first.csv")
        .run();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let second = Apply::on(&sim)
        .within(&work)
        .input("id,flag,reason\n1,true,fixed\n2,true,ok\n3,true,fixed\n")
        .args(["--resume-from", "first.csv"])
        .report("second.csv")
        .run();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(
        outcomes(&second.rows),
        vec![
            (2, "updated".into()),
            (3, "skipped".into()),
            (4, "updated".into())
        ]
    );
    assert_eq!(
        sim.applied().get(&1),
        Some(&2),
        "the fixed reason reached Drata"
    );
    assert_eq!(
        sim.applied().get(&2),
        Some(&1),
        "the unchanged row was not resent"
    );
}

#[test]
fn rows_done_for_another_identity_kind_or_api_are_not_skipped() {
    let sim = simulator(|_| {});
    let other = simulator(|_| {});
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n2,true,b\n");
    let first = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--report", "first.csv"])
        .run();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let kind = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--kind", "version-control", "--resume-from", "first.csv"])
        .args(["--report", "kind.csv"])
        .run();
    assert_eq!(kind.code, 0, "{}", kind.stderr);
    let mut updated = ids_with(&read_report(&work.path("kind.csv")), "updated");
    updated.sort();
    assert_eq!(updated, vec![1, 2]);
    let api = Apply::on(&other)
        .within(&work)
        .file("in.csv")
        .args(["--resume-from", "first.csv", "--report", "api.csv"])
        .run();
    assert_eq!(api.code, 0, "{}", api.stderr);
    let mut updated = ids_with(&read_report(&work.path("api.csv")), "updated");
    updated.sort();
    assert_eq!(updated, vec![1, 2]);
    assert_eq!(other.applied().len(), 2, "the other tenant got both rows");
}

#[test]
fn a_report_that_cannot_tell_its_target_is_refused() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap()));
    let work = Workdir::new();
    let old = work.write(
        "old.csv",
        "line,id,service_account,reason,outcome,http_status,attempts,error,username,email,service_account_at,finished_at\n\
         2,1,true,a,updated,200,1,,u,e,t,2026-11-29T00:00:00Z\n",
    );
    let Finished { run, .. } = Apply::on(&server)
        .input("id,flag,reason\n1,true,a\n")
        .args(["--resume-from", old.to_str().unwrap()])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("older drata-svcacct"), "{}", run.stderr);
    assert!(server.seen().is_empty(), "nothing was sent");
}

#[cfg(unix)]
#[test]
fn a_killed_run_resumes_to_a_complete_report_without_resending_updated_rows() {
    let sim = simulator(|c| c.latency = Duration::from_millis(10));
    let work = Workdir::new();
    let first_report = work.path("first.csv");
    let mut first = Apply::on(&sim)
        .within(&work)
        .input(rows_csv(1, 60))
        .args(["--rate", "40/s"])
        .report("first.csv")
        .spawn();
    wait_until(Duration::from_secs(30), "15 reported rows", || {
        report_rows_so_far(&first_report) >= 15
    });
    first.child.kill().unwrap(); // SIGKILL
    let killed = first.finish();
    assert_ne!(killed.code, 0);
    let first_rows = read_report(&first_report);
    assert!(
        first_rows.len() >= 15 && first_rows.len() < 60,
        "{}",
        first_rows.len()
    );
    let updated_first = ids_with(&first_rows, "updated");

    let resumed = Apply::on(&sim)
        .within(&work)
        .file("input.csv")
        .args(["--resume-from", "first.csv"])
        .report("second.csv")
        .run();
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let rows = resumed.rows.clone();
    assert_eq!(rows.len(), 60, "the resumed report is complete");
    let mut skipped = ids_with(&rows, "skipped");
    skipped.sort();
    let mut expected = updated_first.clone();
    expected.sort();
    assert_eq!(skipped, expected);
    // A row the killed run sent but had not reported yet is found held: `unchanged`.
    let held_already = ids_with(&rows, "unchanged");
    assert_eq!(
        ids_with(&rows, "updated").len() + held_already.len(),
        60 - expected.len()
    );
    let applied = sim.applied();
    for id in updated_first.iter().chain(&held_already) {
        assert_eq!(
            applied.get(id),
            Some(&1),
            "id {id} was applied by the killed run, then sent again"
        );
    }
    assert!(
        (1..=60).all(|id| applied.contains_key(&id)),
        "every row applied"
    );
}

#[cfg(unix)]
#[test]
fn a_second_run_on_an_input_being_applied_is_refused_and_sends_nothing() {
    let sim = simulator(|c| c.latency = Duration::from_millis(50));
    let work = Workdir::new();
    let first = Apply::on(&sim)
        .within(&work)
        .input(rows_csv(1, 20))
        .args(["--rate", "20/s"])
        .report("first.csv")
        .spawn();
    wait_until(Duration::from_secs(30), "the first run under way", || {
        report_rows_so_far(&work.path("first.csv")) >= 2
    });
    let second = Apply::on(&sim)
        .within(&work)
        .file("input.csv")
        .report("second.csv")
        .run();
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second.stderr.contains("another drata-svcacct run"),
        "{}",
        second.stderr
    );
    assert!(
        !work.path("second.csv").exists(),
        "refused before any output"
    );
    let first = first.finish();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(
        sim.stats.puts.load(Ordering::Relaxed),
        20,
        "every row sent once, by the first run only"
    );
    let again = Plan::on(&sim)
        .within(&work)
        .file("input.csv")
        .report("plan.csv")
        .run();
    assert_eq!(
        again.code, 0,
        "the lock ends with its run: {}",
        again.stderr
    );
}

#[test]
fn the_resume_command_is_printed_only_when_it_can_finish_something() {
    let server = TestServer::start(|seen, _| match seen.id() {
        Some(2) => Reply::json(404, r#"{"message":"Not Found"}"#),
        id => Reply::identity(id.unwrap_or(1)),
    });
    let Finished { run, .. } = Apply::on(&server)
        .input("id,flag,reason\n1,true,a\n2,true,b\n")
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        !run.stderr.contains("--resume-from"),
        "a 404 fails for good: resending cannot help\n{}",
        run.stderr
    );
    let sim = simulator(|_| {});
    let refused = Apply::on(&sim)
        .input(rows_csv(1, 10))
        .args(["--reconcile", "--max-changes", "5", "--report", "r.csv"])
        .run();
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        !refused.stderr.contains("--resume-from"),
        "the same command would be refused again\n{}",
        refused.stderr
    );
}

/// A tiny stateful stand-in: ids 1..=3, unmarked at first; PUTs change the state, and
/// id 3 answers 503 while `fail` holds.
fn stateful_server(fail: std::sync::Arc<std::sync::atomic::AtomicBool>) -> TestServer {
    let state = std::sync::Mutex::new(std::collections::HashMap::<u64, (bool, String)>::new());
    TestServer::scripted(move |seen, _| {
        let mut state = state.lock().unwrap();
        if seen.method == "GET" {
            let items: Vec<String> = (1..=3u64)
                .map(|id| match state.get(&id) {
                    Some((true, reason)) => format!(
                        r#"{{"id":{id},"serviceAccount":"2026-11-29T00:00:00Z","serviceAccountReason":{reason:?}}}"#
                    ),
                    _ => format!(r#"{{"id":{id},"serviceAccount":null}}"#),
                })
                .collect();
            return Reply::json(
                200,
                &format!(r#"{{"data":[{}],"total":3}}"#, items.join(",")),
            );
        }
        let id = seen.id().unwrap();
        if id == 3 && fail.load(Ordering::SeqCst) {
            return Reply::json(503, "{}");
        }
        let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
        let flag = body["serviceAccount"].as_bool().unwrap();
        let reason = body["serviceAccountReason"].as_str().unwrap().to_owned();
        state.insert(id, (flag, reason));
        Reply::identity(id)
    })
}

#[test]
fn a_printed_resume_command_runs_twice_and_one_undo_file_rolls_everything_back() {
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let server = stateful_server(std::sync::Arc::clone(&fail));
    let work = Workdir::new();
    let first = Apply::on(&server)
        .within(&work)
        .input("id,flag,reason\n1,true,a\n2,true,b\n3,true,c\n")
        .args(["--reconcile", "--undo", "undo.csv", "--report", "r.csv"])
        .args(["--max-attempts", "1"])
        .run();
    assert_eq!(first.code, 1, "{}", first.stderr);
    let command = printed_resume_command(&first.stderr);
    assert!(
        command.contains(&"--undo=undo.csv".to_owned()),
        "{command:?}"
    );
    fail.store(false, Ordering::SeqCst);
    for attempt in 1..=2 {
        let again = Invocation::new(&command[1..], None)
            .within(&work)
            .key(TEST_KEY)
            .run();
        assert_eq!(again.code, 0, "run {attempt}: {}", again.stderr);
    }
    assert!(work.path("r.resumed.csv").exists() && work.path("r.resumed-2.csv").exists());
    let undo = std::fs::read_to_string(work.path("undo.csv")).unwrap();
    assert_eq!(
        undo.lines().count(),
        4,
        "one header, ids 1, 2 and 3: {undo}"
    );
    // One command rolls every part back.
    let rollback = Apply::on(&server)
        .within(&work)
        .file("undo.csv")
        .args(["--reconcile", "--report", "rollback.csv"])
        .run();
    assert_eq!(rollback.code, 0, "{}", rollback.stderr);
    assert_eq!(ids_with(&rollback.rows, "updated").len(), 3);
}

#[test]
fn a_resumed_run_never_renames_a_file_the_user_named_and_its_undo_file_stays_consistent() {
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = stateful_server(std::sync::Arc::clone(&fail));
    let work = Workdir::new();
    work.write("in.csv", "id,flag,reason\n1,true,a\n2,true,b\n");
    let first = Apply::on(&server)
        .within(&work)
        .file("in.csv")
        .args(["--reconcile", "--undo", "undo.csv", "--report", "r.csv"])
        .run();
    assert_eq!(first.code, 0, "{}", first.stderr);
    // The reason of line 3 is fixed, and the run resumed: id 2 is sent again.
    work.write("in.csv", "id,flag,reason\n1,true,a\n2,true,b fixed\n");
    work.write("taken.json", "mine\n");
    let named = Apply::on(&server)
        .within(&work)
        .file("in.csv")
        .args(["--reconcile", "--undo", "undo.csv", "--report", "r2.csv"])
        .args(["--resume-from", "r.csv", "--summary-json", "taken.json"])
        .run();
    assert_eq!(
        named.code, 2,
        "a name the user chose is never changed: {}",
        named.stderr
    );
    let resumed = Apply::on(&server)
        .within(&work)
        .file("in.csv")
        .args(["--reconcile", "--undo", "undo.csv", "--report", "r2.csv"])
        .args(["--resume-from", "r.csv"])
        .run();
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let undo = std::fs::read_to_string(work.path("undo.csv")).unwrap();
    assert_eq!(
        undo.lines().count(),
        3,
        "id 2 once, as it was before everything: {undo}"
    );
    let rollback = Apply::on(&server)
        .within(&work)
        .file("undo.csv")
        .args(["--reconcile", "--report", "back.csv"])
        .run();
    assert_eq!(
        rollback.code, 0,
        "the one rollback runs: {}",
        rollback.stderr
    );
}

/// A nightly run with rules and an input row, stopped part way by `--max-failures`, then
/// finished with the printed command: every identity ends with one outcome, none is sent
/// twice, and the rows the rules decided (no line in the report) are matched by id.
#[test]
fn a_nightly_run_with_rules_resumes_without_sending_anything_twice() {
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let switch = std::sync::Arc::clone(&fail);
    let server = TestServer::start(move |seen, _| match seen.id() {
        Some(5) if switch.load(Ordering::SeqCst) => Reply::json(503, r#"{"message":"later"}"#),
        id => Reply::identity(id.unwrap()),
    })
    .seed(1..=20);
    let work = Workdir::new();
    work.write(
        "rules.toml",
        "[[rule]]\nname = \"bots\"\nservice_account = true\nreason = \"Automation account {username}; rule {rule}\"\n[rule.match]\nusername = \"^user\\\\d+$\"\nmarked = false\n",
    );
    let first = Apply::on(&server)
        .within(&work)
        .input("id,flag,reason\n2,true,A person's decision\n")
        .args(["--rules", "rules.toml", "--report", "night.csv"])
        .args([
            "--concurrency",
            "1",
            "--max-attempts",
            "1",
            "--max-failures",
            "0",
        ])
        .run();
    assert_eq!(first.code, 3, "{}", first.stderr);
    assert_eq!(ids(&first.rows), (1..=20).collect::<Vec<_>>());
    let updated_first = ids_with(&first.rows, "updated");
    assert!(
        !ids_with(&first.rows, "not_attempted").is_empty(),
        "stopped part way: {:?}",
        outcomes(&first.rows)
    );
    let command = printed_resume_command(&first.stderr);
    assert!(
        command.contains(&"--rules=rules.toml".to_owned()),
        "{command:?}"
    );

    fail.store(false, Ordering::SeqCst);
    let before = server.seen().len();
    let second = Invocation::new(&command[1..], None)
        .within(&work)
        .key(TEST_KEY)
        .run();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_resumed(
        &read_report(&work.path("night.resumed.csv")),
        &updated_first,
    );
    let sent_again: Vec<u64> = server.seen()[before..]
        .iter()
        .filter(|s| s.method == "PUT")
        .filter_map(Seen::id)
        .collect();
    assert!(
        sent_again.iter().all(|id| !updated_first.contains(id)),
        "nothing updated is sent again: {sent_again:?}"
    );
    // Every identity was sent exactly once with success; id 5 once more, refused.
    let puts = server.puts_per_id();
    for id in 1..=20u64 {
        assert_eq!(puts.get(&id), Some(&if id == 5 { 2 } else { 1 }), "id {id}");
    }
}

fn ids(rows: &[std::collections::HashMap<String, String>]) -> Vec<u64> {
    let mut ids: Vec<u64> = rows.iter().map(|r| r["id"].parse().unwrap()).collect();
    ids.sort_unstable();
    ids
}

/// The resumed night's report: one row per identity, id 2 the input's (line 2), the others
/// the rule's (no line); what the first run updated is `skipped`, the rest `updated`.
fn assert_resumed(rows: &[std::collections::HashMap<String, String>], updated_first: &[u64]) {
    assert_eq!(
        ids(rows),
        (1..=20).collect::<Vec<_>>(),
        "one row per identity"
    );
    for row in rows {
        let id: u64 = row["id"].parse().unwrap();
        let (line, source) = if id == 2 {
            ("2", "input")
        } else {
            ("", "rule:bots")
        };
        assert_eq!(
            (row["line"].as_str(), row["source"].as_str()),
            (line, source)
        );
        let expected = if updated_first.contains(&id) {
            "skipped"
        } else {
            "updated"
        };
        assert_eq!(row["outcome"], expected, "id {id}: {row:?}");
    }
}
