//! The undo file says what the run may have left: its baseline columns (`drata*`) are
//! what it sent where the answer was no certain refusal, so that applying it undoes
//! exactly the run, however the answers went.

use crate::support::*;

const DANA: &str = "dana@example.com";

/// A server whose listing holds id 5, a service account linked to nobody, and the user
/// Dana (9); it unmarks as asked, stores a link to Dana and then answers 502 (every
/// attempt), and unlinks as asked.
fn server_storing_the_link_behind_a_502() -> TestServer {
    TestServer::start(|seen, _| {
        let to_dana = seen.path.ends_with("/connect") && seen.body.contains('9');
        if to_dana {
            Reply::json(502, "bad gateway").applied(true)
        } else {
            Reply::identity(seen.id().unwrap())
        }
    })
    .seed_with(
        [
            serde_json::json!({"id": 5, "username": "ci-runner", "user": null,
            "serviceAccount": "2026-01-05T00:00:00.000Z", "serviceAccountReason": "CI runner"}),
        ],
        &[(9, DANA)],
    )
}

const FLIP: &str = "id,serviceAccount,serviceAccountReason,linkedUser\n5,false,a person after all,dana@example.com\n";

#[test]
fn a_link_saved_behind_a_502_is_in_the_undo_file_and_undone() {
    // Checked after the run (Drata is read again), and not (the 502 may have been saved).
    for extra in [&[][..], &["--no-verify"][..]] {
        let server = server_storing_the_link_behind_a_502();
        let work = Workdir::new();
        work.write("flip.csv", FLIP);
        let mut args = vec![
            "apply", "flip.csv", "--report", "r.csv", "--undo", "undo.csv",
        ];
        args.extend(extra);
        let run = Invocation::new(&args, Some(Endpoint::from(&server)))
            .within(&work)
            .run();
        assert_eq!(server.identity(5).unwrap()["user"]["id"], 9, "{extra:?}");
        let row = &read_report(&work.path("r.csv"))[0];
        if extra.is_empty() {
            assert_eq!(run.code, 0, "{}", run.stderr);
            assert_eq!(row["outcome"], "updated", "{row:?}");
            assert_eq!(row["verified"], "yes", "{row:?}");
        } else {
            assert_eq!(row["outcome"], "failed", "{row:?}");
        }
        // The baseline is what Drata holds: unmarked, and linked to Dana.
        let undo = undo_records(&work.path("undo.csv"));
        assert_eq!(
            undo[1..],
            [vec!["5", "true", "CI runner", "false", "", "", DANA]],
            "{extra:?}"
        );
        let connects = server.puts_by_endpoint().0;
        let back = Apply::on(&server)
            .within(&work)
            .file("undo.csv")
            .args(["--report", "u.csv"])
            .run();
        assert_eq!(back.code, 0, "{extra:?}: {}", back.stderr);
        assert_eq!(
            server.puts_by_endpoint().0,
            connects + 1,
            "{extra:?}: the link undone"
        );
        let now = server.identity(5).unwrap();
        assert!(now["user"].is_null(), "{extra:?}: {now}");
        assert_eq!(now["serviceAccountReason"], "CI runner", "{extra:?}: {now}");
    }
}

/// Applies `input` with `--undo undo.csv`, resuming from `r1.csv`: the run.
fn resume_into_undo(server: &TestServer, work: &Workdir, input: &str) -> Run {
    let args = [
        "apply",
        input,
        "--report",
        "r2.csv",
        "--resume-from",
        "r1.csv",
        "--undo",
        "undo.csv",
    ];
    Invocation::new(args, Some(Endpoint::from(server)))
        .within(work)
        .run()
        .run
}

#[test]
fn a_resumed_run_refuses_an_undo_file_of_other_columns_before_sending() {
    let server = TestServer::start(|_, _| Reply::json(503, "busy").applied(false)).seed_with(
        [
            serde_json::json!({"id": 5, "username": "ci-runner", "user": null,
            "serviceAccount": "2026-01-05T00:00:00.000Z", "serviceAccountReason": "CI runner"}),
        ],
        &[(9, DANA)],
    );
    let work = Workdir::new();
    work.write(
        "flag.csv",
        "id,serviceAccount,serviceAccountReason\n5,false,a person\n",
    );
    let first = Apply::on(&server)
        .within(&work)
        .file("flag.csv")
        .args(["--report", "r1.csv", "--undo", "undo.csv"])
        .run();
    assert_ne!(first.code, 0, "{}", first.stderr);
    let written = std::fs::read(work.path("undo.csv")).unwrap();
    let sent = server.seen().len();
    // The resumed run now decides links: its rows would not fit the file.
    work.write("flip.csv", FLIP);
    let resumed = resume_into_undo(&server, &work, "flip.csv");
    assert_eq!(resumed.code, 2, "{}", resumed.stderr);
    assert!(resumed.stderr.contains("columns"), "{}", resumed.stderr);
    assert_eq!(server.seen().len(), sent, "nothing sent");
    assert_eq!(std::fs::read(work.path("undo.csv")).unwrap(), written);

    // A row of another width is refused too, never dropped.
    let mut ragged = written.clone();
    ragged.extend_from_slice(b"7,true\n");
    std::fs::write(work.path("undo.csv"), &ragged).unwrap();
    let resumed = resume_into_undo(&server, &work, "flag.csv");
    assert_eq!(resumed.code, 2, "{}", resumed.stderr);
    assert!(resumed.stderr.contains("cells"), "{}", resumed.stderr);
    assert_eq!(server.seen().len(), sent, "nothing sent");
    assert_eq!(std::fs::read(work.path("undo.csv")).unwrap(), ragged);
}

#[test]
fn a_link_a_502_did_not_save_is_not_put_back_by_the_undo_file() {
    // Drata unmarks, and refuses every link with a 502 without saving it.
    let server = TestServer::start(|seen, _| {
        if seen.path.ends_with("/connect") {
            Reply::json(502, "bad gateway").applied(false)
        } else {
            Reply::identity(seen.id().unwrap())
        }
    })
    .seed_with(
        [
            serde_json::json!({"id": 5, "username": "ci-runner", "user": null,
            "serviceAccount": "2026-01-05T00:00:00.000Z", "serviceAccountReason": "CI runner"}),
        ],
        &[(9, DANA)],
    );
    let work = Workdir::new();
    work.write("flip.csv", FLIP);
    let args = [
        "apply", "flip.csv", "--report", "r.csv", "--undo", "undo.csv",
    ];
    let run = Invocation::new(args, Some(Endpoint::from(&server)))
        .within(&work)
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(server.identity(5).unwrap()["user"].is_null());
    // The 502 proves nothing: the baseline says the link may have been saved; no read
    // after the run (which may lag behind the writes) restates it.
    let undo = undo_records(&work.path("undo.csv"));
    assert_eq!(
        undo[1..],
        [vec!["5", "true", "CI runner", "false", "", "", DANA]],
        "{undo:?}"
    );
    let connects = server.puts_by_endpoint().0;
    let back = Apply::on(&server)
        .within(&work)
        .file("undo.csv")
        .args(["--report", "u.csv"])
        .run();
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(server.puts_by_endpoint().0, connects, "no link to put back");
    let now = server.identity(5).unwrap();
    assert_eq!(now["serviceAccountReason"], "CI runner", "{now}");
}

#[test]
fn an_undo_file_restores_a_marked_and_linked_identity_and_a_reason_of_any_text() {
    // Older Drata data: id 5 marked and linked to Dana. Id 6's reason holds a CR typed in
    // a browser, a bidi override, a tab and a formula's start.
    let reason = "CI runner\r\nowned by \u{202E}ops\t'=x";
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap())).seed_with(
        [
            serde_json::json!({"id": 5, "username": "legacy", "user": {"id": 9, "email": DANA},
            "serviceAccount": "2026-01-05T00:00:00.000Z", "serviceAccountReason": "shared admin"}),
            serde_json::json!({"id": 6, "username": "ci", "user": null,
            "serviceAccount": "2026-01-05T00:00:00.000Z", "serviceAccountReason": reason}),
        ],
        &[(9, DANA)],
    );
    let work = Workdir::new();
    // The review unmarks both; 5 stays Dana's.
    let review = format!(
        "id,serviceAccount,serviceAccountReason,linkedUser\n5,false,a person,{DANA}\n6,false,a person,\n"
    );
    let run = Apply::on(&server)
        .within(&work)
        .input(review)
        .args(["--undo", "undo.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(server.identity(5).unwrap()["serviceAccount"].is_null());
    // The undo file holds the reason as it was: no prefix, no escapes.
    let undo = records(&work.path("undo.csv"));
    assert_eq!(
        undo[0].last().map(String::as_str),
        Some("undoOf"),
        "{undo:?}"
    );
    let six = undo.iter().find(|row| row[0] == "6").unwrap();
    assert_eq!(six[2], reason, "{undo:?}");
    let back = Apply::on(&server)
        .within(&work)
        .file("undo.csv")
        .report("u.csv")
        .run();
    assert_eq!(back.code, 0, "{}", back.stderr);
    let five = server.identity(5).unwrap();
    assert_eq!(five["serviceAccountReason"], "shared admin", "{five}");
    assert_eq!(five["user"]["id"], 9, "still Dana's: {five}");
    let six = server.identity(6).unwrap();
    assert_eq!(six["serviceAccountReason"], reason, "{six}");
    assert!(!six["serviceAccount"].is_null(), "{six}");
}
