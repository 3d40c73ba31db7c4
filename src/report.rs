//! The report: the only writer of the per-row CSV and of the progress display.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::{LogFormat, MaxFailures, OutputOptions};
use crate::evidence::EvidenceRecorder;
use crate::pool::{RunControl, StopReason};
use crate::state::CurrentState;

/// The report's columns, in SPEC order.
pub const COLUMNS: [&str; 12] = [
    "line",
    "id",
    "service_account",
    "reason",
    "outcome",
    "http_status",
    "attempts",
    "error",
    "username",
    "email",
    "service_account_at",
    "finished_at",
];

/// The final state of one input row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Updated,
    Unchanged,
    Failed,
    Invalid,
    Duplicate,
    Skipped,
    NotAttempted,
    WouldUpdate,
    NotFound,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::Updated,
        Outcome::Unchanged,
        Outcome::Failed,
        Outcome::Invalid,
        Outcome::Duplicate,
        Outcome::Skipped,
        Outcome::NotAttempted,
        Outcome::WouldUpdate,
        Outcome::NotFound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Failed => "failed",
            Outcome::Invalid => "invalid",
            Outcome::Duplicate => "duplicate",
            Outcome::Skipped => "skipped",
            Outcome::NotAttempted => "not_attempted",
            Outcome::WouldUpdate => "would_update",
            Outcome::NotFound => "not_found",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// Outcomes that make the exit code 1.
    pub fn is_problem(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Invalid | Outcome::NotFound)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One report row. `finished_at` is stamped by the writer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportRow {
    pub line: u64,
    pub id: String,
    pub service_account: String,
    pub reason: String,
    pub outcome: Option<Outcome>,
    pub http_status: Option<u16>,
    pub attempts: u32,
    pub error: String,
    pub username: Option<String>,
    pub email: Option<String>,
    pub service_account_at: Option<String>,
}

impl ReportRow {
    pub fn new(line: u64, id: String, service_account: String, reason: String) -> Self {
        Self {
            line,
            id,
            service_account,
            reason,
            ..Self::default()
        }
    }

    pub fn with_outcome(mut self, outcome: Outcome, error: impl Into<String>) -> Self {
        self.outcome = Some(outcome);
        self.error = error.into();
        self
    }
}

/// Prefixes cells a spreadsheet would run as a formula.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Creates a file readable by its owner only, never following a symlink at `path` and
/// never replacing an existing file unless `force`.
pub fn create_private_file(path: &Path, force: bool) -> io::Result<File> {
    if force {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a directory is in the way",
                ))
            }
            // Removing first replaces a symlink instead of writing through it.
            Ok(_) => std::fs::remove_file(path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the file exists (pass --force to replace it)",
            )
        } else {
            e
        }
    })
}

/// The default report name: `<input stem>.report.<UTC timestamp>.csv`.
pub fn default_report_path(stem: &str, now: SystemTime) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(now)
        .to_string()
        .replace(['-', ':'], "");
    PathBuf::from(format!("{stem}.report.{stamp}.csv"))
}

/// Creates the default report; when a run in the same second took that name, the
/// next free `…-2.csv`, `…-3.csv` is used instead of failing or overwriting.
pub fn create_default_report(stem: &str, now: SystemTime) -> io::Result<(PathBuf, File)> {
    let first = default_report_path(stem, now);
    let base = first.to_string_lossy().trim_end_matches(".csv").to_owned();
    let mut last_error = None;
    for n in 1..=100 {
        let path = if n == 1 {
            first.clone()
        } else {
            PathBuf::from(format!("{base}-{n}.csv"))
        };
        match create_private_file(&path, false) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free report name")))
}

/// Row counts per outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    counts: [u64; 9],
}

impl Tally {
    pub fn add(&mut self, outcome: Outcome) {
        self.counts[outcome.index()] += 1;
    }

    pub fn get(&self, outcome: Outcome) -> u64 {
        self.counts[outcome.index()]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Rows whose request finished, for the `--max-failures` share.
    pub fn finished_requests(&self) -> u64 {
        self.get(Outcome::Updated) + self.get(Outcome::Failed)
    }

    /// `(outcome, count)` for every outcome seen.
    pub fn nonzero(&self) -> Vec<(Outcome, u64)> {
        Outcome::ALL
            .into_iter()
            .map(|o| (o, self.get(o)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Rows left to do: failed or not attempted.
    pub fn left_to_do(&self) -> u64 {
        self.get(Outcome::Failed) + self.get(Outcome::NotAttempted)
    }
}

/// The report writer: a CSV file flushed after every row.
pub struct ReportWriter {
    csv: csv::Writer<File>,
}

impl ReportWriter {
    pub fn new(file: File) -> io::Result<Self> {
        let mut csv = csv::WriterBuilder::new()
            .buffer_capacity(16 * 1024)
            .from_writer(file);
        csv.write_record(COLUMNS)?;
        csv.flush()?;
        Ok(Self { csv })
    }

    /// Writes one row and hands it to the OS at once, so a killed run keeps it.
    pub fn write(&mut self, row: &ReportRow, finished_at: SystemTime) -> io::Result<()> {
        let line = row.line.to_string();
        let status = row.http_status.map(|s| s.to_string()).unwrap_or_default();
        let attempts = row.attempts.to_string();
        let finished = humantime::format_rfc3339_millis(finished_at).to_string();
        let text = |value: &Option<String>| value.as_deref().unwrap_or("").to_owned();
        let cells: [&str; 12] = [
            &line,
            &row.id,
            &row.service_account,
            &row.reason,
            row.outcome.map_or("", Outcome::as_str),
            &status,
            &attempts,
            &row.error,
            &text(&row.username),
            &text(&row.email),
            &text(&row.service_account_at),
            &finished,
        ];
        self.csv
            .write_record(cells.iter().map(|c| spreadsheet_safe(c).into_owned()))?;
        self.csv.flush()
    }
}

/// When the first progress line is logged off a terminal.
const FIRST_PROGRESS_LOG: Duration = Duration::from_secs(2);

/// Progress: a bar on a terminal, log lines elsewhere, nothing when quiet.
pub struct Progress {
    bar: Option<ProgressBar>,
    log_every: Option<Duration>,
    next_log: Instant,
    started: Instant,
    total: u64,
}

impl Progress {
    pub fn new(total: u64, output: &OutputOptions) -> Self {
        let on_terminal = io::stderr().is_terminal() && output.log_format == LogFormat::Text;
        let bar = (!output.quiet && on_terminal).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{bar:30} {pos}/{len} rows  {msg}  ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self {
            log_every: (!output.quiet && bar.is_none()).then_some(output.progress_interval),
            bar,
            // The first line comes early, so a short run shows that it is moving.
            next_log: Instant::now() + output.progress_interval.min(FIRST_PROGRESS_LOG),
            started: Instant::now(),
            total,
        }
    }

    pub fn update(&mut self, tally: &Tally) {
        let done = tally.total();
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(format!(
                "updated {}  failed {}  {:.1} rows/s",
                tally.get(Outcome::Updated),
                tally.get(Outcome::Failed),
                done as f64 / elapsed
            ));
        } else if let Some(every) = self.log_every {
            if Instant::now() >= self.next_log {
                self.next_log = Instant::now() + every;
                tracing::info!(
                    done,
                    total = self.total,
                    updated = tally.get(Outcome::Updated),
                    failed = tally.get(Outcome::Failed),
                    rows_per_sec = format!("{:.1}", done as f64 / elapsed),
                    "progress"
                );
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The undo file: for every row actually updated, a row in the input format that puts
/// the identity back as it was before the run.
pub struct UndoWriter {
    csv: csv::Writer<File>,
    state: Arc<CurrentState>,
    /// Used in the reason of identities that were not service accounts.
    run_started: String,
}

impl UndoWriter {
    pub fn new(file: File, state: Arc<CurrentState>, run_started: String) -> io::Result<Self> {
        let mut csv = csv::Writer::from_writer(file);
        csv.write_record(["id", "serviceAccount", "serviceAccountReason"])?;
        csv.flush()?;
        Ok(Self {
            csv,
            state,
            run_started,
        })
    }

    /// Records the previous state of an updated row's identity, flushed at once.
    pub fn write(&mut self, row: &ReportRow) -> io::Result<()> {
        let Some(previous) = row.id.parse().ok().and_then(|id| self.state.get(id)) else {
            return Ok(());
        };
        let (flag, reason) = match &previous.marked_at {
            Some(_) => (
                "true",
                previous
                    .reason
                    .clone()
                    .unwrap_or_else(|| "Restored by drata-svcacct undo".to_owned()),
            ),
            None => (
                "false",
                format!(
                    "Restored by drata-svcacct undo: not a service account before the run of {}",
                    self.run_started
                ),
            ),
        };
        self.csv.write_record([
            spreadsheet_safe(&row.id).as_ref(),
            flag,
            spreadsheet_safe(&reason).as_ref(),
        ])?;
        self.csv.flush()
    }
}

/// Everything the consumer writes as rows finish.
pub struct Outputs {
    pub report: ReportWriter,
    pub undo: Option<UndoWriter>,
    pub evidence: Option<EvidenceRecorder>,
}

impl Outputs {
    /// Writes a row everywhere it belongs. A failing undo or evidence file is dropped
    /// and stops the run, but never keeps a row out of the report.
    fn write(&mut self, row: &ReportRow, control: &RunControl) -> io::Result<()> {
        if row.outcome == Some(Outcome::Updated) {
            if let Some(Err(e)) = self.undo.as_mut().map(|undo| undo.write(row)) {
                self.undo = None;
                control.stop(StopReason::ReportFailed(format!("undo file: {e}")));
            }
            if let Some(Err(e)) = self.evidence.as_mut().map(|evidence| evidence.record(row)) {
                self.evidence = None;
                control.stop(StopReason::ReportFailed(format!("evidence file: {e}")));
            }
        }
        self.report.write(row, SystemTime::now())
    }
}

/// How the consumer reports and when it stops the run.
pub struct ConsumeOptions {
    pub max_failures: MaxFailures,
    pub run_id: String,
    /// Per-row events at info level (JSON logs for pipelines); debug otherwise.
    pub row_events: bool,
}

/// Consumes finished rows until every sender is gone: writes each (report, undo,
/// evidence), keeps the tally, drives the progress display, logs one event per row, and
/// stops the run past `--max-failures`.
pub async fn consume(
    mut rows: mpsc::Receiver<ReportRow>,
    outputs: &mut Outputs,
    mut progress: Progress,
    options: &ConsumeOptions,
    control: &RunControl,
) -> (Tally, io::Result<()>) {
    let mut tally = Tally::default();
    let mut status = Ok(());
    while let Some(row) = rows.recv().await {
        let outcome = row.outcome.unwrap_or(Outcome::Failed);
        if status.is_ok() {
            if let Err(e) = outputs.write(&row, control) {
                control.stop(StopReason::ReportFailed(e.to_string()));
                status = Err(e);
            }
        }
        tally.add(outcome);
        macro_rules! row_event {
            ($level:ident) => {
                tracing::$level!(
                    run_id = %options.run_id,
                    line = row.line,
                    id = %row.id,
                    outcome = outcome.as_str(),
                    attempts = row.attempts,
                    status = row.http_status,
                    error = %row.error,
                    "row"
                )
            };
        }
        if options.row_events {
            row_event!(info);
        } else {
            row_event!(debug);
        }
        progress.update(&tally);
        let failed = tally.get(Outcome::Failed);
        if outcome == Outcome::Failed
            && options
                .max_failures
                .exceeded(failed, tally.finished_requests())
        {
            control.stop(StopReason::TooManyFailures {
                failed,
                finished: tally.finished_requests(),
            });
        }
    }
    progress.finish();
    (tally, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_prefixed() {
        for risky in ["=SUM(A1)", "+1", "-2", "@x", "\tx", "\rx"] {
            assert_eq!(spreadsheet_safe(risky), format!("'{risky}"));
        }
        for plain in ["", "abc", "1", "'=already"] {
            assert_eq!(spreadsheet_safe(plain), plain);
        }
    }

    #[test]
    fn default_report_names_carry_a_utc_stamp() {
        let at = httpdate::parse_http_date("Sun, 29 Nov 2026 01:06:17 GMT").unwrap();
        assert_eq!(
            default_report_path("review", at),
            PathBuf::from("review.report.20261129T010617Z.csv")
        );
    }

    #[test]
    fn outcomes_round_trip() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
    }
}
