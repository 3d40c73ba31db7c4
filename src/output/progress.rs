//! Progress: a bar on a terminal, log lines elsewhere, nothing when quiet.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::summary::describe_latency;
use crate::model::{Live, Outcome, Tally};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProgressMode {
    Quiet,
    /// A bar on standard error, a terminal.
    Bar,
    /// A log line every so often (standard error is a file, a pipe or a journal).
    Log {
        every: Duration,
    },
}

/// When the first progress line is logged off a terminal.
const FIRST_PROGRESS_LOG: Duration = Duration::from_secs(2);

/// Progress: a bar on a terminal, log lines elsewhere, nothing when quiet.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    log_every: Option<Duration>,
    next_log: Instant,
    started: Instant,
    total: u64,
}

impl Progress {
    pub(crate) fn new(total: u64, mode: ProgressMode) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{bar:30} {pos}/{len} rows  {msg}  ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        let log_every = match mode {
            ProgressMode::Log { every } => Some(every),
            ProgressMode::Bar | ProgressMode::Quiet => None,
        };
        Self {
            bar,
            // The first line comes early, so a short run shows that it is moving.
            next_log: Instant::now() + log_every.unwrap_or_default().min(FIRST_PROGRESS_LOG),
            log_every,
            started: Instant::now(),
            total,
        }
    }

    /// Shows the rows done; `live` gives the engine's state when requests are being sent,
    /// asked for only when something is shown.
    pub(crate) fn update(&mut self, tally: &Tally, live: impl FnOnce() -> Option<Live>) {
        let done = tally.total();
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            let in_flight = live().map_or_else(String::new, |live| {
                format!(
                    "  in flight ≤{}  latency {}",
                    live.limit,
                    describe_latency(&live.latency)
                )
            });
            bar.set_message(format!(
                "updated {}  failed {}  {:.1} rows/s{in_flight}",
                tally.get(Outcome::Updated),
                tally.get(Outcome::Failed),
                done as f64 / elapsed
            ));
        } else if let Some(every) = self.log_every {
            if Instant::now() >= self.next_log {
                self.next_log = Instant::now() + every;
                let live = live();
                tracing::info!(
                    done,
                    total = self.total,
                    updated = tally.get(Outcome::Updated),
                    failed = tally.get(Outcome::Failed),
                    rows_per_sec = format!("{:.1}", done as f64 / elapsed),
                    in_flight_limit = live.map(|live| live.limit),
                    latency_p50_ms = live.and_then(|live| live.latency.p50),
                    latency_p95_ms = live.and_then(|live| live.latency.p95),
                    "progress"
                );
            }
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
