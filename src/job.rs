//! One `apply` run, wired end to end: validate the whole input, then stream it through
//! the pool into the report, then summarize and decide the exit code.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use crate::api::ApiClient;
use crate::config::{KeySource, RunConfig, SimulatorConfig, Target};
use crate::exit;
use crate::input::{
    self, conflict_message, InputFile, InputScan, Record, RowReader, RowStatus, SnapshotReader,
};
use crate::pool::{self, Engine, PauseGate, RequestStats, RunControl, StopReason};
use crate::report::{self, Outcome, Progress, ReportRow, ReportWriter};
use crate::resume::{self, DoneRows};
use crate::secret::ApiKey;
use crate::simulator::{self, RunningSimulator};
use crate::summary::{self, FileDigest, Summary};
use crate::throttle::AdaptiveRate;

/// Share of PUTs the in-process simulator of `--simulate` answers 500.
const SIMULATED_ERROR_RATE: f64 = 0.04;
/// Latency of the in-process simulator.
const SIMULATED_LATENCY_MS: u64 = 40;

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

/// Where requests go, and what keeps the simulator alive for the run.
struct Connection {
    base_url: String,
    client: ApiClient,
    _simulator: Option<RunningSimulator>,
}

async fn connect(config: &RunConfig) -> Result<Connection, String> {
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
    Ok(Connection {
        base_url: base_url.to_string(),
        client,
        _simulator: simulator,
    })
}

/// Everything the reader thread needs to turn input rows into jobs or final rows.
struct Feed {
    reader: RowReader<SnapshotReader>,
    scan: Arc<InputScan>,
    done: DoneRows,
    control: Arc<RunControl>,
    jobs: mpsc::Sender<input::Row>,
    results: mpsc::Sender<ReportRow>,
}

impl Feed {
    /// Pass two: every record becomes a job or a final report row, in input order.
    fn run(mut self) {
        while let Some(record) = self.reader.next_record() {
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    self.control.stop(StopReason::InputFailed(e.to_string()));
                    return;
                }
            };
            let report = match record {
                Record::Invalid(bad) => {
                    let message = bad.message();
                    ReportRow::new(bad.line, bad.id_cell, bad.flag_cell, bad.reason_cell)
                        .with_outcome(Outcome::Invalid, message)
                }
                Record::Valid(row) => {
                    let report = ReportRow::new(
                        row.line,
                        row.id.to_string(),
                        row.flag.to_string(),
                        row.reason.clone(),
                    );
                    match self.scan.status(&row) {
                        RowStatus::Conflict { lines } => report.with_outcome(
                            Outcome::Invalid,
                            format!(
                                "column {}: {}",
                                self.scan.id_column,
                                conflict_message(row.id, lines)
                            ),
                        ),
                        RowStatus::Duplicate { first_line } => report.with_outcome(
                            Outcome::Duplicate,
                            format!("duplicate of line {first_line}"),
                        ),
                        RowStatus::Send if self.done.contains(row.line, row.id, row.flag) => {
                            report.with_outcome(Outcome::Skipped, "")
                        }
                        RowStatus::Send if self.control.is_stopped() => {
                            report.with_outcome(Outcome::NotAttempted, self.stop_message())
                        }
                        RowStatus::Send => match self.jobs.blocking_send(row) {
                            Ok(()) => continue,
                            // No worker is left to take it.
                            Err(_) => {
                                report.with_outcome(Outcome::NotAttempted, self.stop_message())
                            }
                        },
                    }
                }
            };
            if self.results.blocking_send(report).is_err() {
                return;
            }
        }
    }

    fn stop_message(&self) -> String {
        self.control
            .reason()
            .map_or_else(|| "not sent".to_owned(), |r| r.not_attempted_message())
    }
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

fn usage_error(message: impl std::fmt::Display) -> u8 {
    eprintln!("drata-svcacct: error: {message}");
    exit::USAGE
}

/// Runs `apply` and returns the exit code.
pub async fn apply(config: RunConfig) -> u8 {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let control = Arc::new(RunControl::default());
    let signals = watch_signals(Arc::clone(&control));

    let input = match InputFile::open(&config.input.source) {
        Ok(input) => input,
        Err(e) => return usage_error(e),
    };
    let scan = match input::scan(&input, &config.input) {
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

    let connection = if blocked {
        None
    } else {
        match connect(&config).await {
            Ok(connection) => Some(connection),
            Err(e) => return usage_error(e),
        }
    };
    let done = match &config.resume_from {
        Some(path) => match resume::load_done_rows(path) {
            Ok(done) => done,
            Err(e) => return usage_error(e),
        },
        None => DoneRows::default(),
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
                return usage_error(format!("cannot create the report {path}: {e}"));
            }
        };
    // Created now, so that a summary path that cannot be written stops the run before
    // anything is sent; filled in at the end.
    let summary_file = match &config.summary_json {
        Some(path) => match report::create_private_file(path, config.force) {
            Ok(file) => Some(file),
            Err(e) => {
                return usage_error(format!("cannot create the summary {}: {e}", path.display()))
            }
        },
        None => None,
    };
    let reader = match input.reader(&config.input) {
        Ok(reader) => reader,
        Err(e) => return usage_error(e),
    };

    if blocked {
        control.stop(StopReason::InvalidInput {
            invalid_rows: scan.invalid_rows,
        });
    }
    let (jobs_tx, jobs_rx) = mpsc::channel(config.concurrency * 2);
    let (results_tx, results_rx) = mpsc::channel(1024);
    let engine = connection.as_ref().map(|connection| {
        Arc::new(Engine {
            client: connection.client.clone(),
            limiter: pool::build_limiter(config.rate, config.burst),
            adaptive: std::sync::Mutex::new(AdaptiveRate::new(config.rate.interval())),
            pause: PauseGate::default(),
            control: Arc::clone(&control),
            policy: config.retry,
            stats: RequestStats::default(),
        })
    });
    let mut workers = engine.as_ref().map(|engine| {
        pool::spawn_workers(
            Arc::clone(engine),
            config.concurrency,
            jobs_rx,
            results_tx.clone(),
        )
    });
    let feed = Feed {
        reader,
        scan: Arc::clone(&scan),
        done,
        control: Arc::clone(&control),
        jobs: jobs_tx,
        results: results_tx,
    };
    let feeder = tokio::task::spawn_blocking(move || feed.run());
    let progress = Progress::new(scan.rows, &config.output);
    let (tally, _write_status) =
        report::consume(results_rx, writer, progress, config.max_failures, &control).await;
    let _ = feeder.await;
    if let Some(workers) = workers.as_mut() {
        while workers.join_next().await.is_some() {}
    }
    signals.abort();

    let stop = control.reason();
    let code = exit::for_run(&tally, stop.as_ref());
    let (requests, retries, rate_limited) = engine
        .as_ref()
        .map_or((0, 0, 0), |engine| engine.stats.snapshot());
    let rate_reductions = engine.as_ref().map_or(0, |engine| engine.rate_reductions());
    let elapsed = started.elapsed().as_secs_f64();
    let report_shown = report_path.display().to_string();
    let summary = Summary {
        tool: "drata-svcacct",
        version: env!("CARGO_PKG_VERSION"),
        run_id: format!("{:016x}", fastrand::u64(..)),
        command: config.mode.name(),
        input: FileDigest {
            path: input.path().to_owned(),
            sha256: Some(input.sha256().to_owned()),
        },
        report: FileDigest {
            path: report_shown,
            sha256: summary::sha256_file(&report_path),
        },
        base_url: connection
            .as_ref()
            .map_or_else(String::new, |c| c.base_url.clone()),
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        finished_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        elapsed_seconds: (elapsed * 1000.0).round() / 1000.0,
        rows: tally.total(),
        counts: summary::counts(&tally),
        requests,
        retries,
        rate_limited,
        rate_reductions,
        effective_rate_per_minute: if elapsed > 0.0 {
            (requests as f64 * 60.0 / elapsed * 10.0).round() / 10.0
        } else {
            0.0
        },
        stopped: stop.as_ref().map(StopReason::not_attempted_message),
        resume_command: (tally.left_to_do() > 0 && !blocked)
            .then(|| summary::resume_command(&config.argv, &report_path)),
        exit_code: code,
    };
    finish(&config, &summary, summary_file)
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
