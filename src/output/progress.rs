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

/// How often the bar is redrawn while no row arrives.
const BAR_REFRESH: Duration = Duration::from_secs(1);

/// Seconds left of a pause, rounded up: a pause shown as 0 s would still be running.
fn whole_seconds(left: Duration) -> u64 {
    left.as_secs() + u64::from(left.subsec_nanos() > 0)
}

/// A long pause on the progress line.
fn describe_pause(left: Duration) -> String {
    format!("paused {}s more for Retry-After", whole_seconds(left))
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
            let live = live();
            let paused = live
                .and_then(|live| live.paused)
                .map_or_else(String::new, |left| format!("{}  ", describe_pause(left)));
            let in_flight = live.map_or_else(String::new, |live| {
                format!(
                    "  in flight ≤{}  latency {}",
                    live.limit,
                    describe_latency(&live.latency)
                )
            });
            bar.set_message(format!(
                "{paused}updated {}  failed {}  {:.1} rows/s{in_flight}",
                tally.get(Outcome::Updated),
                tally.get(Outcome::Failed),
                done as f64 / elapsed
            ));
        } else if let Some(every) = self.log_every {
            if Instant::now() >= self.next_log {
                self.next_log = Instant::now() + every;
                let live = live();
                let paused = live.and_then(|live| live.paused);
                tracing::info!(
                    done,
                    total = self.total,
                    updated = tally.get(Outcome::Updated),
                    failed = tally.get(Outcome::Failed),
                    rows_per_sec = format!("{:.1}", done as f64 / elapsed),
                    in_flight_limit = live.map(|live| live.limit),
                    latency_p50_ms = live.and_then(|live| live.latency.p50),
                    latency_p95_ms = live.and_then(|live| live.latency.p95),
                    paused_s = paused.map(whole_seconds),
                    "progress{}",
                    paused.map_or_else(String::new, |left| format!(" ({})", describe_pause(left)))
                );
            }
        }
    }

    /// How often the display wants refreshing when no row arrives (a long pause shows
    /// its countdown); `None` when nothing is shown.
    pub(crate) fn refresh_every(&self) -> Option<Duration> {
        match (&self.bar, self.log_every) {
            (Some(_), _) => Some(BAR_REFRESH),
            (None, Some(every)) => Some(every.min(BAR_REFRESH)),
            (None, None) => None,
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_pause_reads_as_the_seconds_left_rounded_up() {
        assert_eq!(
            describe_pause(Duration::from_millis(299_100)),
            "paused 300s more for Retry-After"
        );
        assert_eq!(
            describe_pause(Duration::from_secs(12)),
            "paused 12s more for Retry-After"
        );
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
    }

    #[test]
    fn the_display_is_refreshed_while_no_row_arrives_unless_quiet() {
        let log = |every| Progress::new(1, ProgressMode::Log { every }).refresh_every();
        assert_eq!(
            log(Duration::from_millis(200)),
            Some(Duration::from_millis(200))
        );
        assert_eq!(log(Duration::from_secs(10)), Some(BAR_REFRESH));
        assert_eq!(Progress::new(1, ProgressMode::Quiet).refresh_every(), None);
    }
}
