//! One `apply` or `plan` run, wired end to end: validate the whole input (resolving
//! usernames and emails when needed), fetch the current state when needed, then stream
//! the input through the pool into the report, then summarize and decide the exit code.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use crate::api::ApiClient;
use crate::config::{KeySource, Mode, RunConfig, SimulatorConfig, Target};
use crate::evidence::{EvidenceRecorder, RunContext};
use crate::exit;
use crate::input::{
    self, conflict_message, InputFile, InputScan, Lookup, Record, RowReader, RowStatus,
    SnapshotReader, UNRESOLVED_ID,
};
use crate::pool::{self, Engine, PauseGate, RequestStats, RunControl, StopReason};
use crate::report::{
    self, ConsumeOptions, Outcome, Outputs, Progress, ReportRow, ReportWriter, UndoWriter,
};
use crate::resume::{self, DoneRows};
use crate::secret::ApiKey;
use crate::simulator::{self, RunningSimulator};
use crate::state::{self, CurrentState};
use crate::summary::{self, FileDigest, Summary};
use crate::throttle::AdaptiveRate;

/// Share of PUTs the in-process simulator of `--simulate` answers 500.
const SIMULATED_ERROR_RATE: f64 = 0.04;
/// Latency of the in-process simulator.
const SIMULATED_LATENCY_MS: u64 = 40;
/// Changes a plan prints before "and N more".
const CHANGES_SHOWN: usize = 20;

/// Prints the first problems of an input and their count.
pub fn print_problems(scan: &InputScan) {
    for problem in &scan.first_problems {
        eprintln!("  {problem}");
    }
    let shown = scan.first_problems.len() as u64;
    if scan.problem_count > shown {
        eprintln!("  … and {} more problems", scan.problem_count - shown);
    }
}

/// The server side of a run: the engine every request goes through, and what keeps the
/// in-process simulator alive.
struct Session {
    base_url: String,
    engine: Arc<Engine>,
    _simulator: Option<RunningSimulator>,
}

async fn connect(config: &RunConfig, control: &Arc<RunControl>) -> Result<Session, String> {
    let (base_url, key, simulator) = match &config.target {
        Target::Simulated => {
            let token: String = std::iter::repeat_with(fastrand::alphanumeric)
                .take(32)
                .collect();
            let sim = simulator::start(SimulatorConfig {
                listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                token: token.clone(),
                error_rate: SIMULATED_ERROR_RATE,
                latency: std::time::Duration::from_millis(SIMULATED_LATENCY_MS),
                seed: fastrand::u64(..),
                ..SimulatorConfig::default()
            })
            .await
            .map_err(|e| format!("cannot start the simulator: {e}"))?;
            let base = crate::config::parse_base_url(&sim.base_url()).map_err(|e| e.to_string())?;
            let key = ApiKey::new(&token).map_err(|e| e.to_string())?;
            tracing::info!(base_url = %base, "simulator started");
            (base, key, Some(sim))
        }
        Target::Remote { base_url, key } => {
            let key = match key {
                KeySource::Env(key) => key.clone()?,
                KeySource::File(path) => {
                    let (key, warning) = ApiKey::from_file(path).map_err(|e| e.to_string())?;
                    if let Some(warning) = warning {
                        tracing::warn!("{warning}");
                    }
                    key
                }
            };
            (base_url.clone(), key, None)
        }
    };
    let client = ApiClient::new(
        base_url.clone(),
        &key,
        config.kind,
        config.timeout,
        config.concurrency,
    )
    .map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()))?;
    let engine = Engine {
        client,
        limiter: pool::build_limiter(config.rate, config.burst),
        adaptive: std::sync::Mutex::new(AdaptiveRate::new(config.rate.interval())),
        pause: PauseGate::default(),
        control: Arc::clone(control),
        policy: config.retry,
        stats: RequestStats::default(),
    };
    Ok(Session {
        base_url: base_url.to_string(),
        engine: Arc::new(engine),
        _simulator: simulator,
    })
}

/// Fetches the current state; when it cannot be had, the run stops (exit 3).
async fn fetch_state(session: &Session, control: &RunControl) -> Option<Arc<CurrentState>> {
    match state::fetch(&session.engine).await {
        Ok(state) => {
            tracing::info!(
                identities = state.len(),
                requests = state.pages,
                "current state fetched"
            );
            Some(Arc::new(state))
        }
        Err(message) => {
            control.stop(StopReason::StateUnavailable(message));
            None
        }
    }
}

/// The report's id cell: empty for a row whose username or email was never resolved.
fn id_cell(id: u64) -> String {
    match id {
        UNRESOLVED_ID => String::new(),
        id => id.to_string(),
    }
}

/// What a row becomes, before the run's stop is taken into account.
enum Decision {
    Send(input::Row),
    Final(ReportRow),
}

/// Decides every row: invalid, duplicate, skipped by resume, unchanged or not found
/// against the current state, would update (plan), or to send (apply).
struct Planner {
    mode: Mode,
    scan: Arc<InputScan>,
    done: DoneRows,
    state: Option<Arc<CurrentState>>,
}

impl Planner {
    fn decide(&self, record: Record) -> Decision {
        let row = match record {
            Record::Invalid(bad) => {
                let message = bad.message();
                return Decision::Final(
                    ReportRow::new(bad.line, bad.id_cell, bad.flag_cell, bad.reason_cell)
                        .with_outcome(Outcome::Invalid, message),
                );
            }
            Record::Valid(row) => row,
        };
        let mut report = ReportRow::new(
            row.line,
            id_cell(row.id),
            row.flag.to_string(),
            row.reason.clone(),
        );
        match self.scan.status(&row) {
            RowStatus::Conflict { lines } => {
                let message = format!(
                    "column {}: {}",
                    self.scan.id_column,
                    conflict_message(row.id, lines)
                );
                return Decision::Final(report.with_outcome(Outcome::Invalid, message));
            }
            RowStatus::Duplicate { first_line } => {
                let message = format!("duplicate of line {first_line}");
                return Decision::Final(report.with_outcome(Outcome::Duplicate, message));
            }
            RowStatus::Send => {}
        }
        if self.done.contains(row.line, row.id, row.flag) {
            return Decision::Final(report.with_outcome(Outcome::Skipped, ""));
        }
        let Some(state) = &self.state else {
            return Decision::Send(row);
        };
        let Some(current) = state.get(row.id) else {
            return Decision::Final(match self.mode {
                Mode::Plan => report.with_outcome(Outcome::NotFound, "not found in Drata"),
                Mode::Apply => report.with_outcome(Outcome::Failed, "not found in Drata"),
            });
        };
        report.username = current.username.clone();
        report.email = current.email.clone();
        report.service_account_at = current.marked_at.clone();
        if current.is_as_desired(row.flag, &row.reason) {
            return Decision::Final(report.with_outcome(Outcome::Unchanged, ""));
        }
        match self.mode {
            Mode::Plan => Decision::Final(report.with_outcome(Outcome::WouldUpdate, "")),
            Mode::Apply => Decision::Send(row),
        }
    }

    /// Counts the rows that would change and describes the first ones, reading the
    /// input once more without sending anything.
    fn preview(
        &self,
        mut reader: RowReader<SnapshotReader>,
    ) -> Result<(u64, Vec<String>), input::InputError> {
        let mut changes = 0;
        let mut shown = Vec::new();
        while let Some(record) = reader.next_record() {
            let row = match self.decide(record?) {
                Decision::Send(row) => Some(row),
                Decision::Final(report) if report.outcome == Some(Outcome::WouldUpdate) => {
                    report.id.parse().ok().map(|id| input::Row {
                        line: report.line,
                        id,
                        flag: report.service_account == "true",
                        reason: report.reason,
                    })
                }
                Decision::Final(_) => None,
            };
            let Some(row) = row else { continue };
            changes += 1;
            if shown.len() < CHANGES_SHOWN {
                shown.push(self.describe_change(&row));
            }
        }
        Ok((changes, shown))
    }

    fn describe_change(&self, row: &input::Row) -> String {
        let desired = if row.flag {
            format!("service account ({:?})", row.reason)
        } else {
            "not a service account".to_owned()
        };
        match self.state.as_ref().and_then(|s| s.get(row.id)) {
            Some(current) => format!(
                "line {}  id {}  {} [{}]: {} → {desired}",
                row.line,
                row.id,
                current.username.as_deref().unwrap_or("(no username)"),
                current.connection,
                current.describe(),
            ),
            None => format!("line {}  id {}: → {desired}", row.line, row.id),
        }
    }
}

/// Pass two, on a blocking thread: every record becomes a job or a final report row.
struct Feed {
    reader: RowReader<SnapshotReader>,
    planner: Arc<Planner>,
    control: Arc<RunControl>,
    jobs: mpsc::Sender<input::Row>,
    results: mpsc::Sender<ReportRow>,
}

impl Feed {
    fn run(mut self) {
        while let Some(record) = self.reader.next_record() {
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    self.control.stop(StopReason::InputFailed(e.to_string()));
                    return;
                }
            };
            let report = match self.planner.decide(record) {
                Decision::Final(report) => report,
                Decision::Send(row) if self.control.is_stopped() => {
                    not_attempted(&row, &self.control)
                }
                Decision::Send(row) => match self.jobs.blocking_send(row) {
                    Ok(()) => continue,
                    // No worker is left to take it.
                    Err(mpsc::error::SendError(row)) => not_attempted(&row, &self.control),
                },
            };
            if self.results.blocking_send(report).is_err() {
                return;
            }
        }
    }
}

fn not_attempted(row: &input::Row, control: &RunControl) -> ReportRow {
    ReportRow::new(
        row.line,
        id_cell(row.id),
        row.flag.to_string(),
        row.reason.clone(),
    )
    .with_outcome(Outcome::NotAttempted, control.stop_message())
}

/// Waits for SIGINT/SIGTERM: the first stops the run gracefully, the second exits now.
/// The handlers are installed once, before the input is read, so no signal is missed.
fn watch_signals(control: Arc<RunControl>) -> tokio::task::JoinHandle<()> {
    #[cfg(unix)]
    let streams = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    tokio::spawn(async move {
        #[cfg(unix)]
        let (Ok(mut interrupt), Ok(mut terminate)) = streams
        else {
            tracing::warn!("cannot install signal handlers; Ctrl-C will stop the run abruptly");
            return;
        };
        let mut signals = 0;
        loop {
            #[cfg(unix)]
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            #[cfg(not(unix))]
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            signals += 1;
            if signals == 1 {
                tracing::warn!("interrupted: finishing the requests in flight (again to exit now)");
                control.stop(StopReason::Interrupted);
            } else {
                std::process::exit(exit::INTERRUPTED.into());
            }
        }
    })
}

/// Runs blocking input work on the blocking pool; a panic there is an input error.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, input::InputError> + Send + 'static,
) -> Result<T, input::InputError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(input::InputError::Io {
            path: "input".to_owned(),
            source: std::io::Error::other(e.to_string()),
        })
    })
}

fn usage_error(message: impl std::fmt::Display) -> u8 {
    eprintln!("drata-svcacct: error: {message}");
    exit::USAGE
}

/// The optional output files, created (0600, exclusively) before the report.
struct ExtraFiles {
    summary: Option<std::fs::File>,
    undo: Option<std::fs::File>,
    evidence: Option<std::fs::File>,
}

impl ExtraFiles {
    fn paths(config: &RunConfig) -> [(&Option<std::path::PathBuf>, &'static str); 3] {
        [
            (&config.summary_json, "summary"),
            (&config.undo, "undo file"),
            (&config.evidence, "evidence file"),
        ]
    }

    /// All or nothing: on a failure, the files created so far are removed again.
    fn create(config: &RunConfig) -> Result<Self, String> {
        let mut created = Vec::new();
        for (path, what) in Self::paths(config) {
            match path {
                None => created.push(None),
                Some(path) => match report::create_private_file(path, config.force) {
                    Ok(file) => created.push(Some(file)),
                    Err(e) => {
                        for ((earlier, _), file) in Self::paths(config).iter().zip(&created) {
                            if let (Some(earlier), Some(_)) = (earlier, file) {
                                let _ = std::fs::remove_file(earlier);
                            }
                        }
                        return Err(format!("cannot create the {what} {}: {e}", path.display()));
                    }
                },
            }
        }
        let mut files = created.into_iter();
        Ok(Self {
            summary: files.next().flatten(),
            undo: files.next().flatten(),
            evidence: files.next().flatten(),
        })
    }

    /// Removes the (still empty) files when the run cannot start after all.
    fn remove(self, config: &RunConfig) {
        let files = [self.summary, self.undo, self.evidence];
        for ((path, _), file) in Self::paths(config).iter().zip(files) {
            if let (Some(path), Some(_)) = (path, file) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Runs `apply` or `plan` and returns the exit code.
pub async fn run(config: RunConfig) -> u8 {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let run_id = format!("{:016x}", fastrand::u64(..));
    let control = Arc::new(RunControl::default());
    let signals = watch_signals(Arc::clone(&control));

    tracing::debug!(input = %config.input.source.display(), "reading the input");
    // Reading the input blocks (standard input may never end): off the runtime thread,
    // so that Ctrl-C and SIGTERM are still heard.
    let source = config.input.source.clone();
    let input = match off_thread(move || InputFile::open(&source)).await {
        Ok(input) => Arc::new(input),
        Err(e) => return usage_error(e),
    };
    let needs_lookup = match input.reader(&config.input, None) {
        Ok(reader) => reader.needs_lookup(),
        Err(e) => return usage_error(e),
    };

    // Rows named by username or email are resolved through the listing before the scan.
    let mut session = None;
    let mut current = None;
    if needs_lookup {
        let connected = match connect(&config, &control).await {
            Ok(connected) => connected,
            Err(e) => return usage_error(e),
        };
        current = fetch_state(&connected, &control).await;
        session = Some(connected);
    }
    let lookup = current.clone().map(|state| state as Arc<dyn Lookup>);
    let scanned = {
        let (input, options, lookup) = (Arc::clone(&input), config.input.clone(), lookup.clone());
        off_thread(move || input::scan(&input, &options, lookup)).await
    };
    let scan = match scanned {
        Ok(scan) => Arc::new(scan),
        Err(e) => return usage_error(e),
    };
    let blocked = scan.invalid_rows > 0 && !config.skip_invalid;
    if scan.invalid_rows > 0 {
        eprintln!(
            "{}: {} of {} rows are invalid{}:",
            input.path(),
            scan.invalid_rows,
            scan.rows,
            if blocked {
                "; nothing will be sent (fix them or pass --skip-invalid)"
            } else {
                " and will be skipped"
            }
        );
        print_problems(&scan);
    }
    if blocked {
        control.stop(StopReason::InvalidInput {
            invalid_rows: scan.invalid_rows,
        });
    } else if session.is_none() {
        match connect(&config, &control).await {
            Ok(connected) => session = Some(connected),
            Err(e) => return usage_error(e),
        }
    }

    let done = match &config.resume_from {
        Some(path) => match resume::load_done_rows(path) {
            Ok(done) => done,
            Err(e) => return usage_error(e),
        },
        None => DoneRows::default(),
    };
    // The other output files first, so that a path that cannot be written stops the run
    // before anything is sent and before the report exists; filled in later.
    let extra_files = match ExtraFiles::create(&config) {
        Ok(files) => files,
        Err(e) => return usage_error(e),
    };
    let created = match &config.report {
        Some(path) => report::create_private_file(path, config.force).map(|f| (path.clone(), f)),
        None => report::create_default_report(&config.input.source.stem(), started_at),
    };
    let (report_path, writer) =
        match created.and_then(|(path, file)| Ok((path, ReportWriter::new(file)?))) {
            Ok(created) => created,
            Err(e) => {
                let path = config.report.as_ref().map_or_else(
                    || {
                        format!(
                            "in {}",
                            std::env::current_dir().unwrap_or_default().display()
                        )
                    },
                    |p| p.display().to_string(),
                );
                extra_files.remove(&config);
                return usage_error(format!("cannot create the report {path}: {e}"));
            }
        };
    let ExtraFiles {
        summary: summary_file,
        undo: undo_file,
        evidence: evidence_file,
    } = extra_files;

    // The current state, for plan and --reconcile, once the input is known to be good.
    if let Some(session) = &session {
        if config.reconcile && current.is_none() && !control.is_stopped() {
            current = fetch_state(session, &control).await;
        }
    }
    let run_started = humantime::format_rfc3339_seconds(started_at).to_string();
    let undo = match (undo_file, &current) {
        (Some(file), Some(state)) => {
            match UndoWriter::new(file, Arc::clone(state), run_started.clone()) {
                Ok(undo) => Some(undo),
                Err(e) => {
                    control.stop(StopReason::ReportFailed(format!("undo file: {e}")));
                    None
                }
            }
        }
        _ => None,
    };
    let evidence = match &evidence_file {
        Some(_) => match EvidenceRecorder::new(current.clone().filter(|_| config.reconcile)) {
            Ok(recorder) => Some(recorder),
            Err(e) => {
                control.stop(StopReason::ReportFailed(format!("evidence file: {e}")));
                None
            }
        },
        None => None,
    };
    let planner = Arc::new(Planner {
        mode: config.mode,
        scan: Arc::clone(&scan),
        done,
        // Fetched for a lookup alone, the state does not make a run reconcile.
        state: current.clone().filter(|_| config.reconcile),
    });
    if !control.is_stopped() && (config.mode == Mode::Plan || config.max_changes.is_some()) {
        let preview = {
            let (input, options, lookup) =
                (Arc::clone(&input), config.input.clone(), lookup.clone());
            let planner = Arc::clone(&planner);
            off_thread(move || {
                input
                    .reader(&options, lookup)
                    .and_then(|reader| planner.preview(reader))
            })
            .await
        };
        match preview {
            Err(e) => control.stop(StopReason::InputFailed(e.to_string())),
            Ok((changes, shown)) => {
                if config.mode == Mode::Plan && !config.output.quiet {
                    print_changes(changes, scan.rows, &shown);
                }
                if let Some(limit) = config.max_changes.filter(|limit| changes > *limit) {
                    eprintln!(
                        "drata-svcacct: refusing: {changes} rows would be updated, more than --max-changes {limit}; nothing was sent"
                    );
                    control.stop(StopReason::TooManyChanges { changes, limit });
                }
            }
        }
    }

    let reader = match input.reader(&config.input, lookup) {
        Ok(reader) => reader,
        Err(e) => return usage_error(e),
    };
    let (jobs_tx, jobs_rx) = mpsc::channel(config.concurrency * 2);
    let (results_tx, results_rx) = mpsc::channel(1024);
    let mut workers = session
        .as_ref()
        .filter(|_| config.mode == Mode::Apply)
        .map(|session| {
            pool::spawn_workers(
                Arc::clone(&session.engine),
                config.concurrency,
                jobs_rx,
                results_tx.clone(),
            )
        });
    let feed = Feed {
        reader,
        planner,
        control: Arc::clone(&control),
        jobs: jobs_tx,
        results: results_tx,
    };
    let feeder = tokio::task::spawn_blocking(move || feed.run());
    let progress = Progress::new(scan.rows, &config.output);
    let mut outputs = Outputs {
        report: writer,
        undo,
        evidence,
    };
    let consume_options = ConsumeOptions {
        max_failures: config.max_failures,
        run_id: run_id.clone(),
        row_events: config.output.log_format == crate::config::LogFormat::Json,
    };
    let (tally, _write_status) = report::consume(
        results_rx,
        &mut outputs,
        progress,
        &consume_options,
        &control,
    )
    .await;
    let feeder_result = feeder.await;
    let mut workers_failed = false;
    if let Some(workers) = workers.as_mut() {
        while let Some(joined) = workers.join_next().await {
            workers_failed |= joined.is_err();
        }
    }
    signals.abort();

    // The last guard of "rows in == rows out": a lost row (a panic, an unreadable input)
    // makes the run fail loudly instead of looking complete.
    if tally.total() != scan.rows || feeder_result.is_err() || workers_failed {
        let message = format!(
            "the report has {} rows for {} input rows",
            tally.total(),
            scan.rows
        );
        eprintln!("drata-svcacct: error: {message}");
        control.stop(StopReason::ReportFailed(message));
    }
    let stop = control.reason();
    let code = exit::for_run(&tally, stop.as_ref());
    let engine = session.as_ref().map(|s| &s.engine);
    let (requests, retries, rate_limited) =
        engine.map_or((0, 0, 0), |engine| engine.stats.snapshot());
    let elapsed = started.elapsed().as_secs_f64();
    let summary = Summary {
        tool: "drata-svcacct",
        version: env!("CARGO_PKG_VERSION"),
        run_id,
        command: config.mode.name(),
        input: FileDigest {
            path: input.path().to_owned(),
            sha256: Some(input.sha256().to_owned()),
        },
        report: FileDigest {
            path: report_path.display().to_string(),
            sha256: summary::sha256_file(&report_path),
        },
        base_url: session
            .as_ref()
            .map_or_else(String::new, |s| s.base_url.clone()),
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        finished_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        elapsed_seconds: (elapsed * 1000.0).round() / 1000.0,
        rows: tally.total(),
        counts: summary::counts(&tally),
        requests,
        retries,
        rate_limited,
        rate_reductions: engine.map_or(0, |engine| engine.rate_reductions()),
        effective_rate_per_minute: if elapsed > 0.0 {
            (requests as f64 * 60.0 / elapsed * 10.0).round() / 10.0
        } else {
            0.0
        },
        stopped: stop.as_ref().map(StopReason::not_attempted_message),
        resume_command: (config.mode == Mode::Apply && tally.left_to_do() > 0 && !blocked)
            .then(|| summary::resume_command(&config.argv, &report_path)),
        exit_code: code,
    };
    if let (Some(recorder), Some(file), Some(path)) =
        (outputs.evidence.take(), evidence_file, &config.evidence)
    {
        let context = RunContext::current(
            summary::command_line(&config.argv),
            config.kind.path_segment(),
        );
        if let Err(e) = recorder.finish(file, &summary, &context) {
            eprintln!(
                "drata-svcacct: error: cannot write the evidence file {}: {e}",
                path.display()
            );
        }
    }
    finish(&config, &summary, summary_file)
}

/// The plan's readable diff, on standard output.
fn print_changes(changes: u64, rows: u64, shown: &[String]) {
    if changes == 0 {
        println!("No change: every row is already in the desired state.");
        return;
    }
    println!("Would update {changes} of {rows} rows:");
    for change in shown {
        println!("  {change}");
    }
    if changes > shown.len() as u64 {
        println!(
            "  … and {} more (see the report)",
            changes - shown.len() as u64
        );
    }
}

/// Prints the summary (with `--quiet`, only when something needs attention) and fills
/// the summary file.
fn finish(config: &RunConfig, summary: &Summary, summary_file: Option<std::fs::File>) -> u8 {
    if !config.output.quiet || summary.exit_code != exit::SUCCESS {
        match config.output.log_format {
            crate::config::LogFormat::Text => eprint!("{}", summary.to_text()),
            // One JSON object on one line, like every other event.
            crate::config::LogFormat::Json => match serde_json::to_string(&summary.as_event()) {
                Ok(json) => eprintln!("{json}"),
                Err(e) => eprintln!("drata-svcacct: error: cannot encode the summary: {e}"),
            },
        }
    }
    if let (Some(mut file), Some(path)) = (summary_file, &config.summary_json) {
        let written = serde_json::to_vec_pretty(summary)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                use std::io::Write;
                file.write_all(&json)?;
                file.write_all(b"\n")?;
                file.sync_all()
            });
        if let Err(e) = written {
            eprintln!(
                "drata-svcacct: error: cannot write the summary {}: {e}",
                path.display()
            );
        }
    }
    summary.exit_code
}
