//! The report, and the output files a run refuses to overwrite.

use crate::support::*;

#[test]
fn is_private_complete_spreadsheet_safe_and_not_overwritten_without_force() {
    let csv =
        "id,flag,reason\n1,true,=HYPERLINK(\"x\")\n2,true,+1\n3,true,@me\n4,true,-x\n5,true,ok\n";
    let work = Workdir::new();
    let sim = simulator(|_| {});
    let input = work.write("in.csv", csv);
    let report = work.path("r.csv");
    let url = sim.base_url();
    let args = [
        "apply",
        input.to_str().unwrap(),
        "--base-url",
        &url,
        "--report",
        report.to_str().unwrap(),
    ];
    let first = drata(work.dir.path(), &args, &[("DRATA_API_KEY", SIM_TOKEN)]);
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

    let again = drata(work.dir.path(), &args, &[("DRATA_API_KEY", SIM_TOKEN)]);
    assert_eq!(again.code, 2, "an existing report is never overwritten");
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    assert_eq!(read_report(&report).len(), 5);

    let mut forced = args.to_vec();
    forced.push("--force");
    let forced = drata(work.dir.path(), &forced, &[("DRATA_API_KEY", SIM_TOKEN)]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
}

#[test]
fn an_existing_summary_file_stops_the_run_before_anything_is_sent() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap()));
    let work = Workdir::new();
    work.write("s.json", "{}");
    work.write("in.csv", "id,flag,reason\n1,true,a\n");
    let run = drata(
        work.dir.path(),
        &[
            "apply",
            "in.csv",
            "--base-url",
            &server.url,
            "--summary-json",
            "s.json",
            "--report",
            "r.csv",
        ],
        &[("DRATA_API_KEY", "k")],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(server.seen().is_empty());
    assert!(!work.path("r.csv").exists(), "no report is left behind");
}
