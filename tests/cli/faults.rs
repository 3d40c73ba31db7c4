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

#[test]
fn a_tenth_of_500s_keeps_the_pace_and_the_in_flight_limit_and_every_row_is_updated() {
    // A steady tenth of PUTs answered 500 is this server's failing, not its load: the
    // retry budget pays for the retries, and neither the pace nor the limit drops.
    // A latency well above a loaded machine's scheduling noise: the limit then answers to
    // the server, not to the test run beside it.
    let sim = simulator(|c| {
        c.error_rate = 0.1;
        c.seed = 11;
        c.rate_limit = "unlimited".parse().unwrap();
        c.latency = std::time::Duration::from_millis(30);
    });
    let run = Apply::on(&sim)
        .input(rows_csv(1, 200))
        .args(["--rate", "3000/min", "--retry-base-ms", "20"])
        .summary()
        .run();
    let summary = run.summary();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_every_row_accounted_for(&run, &sim, 200);
    assert_eq!(ids_with(&run.rows, "updated").len(), 200, "0 rows fail");
    let injected = sim.stats.injected_errors.load(Ordering::Relaxed);
    assert!(injected >= 10, "{injected} 500s");
    assert_eq!(summary["rate_reductions"], 0, "{summary}");
    // Before the budget every 500 lowered the in-flight limit (some 30 times in this run);
    // on a loaded machine the latency's own noise may still lower it once or twice, which
    // is the gradient's business, not the 500s'.
    let reductions = summary["concurrency"]["reductions"].as_u64().unwrap();
    assert!(reductions <= 2, "{summary}");
    assert!(!run.stderr.contains("retry budget"), "{}", run.stderr);
}

#[test]
fn a_server_failing_every_put_empties_the_retry_budget_and_gets_few_retries() {
    let sim = simulator(|c| {
        c.error_rate = 1.0;
        c.rate_limit = "unlimited".parse().unwrap();
    });
    let rows = 300;
    let run = Apply::on(&sim)
        .input(rows_csv(1, rows))
        .args(["--rate", "unlimited", "--retry-base-ms", "1"])
        .args(["--max-failures", "none"])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(ids_with(&run.rows, "failed").len() as u64, rows);
    // 300 first attempts and the 100 retries a full budget pays (500 tokens, 5 each);
    // without the budget, 5 attempts per row: 1,500.
    let puts = sim.stats.puts.load(Ordering::Relaxed);
    assert!(puts <= rows + 100, "{puts} PUTs for {rows} rows");
    let spent = run
        .rows
        .iter()
        .filter(|r| r["error"].contains("the retry budget is spent"))
        .count();
    assert!(spent >= 250, "{spent} rows say the budget is spent");
    assert!(
        run.stderr.contains("the retry budget is spent"),
        "said once at WARN: {}",
        run.stderr
    );
}
