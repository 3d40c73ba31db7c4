//! The one consumer: every finished row goes through here, into the report (and the
//! undo and evidence files), the tally, the progress display and the row log; past
//! `--max-failures` it stops the run.

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::config::MaxFailures;
use crate::engine::{Engine, RunControl};
use crate::model::{Outcome, RecordFile, ReportRow, StopReason, Tally};
use crate::output::{Progress, ReportWriter, UndoWriter};

/// Everything the consumer writes as rows finish.
pub(super) struct Outputs {
    pub report: ReportWriter,
    pub undo: Option<UndoWriter>,
}

impl Outputs {
    /// Writes a row everywhere it belongs. A failing undo file is dropped and stops the
    /// run, but never keeps a row out of the report. The evidence is written after the
    /// check that follows the run.
    fn write(&mut self, row: &ReportRow, control: &RunControl) -> io::Result<()> {
        if may_be_applied(row) {
            match self.undo.as_mut().map(|undo| undo.write(row)) {
                Some(Err(e)) => {
                    self.undo = None;
                    control.stop(StopReason::ReportFailed {
                        file: RecordFile::Undo,
                        source: Arc::new(e),
                    });
                }
                Some(Ok(false)) => tracing::warn!(
                    line = row.line,
                    id = row.id(),
                    "the undo file cannot restore this identity: it was not in Drata's listing, so its state before the run is unknown"
                ),
                Some(Ok(true)) | None => {}
            }
        }
        self.report.write(row, SystemTime::now())
    }
}

/// A row whose requests may have changed Drata: a request answered 2xx, or left without
/// an answer that proves it was refused (a timeout, a 5xx after the server may have
/// committed): what each request's answer proves (`model::Answers`).
pub(super) fn may_be_applied(row: &ReportRow) -> bool {
    row.answers.may_be_applied().any()
}

/// How the consumer reports and when it stops the run.
pub(super) struct ConsumeOptions {
    pub max_failures: MaxFailures,
    pub run_id: String,
    /// Per-row events at info level (JSON logs for pipelines); debug otherwise.
    pub row_events: bool,
}

fn log_row(row: &ReportRow, options: &ConsumeOptions) {
    macro_rules! row_event {
        ($level:ident) => {
            tracing::$level!(
                run_id = %options.run_id,
                line = row.line,
                id = row.id(),
                outcome = row.outcome.as_str(),
                attempts = row.attempts,
                status = row.http_status,
                error = %row.error,
                "row"
            )
        };
    }
    // A failed row needs a human: WARN, kept by -q and by log pipelines.
    if row.outcome == Outcome::Failed {
        row_event!(warn);
    } else if options.row_events {
        row_event!(info);
    } else {
        row_event!(debug);
    }
}

/// A row the report could not take: it still reaches the operator, on standard error,
/// with what Drata answered, so a confirmed change is never known only to Drata.
fn log_unrecorded(row: &ReportRow, options: &ConsumeOptions) {
    tracing::error!(
        run_id = %options.run_id,
        line = row.line,
        id = row.id(),
        outcome = row.outcome.as_str(),
        status = row.http_status,
        error = %row.error,
        "row not in the report (it could not be written)"
    );
}

/// What the consumer counted.
pub(super) struct Consumed {
    pub tally: Tally,
    /// Rows that are not in the report because it could not be written.
    pub unrecorded: u64,
    /// Rows a request was sent for, for the check after the run and the evidence.
    pub sent: Vec<ReportRow>,
    /// Rows Drata changed since the export and the run left alone, for the evidence.
    pub drifted: Vec<ReportRow>,
}

/// Consumes finished rows until every sender is gone; `engine`, when requests are sent,
/// feeds the progress display its in-flight limit and latencies.
pub(super) async fn consume(
    mut rows: mpsc::Receiver<ReportRow>,
    outputs: &mut Outputs,
    (mut progress, engine): (Progress, Option<&Engine>),
    options: &ConsumeOptions,
    control: &RunControl,
) -> Consumed {
    let mut tally = Tally::default();
    let mut unrecorded = 0;
    let (mut sent, mut drifted) = (Vec::new(), Vec::new());
    loop {
        // While no row arrives (a long pause), the display is still refreshed.
        let next = match progress.refresh_every() {
            Some(every) => tokio::time::timeout(every, rows.recv()).await,
            None => Ok(rows.recv().await),
        };
        let row = match next {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(_) => {
                progress.update(&tally, || engine.map(Engine::live));
                continue;
            }
        };
        let written = unrecorded == 0 && {
            match outputs.write(&row, control) {
                Ok(()) => true,
                Err(e) => {
                    control.stop(StopReason::ReportFailed {
                        file: RecordFile::Report,
                        source: Arc::new(e),
                    });
                    false
                }
            }
        };
        if !written {
            unrecorded += 1;
            log_unrecorded(&row, options);
        }
        tally.add_row(&row);
        log_row(&row, options);
        progress.update(&tally, || engine.map(Engine::live));
        let failed = tally.get(Outcome::Failed);
        if row.outcome == Outcome::Failed
            && options
                .max_failures
                .exceeded(failed, tally.finished_requests())
        {
            control.stop(StopReason::TooManyFailures {
                failed,
                finished: tally.finished_requests(),
            });
        }
        if row.attempts > 0 {
            sent.push(row);
        } else if row.outcome == Outcome::Drifted {
            drifted.push(row);
        }
    }
    progress.finish();
    Consumed {
        tally,
        unrecorded,
        sent,
        drifted,
    }
}
