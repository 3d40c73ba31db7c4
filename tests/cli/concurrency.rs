//! `--concurrency`: a fixed number of requests in flight stays fixed. The `auto` mode's
//! tests, bound to the clock (a rate at a high latency, backing off), are in `clock_bound`.

use crate::support::*;

#[test]
fn a_fixed_concurrency_stays_fixed() {
    let sim = simulator(|config| config.latency = std::time::Duration::from_millis(50));
    let run = Apply::on(&sim)
        .input(rows_csv(1, 10))
        .args(["--concurrency", "3"])
        .summary()
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.summary()["concurrency"],
        serde_json::json!({"mode": "3", "limit": 3, "max": 3, "reductions": 0})
    );
}
