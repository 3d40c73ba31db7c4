//! The end of a run: the check of every row sent against the state read again, the last
//! guard of "rows in == rows out", the summary on standard error and in its file, the
//! evidence record, and the exit code.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::Run;
use crate::config::{Mode, RunConfig};
use crate::drata::{CurrentState, Users};
use crate::engine;
use crate::exit;
use crate::field;
use crate::model::{
    ConcurrencyFigures, LatencyFigures, Outcome, Previous, RecordFile, ReportRow, StopReason, Tally,
};
use crate::output::{
    checked_key, counts, rewrite_checked, EvidenceFormat, EvidenceRecorder, FileDigest, OutputLock,
    RunContext, Sink, Summary, UndoWriter,
};
use crate::text::{sha256_file, shell_quote};

/// What is still to be written once every row is in the report.
pub(super) struct Unwritten {
    /// The outputs' paths, held until the last is written.
    pub locks: Vec<OutputLock>,
    pub report_path: PathBuf,
    pub summary: Option<Sink>,
    pub evidence: Option<(EvidenceRecorder, Sink)>,
    pub undo: Option<UndoWriter>,
    /// Rows a request was sent for, settled by the check after the run.
    pub sent: Vec<ReportRow>,
    /// Rows Drata changed since the export and the run left alone.
    pub drifted: Vec<ReportRow>,
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
    let mut unwritten = Vec::new();
    if let (Some(undo), Some(path)) = (files.undo, &config.apply.undo) {
        if let Err(e) = undo.close() {
            tracing::error!(
                "the undo file {} could not be written again: {e}",
                path.display()
            );
            unwritten.push(format!("undo file {}: {e}", path.display()));
        }
    }
    let mut summary = summarize(config, run, &tally, &files.report_path, files.unrecorded);
    summary.unwritten_outputs = unwritten;
    if let (Some((recorder, file)), Some(path)) = (files.evidence, &config.options.evidence) {
        let mut context = RunContext::current(command_line(), config.connect.kind.path_segment());
        context.rules = config.input.rules.as_ref().map(|path| FileDigest {
            path: path.display().to_string(),
            sha256: sha256_file(path),
        });
        let format = EvidenceFormat::for_path(path);
        let written = record_evidence(recorder, &files.sent, &files.drifted)
            .and_then(|recorder| recorder.finish(file, format, &summary, &context));
        if let Err(e) = written {
            tracing::error!("cannot write the evidence file {}: {e}", path.display());
            summary
                .unwritten_outputs
                .push(format!("evidence file {}: {e}", path.display()));
        }
    }
    // An output the run could not write makes it fail, whatever its rows did.
    if !summary.unwritten_outputs.is_empty() && summary.exit_code == exit::SUCCESS {
        summary.exit_code = exit::ROW_PROBLEMS;
    }
    config.output.console().summary(&summary);
    if let (Some(file), Some(path)) = (files.summary, &config.options.summary_json) {
        if let Err(e) = write_summary(file, &summary) {
            tracing::error!("cannot write the summary {}: {e}", path.display());
            drop(files.locks);
            return summary.exit_code.max(exit::ROW_PROBLEMS);
        }
    }
    // Every output is written: another run may name them now.
    drop(files.locks);
    summary.exit_code
}

fn record_evidence(
    mut recorder: EvidenceRecorder,
    sent: &[ReportRow],
    drifted: &[ReportRow],
) -> std::io::Result<EvidenceRecorder> {
    let mut changed: Vec<&ReportRow> = sent
        .iter()
        .filter(|row| row.outcome == Outcome::Updated)
        .collect();
    changed.sort_by_key(|row| (row.id(), row.line));
    for row in changed {
        recorder.record(row)?;
    }
    for row in sent.iter().filter(|row| row.partly_applied()) {
        recorder.record_partly(row)?;
    }
    for row in drifted {
        recorder.record_drift(row)?;
    }
    Ok(recorder)
}

/// After the PUTs, reads the state again (the same defensive listing) and checks every row
/// sent: `verified` says whether Drata holds its desired state; a row applied behind
/// errors is `updated`; a 2xx that Drata does not show is WARNed and fails the run. The
/// undo file only grows: every row that may have changed Drata stays in it, whatever the
/// check reads: its baseline is what the run may have left (a field answered 2xx or
/// without a certain refusal as sent, the rest as before), never restated from a read
/// that may lag behind the writes. Skipped with `--no-verify`, and when the run stopped
/// (nothing more may be sent).
pub(super) async fn verify(
    config: &RunConfig,
    run: &Run,
    tally: &mut Tally,
    files: &mut Unwritten,
) {
    if config.mode != Mode::Apply || files.sent.is_empty() {
        return;
    }
    if !config.verify() {
        tracing::info!(
            rows = files.sent.len(),
            "the rows sent were not checked (--no-verify)"
        );
        return;
    }
    if run.state_refused {
        tracing::warn!(
            rows = files.sent.len(),
            "the state could not be read: the rows sent were not checked against Drata"
        );
        return;
    }
    let Some(session) = run.session.as_ref().filter(|_| !run.control.is_stopped()) else {
        tracing::warn!(
            rows = files.sent.len(),
            "the run stopped: the rows sent were not checked against Drata"
        );
        return;
    };
    let listing = match engine::fetch(&session.engine).await {
        Ok(listing) => listing,
        Err(e) => {
            tracing::warn!(
                "the rows sent could not be checked: the state could not be read again ({e})"
            );
            return;
        }
    };
    tracing::info!(
        rows = files.sent.len(),
        requests = listing.pages,
        "state read again to check the rows sent"
    );
    let users = run.users.as_deref();
    for row in &mut files.sent {
        let before = row.clone();
        check_row(row, &listing.state, users);
        tally.remove_row(&before);
        tally.add_row(row);
        tally.add_check(row);
    }
    if tally.unverified_updates() > 0 {
        tracing::warn!(
            rows = tally.unverified_updates(),
            "{} rows answered 2xx are not shown by Drata yet (a listing that lags behind writes, or a change Drata did not keep): they stay in the undo file, and the run fails",
            tally.unverified_updates()
        );
    }
    let checked: HashMap<(u64, u64), &ReportRow> = files
        .sent
        .iter()
        .filter_map(|row| checked_key(row).map(|key| (key, row)))
        .collect();
    if let Err(e) = rewrite_checked(&files.report_path, &checked) {
        run.control.stop(StopReason::ReportFailed {
            file: RecordFile::Report,
            source: std::sync::Arc::new(e),
        });
    }
}

/// Settles one row sent against the state read after the run; true when Drata holds what
/// the row sent: the flag and reason when they were sent, the link when it was. A decision
/// not sent (unedited, drifted) is Drata's to keep, so it is not compared.
fn check_row(row: &mut ReportRow, state: &CurrentState, users: Option<&Users>) -> bool {
    let current = row.id().and_then(|id| state.get(id));
    let now = current.map(|current| current.state(users));
    // Rows sent always say what they sent; were one not to, the whole row is compared.
    let sent = if row.sent.any() {
        row.sent
    } else {
        field::decided(&row.wanted())
    };
    let applied = now
        .as_ref()
        .is_some_and(|now| field::holds(&row.wanted(), now, sent));
    row.verified = Some(applied);
    let decides_link = row.link.is_some();
    row.checked = now.map(|now| {
        Box::new(Previous {
            link: now.link.filter(|_| decides_link),
            ..now
        })
    });
    // Only a 2xx, or an answer that proves nothing (a 5xx, a timeout), can have changed
    // Drata: a row whose requests were all refused for certain is never `updated`.
    let may_have_changed = row.answers.may_be_applied().any();
    match (row.outcome, applied) {
        (Outcome::Failed, true) if may_have_changed => {
            // Applied behind an error (a 502 after the commit, a timeout): it is done,
            // and the report says what the API answered.
            row.outcome = Outcome::Updated;
            row.failure = None;
            row.error = format!(
                "applied (Drata shows it after the run), though the API answered: {}",
                row.error
            );
            if let Some(current) = current {
                row.identity = current.view();
            }
        }
        (Outcome::Failed, true) => {
            // Refused, and Drata holds the row all the same (a colleague, or an earlier
            // run): nothing this run did, so `unchanged`, the refusal kept in the error.
            row.outcome = Outcome::Unchanged;
            row.failure = None;
            row.error = format!(
                "Drata already holds it (read after the run); the API refused the request: {}",
                row.error
            );
        }
        (Outcome::Updated, false) => {
            tracing::warn!(
                line = row.line,
                id = row.id(),
                "answered 2xx, but Drata does not show the change after the run (verified=no)"
            );
            row.error = "answered 2xx, but Drata does not show the change after the run".to_owned();
        }
        _ => {}
    }
    applied
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
        verified: tally.verified(),
        not_verified: tally.unverified_updates(),
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
        unwritten_outputs: Vec::new(),
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
