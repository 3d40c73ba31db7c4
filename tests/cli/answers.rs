//! Outcomes that stay true whatever Drata answers: PUT answers of other shapes, and
//! listings that lie about their total, repeat pages, repeat ids, never end, or hold an
//! odd item.

use crate::support::*;

/// An identity as the listing shows it.
fn identity_json(id: u64, username: &str) -> String {
    format!(
        r#"{{"id":{id},"username":"{username}","email":"{username}@example.com","serviceAccount":null,"serviceAccountReason":null,"connection":{{"id":"1","clientType":"AWS","clientAlias":"prod"}}}}"#
    )
}

/// A listing page of `items` (JSON values), with `total`.
fn page(items: &[String], total: &str) -> Reply {
    Reply::json(
        200,
        &format!(
            r#"{{"data":[{}],"page":1,"limit":50,"total":{total}}}"#,
            items.join(",")
        ),
    )
}

/// The `page` query parameter of a listing request.
fn page_number(seen: &Seen) -> u64 {
    seen.path
        .split(['?', '&'])
        .find_map(|part| part.strip_prefix("page="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Identities `first..=last` as listing items.
fn items(first: u64, last: u64) -> Vec<String> {
    (first..=last)
        .map(|id| identity_json(id, &format!("user{id}")))
        .collect()
}

/// A listing of identities 1..=n served 50 a page, announcing `total`.
fn honest_pages(seen: &Seen, n: u64, total: &str) -> Reply {
    let p = page_number(seen);
    let first = (p - 1) * 50 + 1;
    page(&items(first, n.min(p * 50)), total)
}

fn gets(server: &TestServer) -> usize {
    server.seen().iter().filter(|s| s.method == "GET").count()
}

#[test]
fn any_2xx_is_updated_at_once_whatever_the_body() {
    let shapes: Vec<Reply> = vec![
        Reply::json(200, ""),
        Reply::json(204, ""),
        Reply::json(200, "<html><body>OK</body></html>").with_header("content-type", "text/html"),
        Reply::json(200, r#"{"id":4,"username":"tru"#),
        Reply::json(200, "null"),
        Reply::json(200, r#""ok""#),
        Reply::json(200, r#"{"serviceAccount":1717171717}"#),
        Reply::json(200, r#"{"id":"1"}"#),
        Reply::json(200, r#"{"connection":"x","username":7}"#),
        Reply::json(201, r#"{"created":true}"#),
    ];
    let count = shapes.len() as u64;
    let server = TestServer::scripted(move |seen, _| match seen.method.as_str() {
        "GET" => honest_pages(seen, count, &count.to_string()),
        _ => shapes[(seen.id().unwrap() - 1) as usize].clone(),
    });
    let csv = rows_csv(1, count);
    let Finished {
        run, rows, work, ..
    } = Apply::on(&server)
        .input(&csv)
        // This server's listing never changes: the check after the run would find
        // nothing applied. The answers alone are the subject here.
        .args(["--no-verify", "--undo", "undo.csv"])
        .args(["--evidence", "evidence.md"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(rows.len() as u64, count);
    for row in &rows {
        assert_eq!(row["outcome"], "updated", "{row:?}");
        assert_eq!(row["attempts"], "1", "never retried: {row:?}");
        assert_eq!(row["error"], "", "{row:?}");
    }
    let puts = server.seen().iter().filter(|s| s.method == "PUT").count() as u64;
    assert_eq!(puts, count, "one PUT per row");
    let undo = std::fs::read_to_string(work.dir.path().join("undo.csv")).unwrap();
    assert_eq!(undo.lines().count() as u64, count + 1, "{undo}");
    let evidence = std::fs::read_to_string(work.dir.path().join("evidence.md")).unwrap();
    assert!(
        evidence.contains(&format!("{count} identities were updated")),
        "{evidence}"
    );
}

#[test]
fn an_understated_total_does_not_hide_identities() {
    let server = TestServer::scripted(|seen, _| honest_pages(seen, 130, "50"));
    let run = Plan::on(&server)
        .input("id,flag,reason\n60,false,x\n100,false,x\n130,false,x\n")
        .args(["--report", "p.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = run.rows.clone();
    assert!(rows.iter().all(|r| r["outcome"] == "unchanged"), "{rows:?}");
    assert_eq!(gets(&server), 3, "paged while pages came back full");
    assert!(
        run.stderr.contains("announced 50 identities but 130"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_repeated_page_warns_and_apply_still_sends_what_the_listing_missed() {
    // Page 2 repeats page 1, as offset paging does while Drata syncs.
    let server = TestServer::scripted(|seen, _| match seen.method.as_str() {
        "GET" if page_number(seen) == 2 => page(&items(1, 50), "160"),
        "GET" => honest_pages(seen, 160, "160"),
        _ => Reply::identity(seen.id().unwrap()),
    });
    let plan = Plan::on(&server)
        .input("id,flag,reason\n120,true,ci\n")
        .args(["--report", "p.csv"])
        .run();
    assert_eq!(plan.code, 1, "{}", plan.stderr);
    let rows = plan.rows.clone();
    assert_eq!(rows[0]["outcome"], "not_found");
    assert!(rows[0]["error"].contains("may be incomplete"), "{rows:?}");
    assert!(
        plan.stderr.contains("brought no identity not already seen"),
        "{}",
        plan.stderr
    );

    let apply = Apply::on(&server)
        .input("id,flag,reason\n120,true,ci\n")
        .args(["--no-verify", "--report", "a.csv"])
        .run();
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let rows = apply.rows.clone();
    assert_eq!(
        rows[0]["outcome"], "updated",
        "the listing's silence is no proof"
    );
}

#[test]
fn the_same_id_on_two_pages_is_one_identity() {
    let server = TestServer::scripted(|seen, _| match seen.method.as_str() {
        "GET" if page_number(seen) == 1 => page(&items(1, 50), "60"),
        "GET" => {
            let mut repeated = items(5, 5);
            repeated.extend(items(51, 60));
            page(&repeated, "60")
        }
        _ => Reply::identity(seen.id().unwrap()),
    });
    let Finished { run, rows, .. } = Apply::on(&server)
        .input("username,flag,reason\nuser5,true,ci\n")
        .args(["--no-verify"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(rows[0]["outcome"], "updated");
    assert_eq!(rows[0]["id"], "5", "not ambiguous with itself");
}

#[test]
fn a_listing_that_never_ends_is_stopped_past_its_total() {
    let server = TestServer::scripted(|seen, _| {
        let p = page_number(seen);
        page(&items((p - 1) * 50 + 1, p * 50), "100")
    });
    let run = Plan::on(&server)
        .input("id,flag,reason\n7,false,x\n")
        .args(["--report", "p.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(gets(&server), 12, "2 announced pages and 10 more at most");
    assert!(run.stderr.contains("far past its total"), "{}", run.stderr);
}

#[test]
fn a_malformed_item_is_skipped_with_a_warning() {
    let server = TestServer::scripted(|seen, _| match seen.method.as_str() {
        "GET" => {
            let mut odd = items(1, 3);
            odd.push(r#"{"id":"not a number","username":"odd"}"#.to_owned());
            odd.push("null".to_owned());
            odd.push(
                r#"{"id":4,"username":null,"connection":null,"serviceAccount":12}"#.to_owned(),
            );
            page(&odd, "6")
        }
        _ => Reply::identity(seen.id().unwrap()),
    });
    let run = Plan::on(&server)
        .input("id,flag,reason\n2,false,x\n4,true,x\n")
        .args(["--report", "p.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("2 listing items had no readable id"),
        "{}",
        run.stderr
    );
    let rows = run.rows.clone();
    assert_eq!(
        outcomes(&rows),
        vec![(2, "unchanged".into()), (3, "would_update".into())]
    );
}

#[test]
fn a_stale_check_after_the_run_drops_no_row_from_the_undo_file() {
    // A listing that lags behind writes: it never shows what the PUTs changed. Id 1 is
    // answered 200, id 2 a 502 that may have been saved.
    let server = TestServer::scripted(|seen, _| match (seen.method.as_str(), seen.id()) {
        ("GET", _) => honest_pages(seen, 3, "3"),
        (_, Some(2)) => Reply::json(502, "bad gateway"),
        (_, id) => Reply::identity(id.unwrap_or(1)),
    });
    let run = Apply::on(&server)
        .input("id,flag,reason\n1,true,ci\n2,true,deploy\n3,false,\n")
        .args(["--undo", "undo.csv", "--max-attempts", "1"])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("1 rows answered 2xx are not shown by Drata yet"),
        "{}",
        run.stderr
    );
    assert_eq!(line(&run.rows, 2)["verified"], "no");
    let undo = records(&run.path("undo.csv"));
    let mut ids: Vec<&str> = undo[1..].iter().map(|row| row[0].as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["1", "2"],
        "every row that may have changed Drata: {undo:?}"
    );
    for row in &undo[1..] {
        // The baseline is what the run sent: once the lagging listing catches up,
        // applying the file puts it back.
        assert_eq!(row[3], "true", "{undo:?}");
    }
}

/// Identities 1..=120, and once the first page was served a new one (id 1000) listed first,
/// as offset paging shows an identity added while it is read: every later page shifts by
/// one, and `total` grows to 121.
fn a_listing_that_shifts_after_page_1() -> TestServer {
    TestServer::scripted(|seen, index| {
        let mut ids: Vec<u64> = (1..=120).collect();
        if index > 0 {
            ids.insert(0, 1000);
        }
        let p = page_number(seen) as usize;
        let on_page: Vec<String> = ids
            .iter()
            .skip((p - 1) * 50)
            .take(50)
            .map(|id| identity_json(*id, &format!("user{id}")))
            .collect();
        page(&on_page, &ids.len().to_string())
    })
}

#[test]
fn pages_read_ahead_of_a_listing_that_shifted_are_read_again_as_a_serial_read_does() {
    let input = "id,flag,reason\n50,false,x\n99,false,x\n120,false,x\n1000,false,x\n";
    let plan = |concurrency: &str| {
        let server = a_listing_that_shifts_after_page_1();
        let run = Plan::on(&server)
            .input(input)
            .args(["--report", "p.csv", "--concurrency", concurrency])
            .run();
        (run, gets(&server))
    };
    let (serial, serial_gets) = plan("1");
    let (together, together_gets) = plan("auto");
    // Page 2 read ahead announces 121, not 120: it is read again, and page 3 after it; a
    // page 3 read ahead (if it went before page 2 came back) is read for nothing.
    for gets in [serial_gets, together_gets] {
        assert!((4..=5).contains(&gets), "{gets} GETs");
    }
    assert_eq!(together.code, serial.code, "{}", together.stderr);
    let outcomes = |rows: &[std::collections::HashMap<String, String>]| {
        rows.iter()
            .map(|row| {
                (
                    row["id"].clone(),
                    row["outcome"].clone(),
                    row["error"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(outcomes(&together.rows), outcomes(&serial.rows));
    let unchanged = ids_with(&together.rows, "unchanged");
    assert_eq!(unchanged, [50, 99, 120], "every id of the serial read");
    assert!(
        together.stderr.contains("announced 121 identities but 120"),
        "{}",
        together.stderr
    );
}
