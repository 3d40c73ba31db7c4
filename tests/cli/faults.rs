//! Faults and failure limits: injected 500s, dropped connections, slow answers and a server
//! rate limit on the simulator, and `--max-failures`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::*;

/// Applies `n` rows against a simulator with faults; checks rows in == rows out, that
/// every `updated` row was applied by the server, and that the exit code matches.
fn fault_run(
    n: u64,
    configure: impl FnOnce(&mut SimulatorConfig),
    extra: &[&str],
) -> (Run, Vec<HashMap<String, String>>, RunningSimulator) {
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
fn thirty_percent_500s_are_retried_to_success() {
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
fn dropped_connections_are_retried() {
    let (_run, rows, sim) = fault_run(
        40,
        |c| c.drop_rate = 0.2,
        &["--rate", "unlimited", "--max-attempts", "10"],
    );
    assert_eq!(ids_with(&rows, "updated").len(), 40);
    assert!(sim.stats.dropped.load(Ordering::Relaxed) > 0);
}

#[test]
fn answers_slower_than_the_timeout_are_retried() {
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
fn twice_the_servers_limit_settles_under_it() {
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
