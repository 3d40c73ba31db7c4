//! The end of a run: the last guard of "rows in == rows out", the summary on standard
//! error and in its file, the evidence record, and the exit code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::Run;
use crate::config::{Mode, RunConfig};
use crate::exit;
use crate::model::{ConcurrencyFigures, LatencyFigures, StopReason, Tally};
use crate::output::{counts, EvidenceRecorder, FileDigest, RunContext, Sink, Summary};
use crate::text::{sha256_file, shell_quote};

/// What is still to be written once every row is in the report.
pub(super) struct Unwritten {
    pub report_path: PathBuf,
    pub summary: Option<Sink>,
    pub evidence: Option<(EvidenceRecorder, Sink)>,
    /// A task that lost rows (a panic) ended.
    pub lost: bool,
    /// Rows that are not in the report because it could not be written.
    pub unrecorded: u64,
}

pub(super) fn finish(config: &RunConfig, run: &Run, tally: Tally, files: Unwritten) -> u8 {
    // The last guard of "rows in == rows out": a lost row (a panic, an unreadable input)
    // makes the run fail loudly instead of looking complete.
    if tally.total() != run.rows() || files.lost {
        run.control.stop(StopReason::RowsLost {
            reported: tally.total(),
            rows: run.rows(),
        });
    }
    let summary = summarize(config, run, &tally, &files.report_path, files.unrecorded);
    if let (Some((recorder, file)), Some(path)) = (files.evidence, &config.options.evidence) {
        let mut context = RunContext::current(command_line(), config.connect.kind.path_segment());
        context.rules = config
            .input
            .rules
            .as_ref()
            .map(|path| (path.display().to_string(), crate::text::sha256_file(path)));
        if let Err(e) = recorder.finish(file, &summary, &context) {
            tracing::error!("cannot write the evidence file {}: {e}", path.display());
        }
    }
    config.output.console().summary(&summary);
    if let (Some(file), Some(path)) = (files.summary, &config.options.summary_json) {
        if let Err(e) = write_summary(file, &summary) {
            tracing::error!("cannot write the summary {}: {e}", path.display());
        }
    }
    summary.exit_code
}

/// The command line as typed, shell-quoted (it never holds the key).
fn command_line() -> String {
    std::env::args_os()
        .map(|arg| shell_quote(&arg.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn summarize(
    config: &RunConfig,
    run: &Run,
    tally: &Tally,
    report_path: &Path,
    unrecorded: u64,
) -> Summary {
    let stop = run.control.reason();
    let code = exit::for_run(tally, stop.as_ref());
    let engine = run.session.as_ref().map(|s| &s.engine);
    let (requests, retries, rate_limited) =
        engine.map_or((0, 0, 0), |engine| engine.stats.snapshot());
    let elapsed = run.started.elapsed().as_secs_f64();
    // Nothing connected, nothing sent: no limit was ever in force.
    let (concurrency, latency_ms) = engine.map_or_else(
        || {
            let mode = config.options.concurrency.to_string();
            let unused = ConcurrencyFigures {
                mode,
                limit: 0,
                max: 0,
                reductions: 0,
            };
            (unused, LatencyFigures::default())
        },
        |engine| engine.concurrency_figures(),
    );
    Summary {
        tool: "drata-svcacct",
        version: env!("CARGO_PKG_VERSION"),
        run_id: run.run_id.clone(),
        command: config.mode.name(),
        input: FileDigest {
            path: run.input.path().to_owned(),
            sha256: Some(run.input.sha256().to_owned()),
        },
        report: FileDigest {
            path: report_path.display().to_string(),
            sha256: sha256_file(report_path),
        },
        base_url: run
            .session
            .as_ref()
            .map_or_else(String::new, |s| s.base_url.clone()),
        started_at: humantime::format_rfc3339_millis(run.started_at).to_string(),
        finished_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        elapsed_seconds: (elapsed * 1000.0).round() / 1000.0,
        rows: tally.total(),
        counts: counts(tally),
        requests,
        retries,
        rate_limited,
        rate_reductions: engine.map_or(0, |engine| engine.rate_reductions()),
        effective_rate_per_minute: if elapsed > 0.0 {
            (requests as f64 * 60.0 / elapsed * 10.0).round() / 10.0
        } else {
            0.0
        },
        concurrency,
        latency_ms,
        stopped: stop.as_ref().map(StopReason::cause),
        resume_command: resumable(config, run, tally, stop.as_ref(), unrecorded)
            .then(|| config.resume_command(report_path)),
        unrecorded_rows: unrecorded,
        exit_code: code,
    }
}

/// True when running the resume command can finish something: rows were left to do, and
/// not all of them failed for good (a 4xx that a retry cannot change), and the run was
/// not refused as a whole (invalid input, `--max-changes`), where the same command would
/// be refused again.
/// Rows not in the report count as left to do: the report cannot show them done. A run
/// on the in-process simulator has nothing to resume: the next one starts a fresh one.
fn resumable(
    config: &RunConfig,
    run: &Run,
    tally: &Tally,
    stop: Option<&StopReason>,
    unrecorded: u64,
) -> bool {
    let refused = run.blocked
        || matches!(
            stop,
            Some(StopReason::TooManyChanges { .. } | StopReason::InvalidInput { .. })
        );
    let curable = tally
        .left_to_do()
        .saturating_sub(tally.permanent_failures())
        + unrecorded;
    config.mode == Mode::Apply && !refused && curable > 0 && !config.is_simulated()
}

fn write_summary(mut sink: Sink, summary: &Summary) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(summary).map_err(std::io::Error::other)?;
    sink.write_all(&json)?;
    sink.write_all(b"\n")?;
    sink.finish()
}
