//! Faults and failure limits: injected 500s and dropped connections on the simulator, and
//! `--max-failures`. Slow answers and a server rate limit, bound to the clock, are in
//! `clock_bound`.

use std::sync::atomic::Ordering;

use crate::support::*;

#[test]
fn thirty_percent_500s_are_retried_to_success() {
    let sim = simulator(|c| c.error_rate = 0.3);
    let run = Apply::on(&sim)
        .input(rows_csv(1, 60))
        .args(["--max-attempts", "10", "--max-failures", "none"])
        .run();
    assert_every_row_accounted_for(&run, &sim, 60);
    assert_eq!(ids_with(&run.rows, "updated").len(), 60);
    assert!(sim.stats.injected_errors.load(Ordering::Relaxed) > 5);
    assert_eq!(
        sim.stats.applied.load(Ordering::Relaxed),
        60,
        "nothing applied twice"
    );
}

#[test]
fn dropped_connections_are_retried() {
    let sim = simulator(|c| c.drop_rate = 0.2);
    let run = Apply::on(&sim)
        .input(rows_csv(1, 40))
        .args(["--max-attempts", "10", "--max-failures", "none"])
        .run();
    assert_every_row_accounted_for(&run, &sim, 40);
    assert_eq!(ids_with(&run.rows, "updated").len(), 40);
    assert!(sim.stats.dropped.load(Ordering::Relaxed) > 0);
}

#[test]
fn max_failures_count_aborts_the_run() {
    let server = TestServer::start(|_, _| Reply::json(404, r#"{"message":"gone"}"#));
    let Finished { run, rows, .. } = Apply::on(&server)
        .input(rows_csv(1, 10))
        .args(["--max-failures", "2", "--concurrency", "1"])
        .args(["--rate", "unlimited"])
        .run();
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
    let Finished { run, rows, .. } = Apply::on(&server)
        .input(rows_csv(1, 40))
        .args(["--concurrency", "1", "--rate", "unlimited"])
        .run();
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
    let Finished { run, rows, .. } = Apply::on(&server)
        .input(rows_csv(1, 30))
        .args(["--rate", "unlimited"])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(ids_with(&rows, "failed").len(), 10);
    assert_eq!(ids_with(&rows, "updated").len(), 20);
}
