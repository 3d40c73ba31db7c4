//! The report, and the output files a run refuses to overwrite.

use crate::support::*;

#[test]
fn is_private_complete_spreadsheet_safe_and_not_overwritten_without_force() {
    let csv =
        "id,flag,reason\n1,true,=HYPERLINK(\"x\")\n2,true,+1\n3,true,@me\n4,true,-x\n5,true,ok\n";
    let work = Workdir::new();
    let sim = simulator(|_| {});
    let report = work.path("report.csv");
    let apply = || Apply::on(&sim).within(&work).input(csv);
    let first = apply().run();
    assert_eq!(first.code, 0, "{}", first.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&report).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let rows = read_report(&report);
    assert_eq!(rows.len(), 5);
    assert_eq!(line(&rows, 2)["reason"], "'=HYPERLINK(\"x\")");
    assert_eq!(line(&rows, 3)["reason"], "'+1");
    assert_eq!(line(&rows, 4)["reason"], "'@me");
    assert_eq!(line(&rows, 5)["reason"], "'-x");
    assert_eq!(line(&rows, 6)["reason"], "ok");
    let finished = &line(&rows, 6)["finished_at"];
    assert!(
        finished.ends_with('Z') && finished.contains('T'),
        "{finished}"
    );

    let again = apply().run();
    assert_eq!(again.code, 2, "an existing report is never overwritten");
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    assert_eq!(read_report(&report).len(), 5);

    let forced = apply().args(["--force"]).run();
    assert_eq!(forced.code, 0, "{}", forced.stderr);
}

#[test]
fn an_existing_summary_file_stops_the_run_before_anything_is_sent() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap()));
    let work = Workdir::new();
    work.write("s.json", "{}");
    work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let run = Apply::on(&server)
        .within(&work)
        .file("in.csv")
        .args(["--summary-json", "s.json", "--report", "r.csv"])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(server.seen().is_empty());
    assert!(!work.path("r.csv").exists(), "no report is left behind");
}
