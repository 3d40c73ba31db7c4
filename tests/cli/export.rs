//! `export`: the current identities in the input format, its filters and formats, and the
//! review's round trip (export, edit, `apply --reconcile`, undo) against the simulator.

use std::collections::HashMap;
use std::io::Read;
use std::process::Stdio;
use std::sync::atomic::Ordering;

use crate::support::*;

const HEADER: &str = "id,serviceAccount,serviceAccountReason,username,email,connection,\
                      linkedUser,adminAccess,dbAccess,connectedAt,disconnectedAt,hasMfa,suggestion,\
                      drataServiceAccount,drataReason,drataLinkedUser,drataAdminAccess,drataDbAccess,\
                      exportedAt";

/// The rows of an export, by id, as maps of column to cell.
fn export_rows(text: &str) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(headers.iter().collect::<Vec<_>>().join(","), HEADER);
    records_by_header(reader)
}

fn ids(rows: &[HashMap<String, String>]) -> Vec<u64> {
    rows.iter().map(|r| r["id"].parse().unwrap()).collect()
}

/// Rewrites an export with some rows' flag and reason changed.
fn edited(text: &str, changes: &[(u64, &str, &str)]) -> String {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(reader.headers().unwrap()).unwrap();
    for record in reader.records() {
        let mut cells: Vec<String> = record.unwrap().iter().map(str::to_owned).collect();
        let id: u64 = cells[0].parse().unwrap();
        if let Some((_, flag, reason)) = changes.iter().find(|(at, _, _)| *at == id) {
            cells[1] = (*flag).to_owned();
            cells[2] = (*reason).to_owned();
            if *flag == "true" {
                // A service account is linked to nobody (linkedUser).
                cells[6] = String::new();
            }
        }
        writer.write_record(&cells).unwrap();
    }
    String::from_utf8(writer.into_inner().unwrap()).unwrap()
}

#[test]
fn the_review_round_trip_sends_only_the_edits_and_its_undo_restores_the_export() {
    let sim = simulator(|c| c.identities = 120);
    let work = Workdir::new();
    let export = |name: &str| {
        let run = Export::on(&sim).within(&work).args(["-o", name]).run();
        assert_eq!(run.code, 0, "{}", run.stderr);
        std::fs::read_to_string(work.path(name)).unwrap()
    };
    let first = export("first.csv");
    let rows = export_rows(&first);
    assert_eq!(
        ids(&rows),
        (1..=120).collect::<Vec<_>>(),
        "every id, sorted"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(work.path("first.csv"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Blank reasons of rows a reviewer marked true come from --reason-if-true; unmarked
    // rows need none while they stay unmarked.
    let review = ["--reason-if-true", "Q4 review: automation"];
    let apply = |input: &str, extra: &[&str]| {
        let run = Apply::on(&sim)
            .within(&work)
            .file(input)
            .args(["--reconcile"])
            .args(extra)
            .report(&format!("{input}.report.csv"))
            .run();
        assert_eq!(run.code, 0, "{input}: {}", run.stderr);
    };

    // Unedited, and with no reason given for anything: nothing to send.
    apply("first.csv", &[]);
    assert_eq!(sim.stats.puts.load(Ordering::Relaxed), 0);

    // Three decisions: an unmarked bot and a person marked, a seeded bot unmarked.
    let changes = [
        (44, "true", "Deploy pipeline; found in the Q4 review"),
        (2, "true", ""),
        (7, "false", "Not automation after all"),
    ];
    work.write("edited.csv", &edited(&first, &changes));
    let mut with_undo = review.to_vec();
    with_undo.extend_from_slice(&["--undo", "undo.csv"]);
    apply("edited.csv", &with_undo);
    assert_eq!(
        sim.applied(),
        // Id 2, a person marked, is unlinked first: two PUTs.
        HashMap::from([(2, 2), (7, 1), (44, 1)]),
        "exactly the three edited rows"
    );
    let after = export_rows(&export("after.csv"));
    let row = |rows: &[HashMap<String, String>], id: u64| rows[id as usize - 1].clone();
    assert_eq!(
        row(&after, 2)["serviceAccountReason"],
        "Q4 review: automation"
    );
    assert_eq!(row(&after, 44)["serviceAccount"], "true");
    assert_eq!(row(&after, 7)["serviceAccount"], "false");

    // The undo file puts everything back as the first export showed it.
    apply("undo.csv", &[]);
    assert_eq!(sim.applied(), HashMap::from([(2, 4), (7, 2), (44, 2)]));
    // Every cell but `exportedAt`, the time of each read.
    let without_time = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.rsplit_once(',').map_or(l, |(rest, _)| rest).to_owned())
            .collect()
    };
    assert_eq!(without_time(&export("second.csv")), without_time(&first));
}

#[test]
fn export_suggests_the_unmarked_automation_accounts_and_says_why() {
    let sim = simulator(|c| c.identities = 120);
    let work = Workdir::new();
    let run = Export::on(&sim).within(&work).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = export_rows(&run.stdout);
    let by_id = |id: u64| rows[id as usize - 1].clone();
    // 44 and 94 are automation nobody marked; 19 is a person not linked to a Drata user.
    assert_eq!(
        by_id(44)["suggestion"],
        "no linked user; no email; name contains \"deploy\", \"bot\""
    );
    assert_eq!(by_id(94)["username"], "ci-runner-94");
    assert_eq!(
        by_id(94)["suggestion"],
        "no linked user; no email; name contains \"ci\", \"runner\""
    );
    assert_eq!(by_id(19)["linkedUser"], "");
    assert_eq!(by_id(19)["suggestion"], "", "one weak clue is not enough");
    let person = by_id(1);
    assert_eq!(person["username"], "alice.nguyen");
    assert_eq!(person["linkedUser"], "alice.nguyen@example.com");
    assert_eq!(person["connection"], "AWS aws-prod");
    assert_eq!(person["hasMfa"], "true");
    assert_eq!(person["connectedAt"], "2025-01-02T08:00:00.000Z");
    assert_eq!(person["suggestion"], "");
    assert_eq!(by_id(97)["disconnectedAt"], "2026-09-30T17:00:00.000Z");
    let marked = by_id(7);
    assert_eq!(
        (
            marked["serviceAccount"].as_str(),
            marked["serviceAccountReason"].as_str(),
            marked["suggestion"].as_str()
        ),
        ("true", "Seeded: automation account", ""),
        "marked identities get no suggestion"
    );
    let suggested: Vec<u64> = rows
        .iter()
        .filter(|r| !r["suggestion"].is_empty())
        .map(|r| r["id"].parse().unwrap())
        .collect();
    assert_eq!(suggested, [44, 94]);
}

#[test]
fn export_filters_by_flag_client_type_and_connection() {
    let sim = simulator(|c| c.identities = 120);
    let work = Workdir::new();
    let export = |extra: &[&str]| {
        let run = Export::on(&sim).within(&work).args(extra).run();
        assert_eq!(run.code, 0, "{extra:?}: {}", run.stderr);
        export_rows(&run.stdout)
    };
    let unmarked = export(&["--only", "unmarked"]);
    assert_eq!(unmarked.len(), 120 - 17);
    assert!(unmarked.iter().all(|r| r["serviceAccount"] == "false"));
    let marked = export(&["--only", "marked"]);
    assert_eq!(ids(&marked), (1..=17).map(|n| n * 7).collect::<Vec<_>>());
    let gcp = export(&["--client-type", "gcp"]);
    assert_eq!(gcp.len(), 40);
    assert!(gcp.iter().all(|r| r["connection"] == "GCP gcp-main"));
    assert_eq!(
        ids(&export(&["--connection", "AZURE-corp"])),
        ids(&export(&["--connection", "3"]))
    );
    let both = export(&["--client-type", "AWS", "--only", "marked"]);
    assert!(both
        .iter()
        .all(|r| r["connection"] == "AWS aws-prod" && r["serviceAccount"] == "true"));
    assert_eq!(
        export(&["--client-type", "AWS", "--connection", "gcp-main"]).len(),
        0
    );
}

#[test]
fn the_listing_is_read_in_ceil_n_plus_1_over_50_gets() {
    for (identities, gets) in [(0u64, 1u64), (50, 2), (51, 2), (120, 3)] {
        let sim = simulator(|c| c.identities = identities);
        let work = Workdir::new();
        let run = Export::on(&sim).within(&work).run();
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(export_rows(&run.stdout).len() as u64, identities);
        assert_eq!(
            sim.stats.lists.load(Ordering::Relaxed),
            gets,
            "{identities}"
        );
        assert_eq!(sim.stats.puts.load(Ordering::Relaxed), 0);
    }
}

#[test]
fn excel_csv_has_a_bom_and_crlf() {
    let sim = simulator(|c| c.identities = 10);
    let work = Workdir::new();
    let run = Export::on(&sim)
        .within(&work)
        .args(["--excel", "-o", "excel.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bytes = std::fs::read(work.path("excel.csv")).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBFid,serviceAccount,"));
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert_eq!(text.matches("\r\n").count(), 11, "a header and ten rows");
    assert_eq!(text.matches('\n').count(), 11, "no bare LF");
    assert_eq!(export_rows(&text.replace("\r\n", "\n")).len(), 10);
    // The same file is valid input as it is.
    let run = Validate::offline()
        .within(&work)
        .file("excel.csv")
        .args(["--reason", "x"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn cells_are_formula_safe_and_safe_reasons_round_trip_unchanged() {
    let listing = r#"{"data":[
        {"id":5,"username":"=cmd|' /C calc'!A0","email":"@evil.example","serviceAccount":"2026-01-01T00:00:00.000Z",
         "serviceAccountReason":"-- legacy CI","user":null,"connection":{"id":"1","clientType":"AWS","clientAlias":"+prod"}},
        {"id":6,"username":"dana","email":"dana@example.com","serviceAccount":null,"user":{"email":"dana@example.com"},
         "connection":{"id":1,"clientType":"AWS","clientAlias":"+prod"}}
    ],"page":1,"limit":50,"total":2}"#;
    let server = TestServer::scripted(move |seen, _| {
        if seen.method == "GET" {
            Reply::json(200, listing)
        } else {
            Reply::identity(seen.id().unwrap())
        }
    });
    let work = Workdir::new();
    let run = Export::on(&server)
        .within(&work)
        .args(["-o", "safe.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(work.path("safe.csv")).unwrap();
    let rows = export_rows(&text);
    assert_eq!(rows[0]["username"], "'=cmd|' /C calc'!A0");
    assert_eq!(rows[0]["email"], "'@evil.example");
    assert_eq!(rows[0]["serviceAccountReason"], "'-- legacy CI");
    assert_eq!(
        rows[0]["connection"], "AWS +prod",
        "only a cell's start is risky"
    );
    // The quote is read back off: the unedited file changes nothing.
    let run = Apply::on(&server)
        .within(&work)
        .file("safe.csv")
        .args(["--reconcile", "--reason", "x", "--report", "r.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        server.seen().iter().filter(|s| s.method == "PUT").count(),
        0,
        "{:?}",
        read_report(&work.path("r.csv"))
    );
}

#[test]
fn the_workbook_has_one_sheet_a_frozen_filterable_header_and_a_flag_drop_down() {
    let sim = simulator(|c| c.identities = 30);
    let work = Workdir::new();
    let run = Export::on(&sim)
        .within(&work)
        .args(["-o", "review.xlsx"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let file = std::fs::File::open(work.path("review.xlsx")).unwrap();
    let mut zip = zip::ZipArchive::new(file).expect("an xlsx is a zip");
    let mut read = |name: &str| {
        let mut text = String::new();
        zip.by_name(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .read_to_string(&mut text)
            .unwrap();
        text
    };
    assert!(read("xl/workbook.xml").contains(r#"<sheet name="identities""#));
    let sheet = read("xl/worksheets/sheet1.xml");
    assert!(sheet.contains(r#"state="frozen""#), "frozen header");
    assert!(sheet.contains("<autoFilter ref=\"A1:S31\""), "filterable");
    assert!(
        sheet.contains(r#"<dataValidation type="list""#) && sheet.contains("B2:B31"),
        "drop-down on the flag column"
    );
    assert!(sheet.contains(r#"&quot;true,false&quot;"#) || sheet.contains("\"true,false\""));
    let strings = read("xl/sharedStrings.xml");
    assert!(strings.contains("alice.nguyen"));
    assert!(strings.contains("Seeded: automation account"));
    // Without a file, a workbook is refused before any request.
    let run = Export::on(&sim)
        .within(&work)
        .args(["--format", "xlsx"])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("-o PATH"), "{}", run.stderr);
}

#[test]
fn a_killed_export_leaves_nothing_under_the_final_name() {
    // Slow pages: the export is still reading the listing when it is killed.
    let sim = simulator(|c| {
        c.identities = 400;
        c.latency = std::time::Duration::from_millis(300);
    });
    let work = Workdir::new();
    let mut started = Export::on(&sim)
        .within(&work)
        .args(["-o", "exp.csv"])
        .spawn();
    // Killed once the first page was asked for, so once the output was set up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sim.stats.requests.load(Ordering::Relaxed) == 0 {
        assert!(std::time::Instant::now() < deadline, "no request came");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    started.child.kill().unwrap(); // SIGKILL on Unix, TerminateProcess on Windows
    let _ = started.child.wait();
    assert!(
        !work.path("exp.csv").exists(),
        "nothing under the final name"
    );
    let run = Export::on(&sim).within(&work).args(["-o", "exp.csv"]).run();
    assert_eq!(run.code, 0, "the rerun needs no --force: {}", run.stderr);
    let written = std::fs::read_to_string(work.path("exp.csv")).unwrap();
    assert_eq!(export_rows(&written).len(), 400);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(work.path("exp.csv"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn an_existing_file_is_kept_unless_forced_and_a_symlink_is_never_followed() {
    let sim = simulator(|c| c.identities = 3);
    let work = Workdir::new();
    work.write("taken.csv", "keep me\n");
    let run = Export::on(&sim)
        .within(&work)
        .args(["-o", "taken.csv"])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(work.path("taken.csv")).unwrap(),
        "keep me\n"
    );
    assert_eq!(
        sim.stats.requests.load(Ordering::Relaxed),
        0,
        "refused before any request"
    );
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(work.path("taken.csv"), work.path("link.csv")).unwrap();
        // Only a regular file is ever replaced, even with --force.
        let run = Export::on(&sim)
            .within(&work)
            .args(["-o", "link.csv", "--force"])
            .run();
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert_eq!(
            std::fs::read_to_string(work.path("taken.csv")).unwrap(),
            "keep me\n"
        );
        let link = std::fs::symlink_metadata(work.path("link.csv")).unwrap();
        assert!(link.file_type().is_symlink(), "the link is left as it is");
    }
}

#[test]
fn a_listing_that_cannot_be_read_exits_3_and_leaves_no_file() {
    let server = TestServer::scripted(|_, _| Reply::json(401, r#"{"message":"Unauthorized"}"#));
    let work = Workdir::new();
    let run = Export::on(&server)
        .within(&work)
        .args(["-o", "out.csv"])
        .key("k3y-s3cret-401")
        .run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(!work.path("out.csv").exists());
    assert!(!run.stderr.contains("k3y-s3cret"), "{}", run.stderr);
}

#[test]
fn a_closed_standard_output_ends_quietly() {
    // 3,000 rows (about 350 KB) are far more than a pipe and the CSV writer's buffer hold:
    // the export is still writing rows when the reader goes away, as with `| head -1`.
    let sim = simulator(|c| c.identities = 3000);
    let work = Workdir::new();
    let url = sim.base_url();
    let mut command = command(
        work.dir.path(),
        &["export", "--base-url", &url, "--rate", "unlimited"],
    );
    command
        .env("DRATA_API_KEY", SIM_TOKEN)
        .stdout(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"id,serviceAccount"));
    drop(stdout);
    let run = finish(child);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(!run.stderr.contains("error"), "{}", run.stderr);
}
