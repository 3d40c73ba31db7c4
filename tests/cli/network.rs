//! Talking to the API: the request itself, retries and their limit, error statuses,
//! redirects, and plain HTTP off loopback. Pauses after a 429, timeouts and the request
//! rate, bound to the clock, are in `clock_bound`.

use crate::support::*;

#[test]
fn a_500_then_200_retries_once() {
    let server = TestServer::start(|seen, index| match index {
        0 => Reply::json(500, r#"{"message":"boom"}"#),
        _ => Reply::identity(seen.id().unwrap()),
    });
    let Finished { run, rows, .. } = Apply::on(&server)
        .input("id,flag,reason\n42,true,ci\n")
        .run();
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
fn a_404_fails_the_row_and_the_run_goes_on() {
    let server = TestServer::start(|seen, _| match seen.id() {
        Some(2) => Reply::json(404, r#"{"message":"User identity not found"}"#),
        id => Reply::identity(id.unwrap()),
    });
    let Finished { run, rows, .. } = Apply::on(&server)
        .input("id,flag,reason\n1,true,a\n2,true,b\n3,true,c\n")
        .run();
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
fn array_messages_of_a_400_are_joined() {
    let server = TestServer::start(|_, _| {
        Reply::json(
            400,
            r#"{"statusCode":400,"message":["a is bad","b is worse"]}"#,
        )
    });
    let Finished { run, rows, .. } = Apply::on(&server).input("id,flag,reason\n1,true,a\n").run();
    assert_eq!(run.code, 1);
    assert!(line(&rows, 2)["error"].contains("a is bad; b is worse"));
}

#[test]
fn a_401_aborts_with_exit_3_and_unsent_rows_not_attempted() {
    let server = TestServer::start(|_, _| Reply::json(401, r#"{"message":"Unauthorized"}"#));
    let Finished { run, rows, .. } = Apply::on(&server)
        .input(rows_csv(1, 6))
        .args(["--concurrency", "1", "--rate", "unlimited"])
        .run();
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
fn redirects_are_not_followed() {
    let server = TestServer::start(|_, _| {
        Reply::json(302, "").with_header("location", "https://elsewhere.example/")
    });
    let Finished { run, rows, .. } = Apply::on(&server).input("id,flag,reason\n1,true,a\n").run();
    assert_eq!(run.code, 1);
    assert_eq!(server.seen().len(), 1);
    let row = line(&rows, 2);
    assert_eq!(row["http_status"], "302");
    assert!(row["error"].contains("redirect"), "{}", row["error"]);
}

#[test]
fn retries_stop_at_max_attempts() {
    let server = TestServer::start(|_, _| Reply::json(503, "unavailable"));
    let Finished { run, rows, .. } = Apply::on(&server)
        .input("id,flag,reason\n1,true,a\n")
        .args(["--max-attempts", "3"])
        .run();
    assert_eq!(run.code, 1);
    let row = line(&rows, 2);
    assert_eq!(
        (row["outcome"].as_str(), row["attempts"].as_str()),
        ("failed", "3")
    );
    assert_eq!(server.seen().len(), 3);
}

#[test]
fn plain_http_is_refused_off_loopback() {
    for url in ["http://example.com/public", "http://10.1.2.3/"] {
        let run = Apply::on(url)
            .input("id,flag,reason\n1,true,a\n")
            .key("k")
            .run();
        assert_eq!(run.code, 2, "{url}");
        assert!(run.stderr.contains("loopback"), "{}", run.stderr);
    }
    let run = Apply::offline()
        .input("id,flag,reason\n1,true,a\n")
        .key("k")
        .env("DRATA_BASE_URL", "http://example.com/")
        .run();
    assert_eq!(run.code, 2, "DRATA_BASE_URL is checked too");
}
