//! The run's outputs as their own: a second run naming one is refused, a full disk never
//! loses a confirmed change, and an output that cannot be written fails the run and is
//! named. Unix only: the tests hold files with the kernel's file-size limit and signals.
#![cfg(unix)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::*;

/// A disk that fills up mid-run, as the kernel's file-size limit makes it: writes past
/// `bytes` fail (SIGXFSZ ignored, so the write returns an error instead of killing).
#[cfg(unix)]
fn with_file_size_limit(command: &mut std::process::Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls (setrlimit, signal) run in the child.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(unix)]
#[test]
fn rows_confirmed_when_the_disk_is_full_still_reach_the_operator() {
    let sim = simulator(|_| {});
    // Read here, not by the builder: the disk may have cut the last row in the middle.
    let Finished { run, work, .. } = Apply::on(&sim)
        .input(rows_csv(1, 60))
        .args(["--concurrency", "1", "--report=cut.csv"])
        .no_report()
        .spawn_with(|command| with_file_size_limit(command, 4096))
        .finish();
    let in_report = read_cut_report(&work.path("cut.csv"));
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        in_report.len() < 60,
        "the limit cut the report: {}",
        in_report.len()
    );
    let logged: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("row not in the report"))
        .collect();
    // The row being written when the disk filled may stand cut short in the report: it
    // is logged too, and a resumed run treats a cut row as not done.
    let mut lines: Vec<u64> = in_report
        .iter()
        .filter_map(|row| row.get("line")?.parse().ok())
        .chain(logged.iter().filter_map(|l| {
            let rest = l.split("line=").nth(1)?;
            rest.split(' ').next()?.parse().ok()
        }))
        .collect();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(
        lines,
        (2..=61).collect::<Vec<u64>>(),
        "every row is in the report or on standard error:\n{}",
        run.stderr
    );
    // Every change Drata applied is on record somewhere the operator can see.
    let reported = ids_with(&in_report, "updated");
    for id in sim.applied().into_keys() {
        let on_stderr = logged
            .iter()
            .any(|l| l.contains(&format!("id={id} ")) && l.contains(r#"outcome="updated""#));
        assert!(
            reported.contains(&id) || on_stderr,
            "id {id} applied but recorded nowhere:\n{}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("NOT in the report"), "{}", run.stderr);
}

#[cfg(unix)]
#[test]
fn a_second_run_naming_an_output_of_a_running_one_is_refused_even_with_force() {
    let sim = simulator(|c| c.latency = Duration::from_millis(50));
    let work = Workdir::new();
    let first = Apply::on(&sim)
        .within(&work)
        .input(rows_csv(1, 20))
        .args(["--rate", "20/s", "--undo", "undo.csv"])
        .report("first.csv")
        .spawn();
    wait_until(Duration::from_secs(30), "the first run under way", || {
        report_rows_so_far(&work.path("first.csv")) >= 2
    });
    // Another input (a re-run script), the same undo file, --force.
    work.write("other.csv", &rows_csv(21, 22));
    let second = Apply::on(&sim)
        .within(&work)
        .file("other.csv")
        .args(["--undo", "undo.csv", "--force"])
        .report("second.csv")
        .run();
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("another drata-svcacct run is writing it"),
        "{}",
        second.stderr
    );
    assert!(
        !work.path("second.csv").exists(),
        "refused before any output"
    );
    let first = first.finish();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(
        sim.stats.puts.load(Ordering::Relaxed),
        20,
        "the second run sent nothing"
    );
    let undo = records(&work.path("undo.csv"));
    assert_eq!(undo.len(), 21, "the first run's undo file, whole: {undo:?}");
    // Once the first run ended, its outputs are free again (and no lock file is left).
    let leftovers: Vec<_> = std::fs::read_dir(work.path(""))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with("-lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[cfg(unix)]
#[test]
fn an_evidence_file_that_cannot_be_written_fails_the_run_and_is_named() {
    // Reasons that do not compress: the evidence workbook (changes and the whole report)
    // outgrows the file size limit, the report does not.
    let mut seed = 7_u64;
    let mut noise = |n: usize| -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                ALPHABET[(seed >> 58) as usize] as char
            })
            .collect()
    };
    let mut input = String::from("id,flag,reason\n");
    for id in 1..=12 {
        input.push_str(&format!("{id},true,{}\n", noise(1500)));
    }
    let sim = simulator(|_| {});
    let limit = 28_000;
    let run = Apply::on(&sim)
        .input(&input)
        .args(["--evidence", "ev.xlsx", "--summary-json", "summary.json"])
        .spawn_with(|command| with_file_size_limit(command, limit))
        .finish();
    let report = std::fs::metadata(run.path("report.csv")).unwrap().len();
    assert!(report < limit, "the report fits: {report}");
    assert_eq!(run.rows.len(), 12, "{}", run.stderr);
    assert!(
        run.rows.iter().all(|r| r["outcome"] == "updated"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.code, 1,
        "every row updated, but the evidence is missing: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("NOT WRITTEN: the evidence file"),
        "{}",
        run.stderr
    );
    let summary = run.summary();
    assert_eq!(summary["exit_code"], 1);
    let unwritten = summary["unwritten_outputs"][0].as_str().unwrap_or_default();
    assert!(unwritten.starts_with("evidence file"), "{summary}");
}
