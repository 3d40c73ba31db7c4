//! The clock-bound tests, in one place: rates, latencies, timeouts and Retry-After pauses
//! measured in real time against a scripted server or the simulator. Each takes seconds
//! and asserts with slack for scheduling; on a loaded machine these are the ones to look
//! at first.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::*;

#[test]
fn a_429_with_retry_after_pauses_then_succeeds() {
    let server = TestServer::start(|seen, index| match index {
        0 => Reply::json(429, r#"{"message":"slow down"}"#).with_header("retry-after", "1"),
        _ => Reply::identity(seen.id().unwrap()),
    });
    let Finished { run, rows, .. } = Apply::on(&server)
        .input("id,flag,reason\n1,true,a\n")
        .args(["--rate", "unlimited"])
        .run();
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
    let Finished { run, rows, .. } = Apply::on(&server)
        .input(rows_csv(1, 12))
        .args(["--rate", "unlimited", "--concurrency", "4"])
        .run();
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
fn timeouts_are_retried() {
    let server = TestServer::start(|seen, index| match index {
        0 => Reply::identity(seen.id().unwrap()).after(Duration::from_secs(3)),
        _ => Reply::identity(seen.id().unwrap()),
    });
    let Finished { run, rows, .. } = Apply::on(&server)
        .input("id,flag,reason\n1,true,a\n")
        .args(["--timeout", "0.3"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(line(&rows, 2)["attempts"], "2");
}

#[test]
fn the_rate_is_honoured() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap()));
    let Finished { run, rows, .. } = Apply::on(&server)
        .input(rows_csv(1, 30))
        .args(["--rate", "20/s", "--concurrency", "8"])
        .run();
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
fn answers_slower_than_the_timeout_are_retried() {
    let sim = simulator(|c| {
        c.slow_rate = 0.2;
        c.slow_delay = Duration::from_secs(5);
    });
    let run = Apply::on(&sim)
        .input(rows_csv(1, 20))
        .args(["--timeout", "0.5", "--max-attempts", "10"])
        .args(["--max-failures", "none"])
        .run();
    assert_every_row_accounted_for(&run, &sim, 20);
    let rows = &run.rows;
    assert_eq!(ids_with(rows, "updated").len(), 20);
    assert!(sim.stats.slowed.load(Ordering::Relaxed) > 0);
    assert!(
        rows.iter().any(|r| r["attempts"] != "1"),
        "some rows needed a retry"
    );
}

#[test]
fn twice_the_servers_limit_settles_under_it() {
    let sim = simulator(|c| {
        c.rate_limit = "10/s".parse().unwrap();
        c.bucket_capacity = 5;
    });
    let run = Apply::on(&sim)
        .input(rows_csv(1, 60))
        .args(["--rate", "20/s", "--concurrency", "8"])
        .args(["--max-failures", "none"])
        .run();
    assert_every_row_accounted_for(&run, &sim, 60);
    assert_eq!(ids_with(&run.rows, "updated").len(), 60);
    let limited = sim.stats.rate_limited.load(Ordering::Relaxed) as f64;
    let requests = sim.stats.requests.load(Ordering::Relaxed) as f64;
    assert!(limited > 0.0, "the server's limit was exceeded");
    assert!(
        limited / requests < 0.3,
        "{limited} of {requests} answered 429"
    );
    assert!(run.stderr.contains("lowered the pace"), "{}", run.stderr);
}

/// PUTs per minute as the simulator saw them arrive, first to last.
fn server_put_rate_per_minute(sim: &RunningSimulator) -> f64 {
    let puts = sim.stats.puts.load(Ordering::Relaxed);
    let first = sim.stats.first_put_us.load(Ordering::Relaxed);
    let last = sim.stats.last_put_us.load(Ordering::Relaxed);
    assert!(puts > 1 && last > first, "{puts} PUTs");
    (puts - 1) as f64 * 60e6 / (last - first) as f64
}

#[test]
fn auto_concurrency_keeps_the_rate_at_a_high_latency() {
    // 600/min against a server taking 1.5 s: 15 in flight are needed, where the old fixed
    // 8 capped the run at 320/min.
    // 60 identities: the listing read before and after the run is two pages each.
    let sim = simulator(|config| {
        config.latency = Duration::from_millis(1_500);
        config.identities = 60;
    });
    let run = Apply::on(&sim)
        .input(rows_csv(1, 60))
        .args(["--rate", "600/min"])
        .summary()
        .run();
    let summary = run.summary();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.rows.len(), 60);
    assert_eq!(summary["counts"]["updated"], 60);
    // The PUTs' rate: the listing pages before and after are read one at a time.
    let rate = server_put_rate_per_minute(&sim);
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
fn auto_concurrency_keeps_its_limit_when_the_server_fails_500s_and_every_row_is_reported() {
    let sim = simulator(|config| {
        config.latency = Duration::from_millis(1_000);
        config.error_rate = 0.3;
        config.seed = 7;
    });
    let run = Apply::on(&sim)
        .input(rows_csv(1, 30))
        .args(["--rate", "1200/min", "--max-attempts", "10"])
        .args(["--max-failures", "none", "-v"])
        .summary()
        .run();
    let summary = run.summary();
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    assert_eq!(run.rows.len(), 30, "every row is in the report");
    let counts = &summary["counts"];
    let done = counts["updated"].as_u64().unwrap() + counts["failed"].as_u64().unwrap();
    assert_eq!(done, 30, "every row updated or failed: {counts}");
    assert!(sim.stats.injected_errors.load(Ordering::Relaxed) > 0);
    // A 500 is a failure of its request, not a sign of load: the retry budget bounds its
    // retries, and neither the in-flight limit nor the pace is lowered for it.
    let concurrency = &summary["concurrency"];
    assert_eq!(concurrency["reductions"], 0, "{concurrency}");
    assert_eq!(summary["rate_reductions"], 0, "{summary}");
    assert!(
        !run.stderr.contains("in-flight limit lowered"),
        "{}",
        run.stderr
    );
}

/// Placing every problem of a rules file is linear in its size: 20,000 rules, each with
/// three problems (a name used before, a pattern that does not compile, a placeholder that
/// is not one), are all named in seconds. Counting each problem's line and column from the
/// file's start took minutes here.
#[test]
fn every_problem_of_twenty_thousand_rules_is_placed_in_seconds() {
    let work = Workdir::new();
    let rule = "[[rule]]\nname = \"same\"\nservice_account = true\nreason = \"r {nope}\"\n\
                [rule.match]\nusername = \"(\"\n\n";
    work.write("many.toml", &rule.repeat(20_000));
    let start = std::time::Instant::now();
    let run = Validate::offline()
        .within(&work)
        .args(["--rules", "many.toml"])
        .run()
        .run;
    let took = start.elapsed();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("(59999 problems)"),
        "{}",
        &run.stderr[..run.stderr.len().min(500)]
    );
    // The last rule's problems, on its lines 139,996 to 139,999.
    assert!(
        run.stderr
            .contains("many.toml:139999:12: username: the regular expression"),
        "{}",
        &run.stderr[run.stderr.len().saturating_sub(500)..]
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn the_listing_pages_are_read_together_and_the_plan_is_the_serial_reads() {
    // 500 identities are 11 pages; at 200 ms each, read one at a time they take 2.2 s.
    let sim = simulator(|config| {
        config.identities = 500;
        config.latency = Duration::from_millis(200);
    });
    let input = "id,flag,reason\n1,true,ci\n250,false,x\n499,true,y\n500,false,\n";
    let serial = Plan::on(&sim)
        .input(input)
        .args(["--report", "p.csv", "--concurrency", "1"])
        .run();
    assert_eq!(sim.stats.max_in_flight.load(Ordering::Relaxed), 1);
    let lists = sim.stats.lists.load(Ordering::Relaxed);
    assert_eq!(lists, 11, "ceil(501 / 50) pages");
    let together = Plan::on(&sim)
        .input(input)
        .args(["--report", "p.csv"])
        .run();
    let most = sim.stats.max_in_flight.load(Ordering::Relaxed);
    assert!(most >= 2, "{most} page(s) at once at most");
    assert_eq!(
        sim.stats.lists.load(Ordering::Relaxed) - lists,
        11,
        "no page read twice or for nothing"
    );
    assert_eq!(together.code, serial.code, "{}", together.stderr);
    let without_times = |rows: &[std::collections::HashMap<String, String>]| {
        rows.iter()
            .map(|row| {
                let mut row = row.clone();
                row.remove("finished_at");
                row
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(without_times(&together.rows), without_times(&serial.rows));
    assert_eq!(together.rows.len(), 4);
    assert!(
        !together.stderr.contains("may be incomplete"),
        "{}",
        together.stderr
    );
}
