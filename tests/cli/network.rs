//! Talking to the API: the request itself, retries and their limit, pauses after a 429,
//! error statuses, redirects, timeouts, the request rate, and plain HTTP off loopback.

use std::time::Duration;

use crate::support::*;

#[test]
fn a_500_then_200_retries_once() {
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
fn a_429_with_retry_after_pauses_then_succeeds() {
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
fn a_429_pauses_every_worker() {
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
fn a_404_fails_the_row_and_the_run_goes_on() {
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
fn array_messages_of_a_400_are_joined() {
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
fn a_401_aborts_with_exit_3_and_unsent_rows_not_attempted() {
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
fn redirects_are_not_followed() {
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
fn retries_stop_at_max_attempts() {
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
fn timeouts_are_retried() {
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
fn the_rate_is_honoured() {
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
fn plain_http_is_refused_off_loopback() {
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
