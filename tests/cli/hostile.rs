//! Hostile servers and networks: a server echoing the key in any encoding, proxies that
//! refuse us, servers that admit few requests at once or queue them, long pauses, and
//! hostile text in the files a run writes.

use crate::support::*;

/// A key of Drata's length, with a recognisable prefix.
const KEY: &str = "holdout-0123456789abcdefghij";

/// Whether `text` holds 8 characters of `KEY` in a row.
fn holds_a_piece_of_the_key(text: &str) -> bool {
    KEY.as_bytes()
        .windows(8)
        .any(|w| text.contains(std::str::from_utf8(w).unwrap()))
}

#[test]
fn an_escaped_or_percent_encoded_echo_of_the_key_reaches_no_output() {
    let escaped = format!(r#"{{"message":"{}\u0068{}"}}"#, "X".repeat(176), &KEY[1..]);
    let encoded: String = KEY.bytes().map(|b| format!("%{b:02X}")).collect();
    let server = TestServer::start(move |seen, _| match seen.id() {
        Some(1) => Reply::json(400, &escaped),
        _ => Reply::json(307, "").with_header(
            "location",
            &format!("https://elsewhere.example/login?token={encoded}"),
        ),
    });
    for verbosity in ["-q", "-vv"] {
        let work = Workdir::new();
        work.write("in.csv", "id,flag,reason\n1,true,a\n2,true,b\n");
        let run = Apply::offline()
            .within(&work)
            .file("in.csv")
            .args(["--base-url", &server.url, "--report", "r.csv", verbosity])
            .env("DRATA_API_KEY", KEY)
            .run();
        assert_eq!(run.code, 1, "{}", run.stderr);
        let everything = format!("{}{}{}", run.stdout, run.stderr, work.all_file_text());
        assert!(!holds_a_piece_of_the_key(&everything), "{everything}");
        assert!(!everything.contains("%68%6F"), "{everything}");
        let rows = read_report(&work.path("r.csv"));
        assert!(line(&rows, 2)["error"].contains("X<redacted>"), "{rows:?}");
        assert!(
            line(&rows, 3)["error"].contains("token=<redacted>"),
            "{rows:?}"
        );
    }
}

/// One listing page with `items`, its `total` the count of distinct ids.
fn listing(items: &[String], total: usize) -> Reply {
    Reply::json(
        200,
        &format!(r#"{{"data":[{}],"total":{total}}}"#, items.join(",")),
    )
}

fn listed(id: u64, username: &str, reason: Option<&str>) -> String {
    let marked = reason.map_or_else(
        || r#""serviceAccount":null,"serviceAccountReason":null"#.to_owned(),
        |reason| {
            format!(
                r#""serviceAccount":"2026-01-01T00:00:00.000Z","serviceAccountReason":"{reason}""#
            )
        },
    );
    format!(
        r#"{{"id":{id},"username":"{username}","email":null,"user":null,{marked},"connection":{{"id":1,"clientType":"AWS"}}}}"#
    )
}

#[test]
fn an_id_listed_twice_in_different_states_is_named_and_the_later_copy_exported() {
    let items = [
        listed(5, "ci", None),
        listed(6, "deploy", None),
        listed(5, "ci", Some("CI runner")),
        listed(6, "deploy", None),
    ];
    let server = TestServer::scripted(move |_, _| listing(&items, 2));
    let run = Export::on(&server.url).args(["-o", "out.csv"]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("listed twice"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "only the copy that differs: {}",
        run.stderr
    );
    assert!(
        warnings[0].contains("WARN")
            && warnings[0].contains("identity 5")
            && warnings[0].contains("later copy"),
        "{}",
        run.stderr
    );
    let text = std::fs::read_to_string(run.path("out.csv")).unwrap();
    let rows = records_by_header(csv::Reader::from_reader(text.as_bytes()));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["id"], "5");
    assert_eq!(rows[0]["serviceAccountReason"], "CI runner", "{rows:?}");
}

#[test]
fn ids_beyond_two_to_the_53_are_left_out_of_an_export_and_named() {
    let items = [
        listed(7, "ci", None),
        listed(9_007_199_254_740_991, "largest", None),
        listed(9_007_199_254_740_992, "too-large", None),
        listed(18_446_744_073_709_551_615, "max-u64", None),
    ];
    let server = TestServer::scripted(move |_, _| listing(&items, 4));
    let run = Export::on(&server.url).args(["-o", "out.csv"]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(run.path("out.csv")).unwrap();
    let rows = records_by_header(csv::Reader::from_reader(text.as_bytes()));
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["7", "9007199254740991"], "{rows:?}");
    for id in ["9007199254740992", "18446744073709551615"] {
        assert!(
            run.stderr
                .lines()
                .any(|l| l.contains("WARN") && l.contains(id) && l.contains("left out")),
            "{id}: {}",
            run.stderr
        );
    }
    // What was exported plans without a refused id.
    let plan = Plan::on(&server.url)
        .within(&run.work)
        .file("out.csv")
        .run();
    assert_eq!(plan.code, 0, "{}", plan.stderr);
}

/// The `.part` files in a directory: outputs being written, or left by a killed run.
#[cfg(unix)]
fn part_files(work: &Workdir) -> Vec<String> {
    std::fs::read_dir(work.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".part"))
        .collect()
}

#[cfg(unix)]
#[test]
fn the_summary_and_the_evidence_appear_whole_at_the_end_or_not_at_all() {
    let sim = simulator(|c| c.latency = std::time::Duration::from_millis(300));
    let work = Workdir::new();
    let outputs = ["--summary-json", "s.json", "--evidence", "e.md"];
    let mut started = Apply::on(&sim)
        .within(&work)
        .input(rows_csv(1, 40))
        .args(outputs)
        .spawn();
    wait_until(std::time::Duration::from_secs(30), "a request", || {
        sim.stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    });
    signal(&started.child, libc::SIGKILL);
    let _ = started.child.wait();
    for name in ["s.json", "e.md"] {
        assert!(!work.path(name).exists(), "{name} under its final name");
    }
    let left = part_files(&work);
    assert_eq!(left.len(), 2, "the killed run's temporary files: {left:?}");

    let run = Apply::on(&sim)
        .within(&work)
        .file("input.csv")
        .args(outputs)
        .report("again.csv")
        .run();
    assert_eq!(run.code, 0, "the rerun needs no --force: {}", run.stderr);
    assert_eq!(run.summary()["rows"], 40, "{}", run.stderr);
    let evidence = std::fs::read_to_string(work.path("e.md")).unwrap();
    assert!(evidence.contains("| **total** | **40** |"), "{evidence}");
    assert_eq!(
        part_files(&work),
        left,
        "the finished run left no temporary file"
    );
}

#[test]
fn a_long_retry_after_pause_is_announced_and_shown_on_the_progress_line_while_it_lasts() {
    // The first answer asks for 2 s; the hidden threshold makes that a long pause.
    let server = TestServer::start(|seen, index| match (seen.id(), index) {
        (Some(_), 0) => Reply::json(503, r#"{"message":"busy"}"#).with_header("retry-after", "2"),
        (Some(id), _) => Reply::identity(id),
        (None, _) => Reply::json(404, "{}"),
    })
    .seed([1, 2]);
    let run = Apply::on(&server.url)
        .input(rows_csv(1, 2))
        .args(["--long-pause-ms", "1000", "--progress-interval", "0.2"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("WARN") && l.contains("asked to wait 2 s")),
        "{}",
        run.stderr
    );
    let paused: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("progress (paused") && l.contains("s more for Retry-After"))
        .collect();
    assert!(paused.len() >= 3, "shown while it lasts: {}", run.stderr);
    assert!(
        paused.iter().any(|l| l.contains("paused_s=2")),
        "{}",
        run.stderr
    );
    let after = run.stderr.lines().last().unwrap_or_default();
    assert!(
        !after.contains("paused"),
        "not once it is over: {}",
        run.stderr
    );
}
