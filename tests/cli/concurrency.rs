//! `--concurrency auto`: enough requests in flight to use the rate at a high latency, and
//! fewer when the server struggles.

use std::sync::atomic::Ordering;

use crate::support::*;

/// Runs `apply` on `rows` rows against `sim` with the simulator's token, a summary and a
/// report; returns the run, the summary and the report rows.
fn apply_on_sim(
    sim: &RunningSimulator,
    rows: u64,
    extra: &[&str],
) -> (Run, serde_json::Value, usize) {
    let work = Workdir::new();
    work.write("in.csv", &rows_csv(1, rows));
    let url = sim.base_url();
    let mut args = vec![
        "apply",
        "in.csv",
        "--base-url",
        &url,
        "--summary-json",
        "s.json",
        "--report",
        "r.csv",
    ];
    args.extend_from_slice(extra);
    let run = drata(work.dir.path(), &args, &[("DRATA_API_KEY", SIM_TOKEN)]);
    let summary = std::fs::read(work.path("s.json"))
        .map(|bytes| serde_json::from_slice(&bytes).expect("summary JSON"))
        .unwrap_or_else(|e| panic!("no summary ({e}): {}", run.stderr));
    let report_rows = read_report(&work.path("r.csv")).len();
    (run, summary, report_rows)
}

/// Requests per minute as the simulator saw them arrive, first to last.
fn server_rate_per_minute(sim: &RunningSimulator) -> f64 {
    let requests = sim.stats.requests.load(Ordering::Relaxed);
    let first = sim.stats.first_request_us.load(Ordering::Relaxed);
    let last = sim.stats.last_request_us.load(Ordering::Relaxed);
    assert!(requests > 1 && last > first, "{requests} requests");
    (requests - 1) as f64 * 60e6 / (last - first) as f64
}

#[test]
fn auto_concurrency_keeps_the_rate_at_a_high_latency() {
    // 600/min against a server taking 1.5 s: 15 in flight are needed, where the old fixed
    // 8 capped the run at 320/min.
    let sim = simulator(|config| config.latency = std::time::Duration::from_millis(1_500));
    let (run, summary, report_rows) = apply_on_sim(&sim, 60, &["--rate", "600/min"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report_rows, 60);
    assert_eq!(summary["counts"]["updated"], 60);
    let rate = server_rate_per_minute(&sim);
    assert!(
        rate >= 480.0,
        "the server saw {rate:.0} requests/min, under 80% of 600/min"
    );
    assert!(rate <= 640.0, "the limiter still holds: {rate:.0}/min");
    let concurrency = &summary["concurrency"];
    assert_eq!(concurrency["mode"], "auto");
    assert!(
        concurrency["max"].as_u64().unwrap() > 8,
        "the limit went above 8: {concurrency}"
    );
    assert!(concurrency["max"].as_u64().unwrap() <= 64, "{concurrency}");
    assert_eq!(concurrency["reductions"], 0);
    let p50 = summary["latency_ms"]["p50"].as_f64().unwrap();
    assert!((1_400.0..3_000.0).contains(&p50), "p50 {p50} ms");
    assert!(
        run.stderr.contains("in flight: auto limit"),
        "{}",
        run.stderr
    );
}

#[test]
fn auto_concurrency_backs_off_when_the_server_fails_and_every_row_is_reported() {
    let sim = simulator(|config| {
        config.latency = std::time::Duration::from_millis(1_000);
        config.error_rate = 0.3;
        config.seed = 7;
    });
    let (run, summary, report_rows) = apply_on_sim(
        &sim,
        30,
        &[
            "--rate",
            "1200/min",
            "--retry-base-ms",
            "10",
            "--max-attempts",
            "10",
            "--max-failures",
            "none",
            "-v",
        ],
    );
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    assert_eq!(report_rows, 30, "every row is in the report");
    let counts = &summary["counts"];
    let done = counts["updated"].as_u64().unwrap() + counts["failed"].as_u64().unwrap();
    assert_eq!(done, 30, "every row updated or failed: {counts}");
    assert!(sim.stats.injected_errors.load(Ordering::Relaxed) > 0);
    let concurrency = &summary["concurrency"];
    assert!(
        concurrency["reductions"].as_u64().unwrap() >= 1,
        "{concurrency}"
    );
    assert!(
        run.stderr
            .contains("in-flight limit lowered after HTTP 500"),
        "-v logs the backoff: {}",
        run.stderr
    );
}

#[test]
fn a_fixed_concurrency_stays_fixed() {
    let sim = simulator(|config| config.latency = std::time::Duration::from_millis(50));
    let (run, summary, _) = apply_on_sim(&sim, 10, &["--rate", "unlimited", "--concurrency", "3"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        summary["concurrency"],
        serde_json::json!({"mode": "3", "limit": 3, "max": 3, "reductions": 0})
    );
}
