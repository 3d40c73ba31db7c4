//! The worker pool: one rate limiter shared by every request, a pause that a 429 puts
//! on every worker, bounded channels, and one cancellation token for the whole run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiClient, Failure, FailureKind};
use crate::config::Rate;
use crate::input::Row;
use crate::report::{Outcome, ReportRow};
use crate::retry::RetryPolicy;
use crate::throttle::AdaptiveRate;

/// Why a run stopped before every row was tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Invalid rows and no `--skip-invalid`: nothing is sent.
    InvalidInput { invalid_rows: u64 },
    /// 401, 402, 403 or 412: the key or the account cannot do this.
    Fatal { message: String },
    /// `--max-failures` was passed.
    TooManyFailures { failed: u64, finished: u64 },
    /// SIGINT or SIGTERM.
    Interrupted,
    /// The report could not be written; going on would lose rows.
    ReportFailed(String),
    /// The input could not be read again for the run.
    InputFailed(String),
    /// More rows would change than `--max-changes` allows.
    TooManyChanges { changes: u64, limit: u64 },
    /// The current state could not be fetched from Drata.
    StateUnavailable(String),
}

impl StopReason {
    /// The `error` cell of rows this stop left unsent.
    pub fn not_attempted_message(&self) -> String {
        match self {
            StopReason::InvalidInput { invalid_rows } => format!(
                "not sent: the input has {invalid_rows} invalid rows (fix them or pass --skip-invalid)"
            ),
            StopReason::Fatal { message } => format!("not sent: the run was aborted ({message})"),
            StopReason::TooManyFailures { failed, finished } => format!(
                "not sent: the run was aborted after {failed} of {finished} rows failed (--max-failures)"
            ),
            StopReason::Interrupted => "interrupted".to_owned(),
            StopReason::ReportFailed(e) => format!("not sent: the report could not be written ({e})"),
            StopReason::InputFailed(e) => format!("not sent: the input could not be read ({e})"),
            StopReason::TooManyChanges { changes, limit } => format!(
                "not sent: {changes} rows would change, more than --max-changes {limit}"
            ),
            StopReason::StateUnavailable(e) => {
                format!("not sent: the current state could not be read from Drata ({e})")
            }
        }
    }
}

/// The run's stop switch: the first reason wins, and every task sees the token.
#[derive(Debug, Default)]
pub struct RunControl {
    token: CancellationToken,
    reason: Mutex<Option<StopReason>>,
}

impl RunControl {
    pub fn stop(&self, reason: StopReason) {
        if let Ok(mut slot) = self.reason.lock() {
            if slot.is_none() {
                tracing::debug!(?reason, "stopping the run");
                *slot = Some(reason);
            }
        }
        self.token.cancel();
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    pub fn reason(&self) -> Option<StopReason> {
        self.reason.lock().ok().and_then(|slot| slot.clone())
    }

    pub async fn stopped(&self) {
        self.token.cancelled().await
    }

    /// The `error` cell of a row the run's stop left unsent.
    pub fn stop_message(&self) -> String {
        self.reason()
            .map_or_else(|| "not sent".to_owned(), |r| r.not_attempted_message())
    }
}

/// Counters of requests, shared by the workers.
#[derive(Debug, Default)]
pub struct RequestStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl RequestStats {
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.rate_limited.load(Ordering::Relaxed),
        )
    }
}

/// A pause every worker honours before its next request (set by a 429).
#[derive(Debug, Default)]
pub struct PauseGate {
    until: Mutex<Option<Instant>>,
}

impl PauseGate {
    pub fn pause_for(&self, wait: Duration) {
        let end = Instant::now() + wait;
        if let Ok(mut until) = self.until.lock() {
            if until.is_none_or(|u| u < end) {
                *until = Some(end);
            }
        }
    }

    pub fn is_active(&self) -> bool {
        self.until
            .lock()
            .ok()
            .and_then(|until| *until)
            .is_some_and(|end| end > Instant::now())
    }

    pub async fn wait(&self) {
        loop {
            let until = self.until.lock().ok().and_then(|u| *u);
            match until {
                Some(end) if end > Instant::now() => tokio::time::sleep_until(end).await,
                _ => return,
            }
        }
    }
}

/// Builds the shared limiter; `None` when the rate is unlimited.
pub fn build_limiter(rate: Rate, burst: std::num::NonZeroU32) -> Option<DefaultDirectRateLimiter> {
    let interval = rate.interval()?;
    let quota = Quota::with_period(interval.max(Duration::from_nanos(1)))?.allow_burst(burst);
    Some(RateLimiter::direct(quota))
}

/// What every worker shares.
pub struct Engine {
    pub client: ApiClient,
    pub limiter: Option<DefaultDirectRateLimiter>,
    /// Slows below `--rate` while the server keeps answering 429.
    pub adaptive: Mutex<AdaptiveRate>,
    pub pause: PauseGate,
    pub control: Arc<RunControl>,
    pub policy: RetryPolicy,
    pub stats: RequestStats,
}

impl Engine {
    /// Waits for the 429 pause and a limiter permit; false when the run stopped meanwhile.
    pub async fn permit(&self) -> bool {
        if self.control.is_stopped() {
            return false;
        }
        let wait = async {
            loop {
                self.pause.wait().await;
                let slot = self
                    .adaptive
                    .lock()
                    .map_or_else(|_| Instant::now(), |mut rate| rate.reserve(Instant::now()));
                tokio::time::sleep_until(slot).await;
                if let Some(limiter) = &self.limiter {
                    limiter.until_ready().await;
                }
                // A 429 arrived while this worker waited: after the pause it takes a new
                // slot, so that the workers held back do not all go at once.
                if !self.pause.is_active() {
                    return;
                }
            }
        };
        tokio::select! {
            biased;
            _ = self.control.stopped() => false,
            _ = wait => !self.control.is_stopped(),
        }
    }

    /// Halves the pace when a 429 starts a storm, and says so.
    fn slow_down(&self, pause: Duration) {
        let slower = self
            .adaptive
            .lock()
            .ok()
            .and_then(|mut rate| rate.on_rate_limited(Instant::now(), pause));
        if let Some(interval) = slower {
            tracing::warn!(
                rate_per_minute = format!("{:.0}", 60.0 / interval.as_secs_f64()),
                "the server answered 429: lowering the request rate"
            );
        }
    }

    /// How many times 429s lowered the pace.
    pub fn rate_reductions(&self) -> u64 {
        self.adaptive.lock().map_or(0, |rate| rate.reductions())
    }

    /// Sleeps, unless the run stops first.
    async fn backoff(&self, delay: Duration) {
        tokio::select! {
            _ = self.control.stopped() => {}
            _ = tokio::time::sleep(delay) => {}
        }
    }

    /// Makes one request with retries: every attempt waits for the pause and a permit;
    /// 429s pause everyone and slow the pace; run-fatal answers stop the run.
    pub async fn with_retries<T, F, Fut>(&self, what: &str, mut attempt: F) -> Attempted<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(u16, T), Failure>>,
    {
        let mut attempts = 0;
        let mut last_status = None;
        let mut last_failure: Option<Failure> = None;
        loop {
            if !self.permit().await {
                return Attempted {
                    ended: Ended::Stopped(last_failure),
                    attempts,
                    last_status,
                };
            }
            attempts += 1;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            if attempts > 1 {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            let failure = match attempt().await {
                Ok((status, value)) => {
                    if let Ok(mut rate) = self.adaptive.lock() {
                        rate.on_success(Instant::now());
                    }
                    return Attempted {
                        ended: Ended::Done(value),
                        attempts,
                        last_status: Some(status),
                    };
                }
                Err(failure) => failure,
            };
            // The last status seen: a timeout after a 500 keeps the 500.
            if failure.status.is_some() {
                last_status = failure.status;
            }
            if failure.status == Some(429) {
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
            let give_up = match failure.kind {
                FailureKind::Row => true,
                FailureKind::Fatal => {
                    self.control.stop(StopReason::Fatal {
                        message: failure.message.clone(),
                    });
                    true
                }
                FailureKind::Retryable => !self.policy.may_retry(attempts),
            };
            if give_up {
                let mut failure = failure;
                if failure.kind == FailureKind::Retryable {
                    failure.message =
                        format!("{} (gave up after {attempts} attempts)", failure.message);
                }
                return Attempted {
                    ended: Ended::Failed(failure),
                    attempts,
                    last_status,
                };
            }
            let delay = self
                .policy
                .delay(attempts, failure.retry_after, fastrand::f64());
            if failure.status == Some(429) {
                // Everyone waits; without Retry-After, the whole backoff ceiling.
                let pause = failure
                    .retry_after
                    .map_or_else(|| self.policy.ceiling(attempts), |_| delay);
                self.pause.pause_for(pause);
                self.slow_down(pause);
            }
            tracing::debug!(
                what,
                attempt = attempts,
                delay_ms = delay.as_millis() as u64,
                error = %failure.message,
                "retrying"
            );
            last_failure = Some(failure);
            self.backoff(delay).await;
        }
    }

    /// Sends one row, retrying as the policy allows. Always returns the row's report.
    pub async fn apply_row(&self, row: Row) -> ReportRow {
        let mut report = ReportRow::new(
            row.line,
            row.id.to_string(),
            row.flag.to_string(),
            row.reason.clone(),
        );
        let what = format!("line {} id {}", row.line, row.id);
        let attempted = self
            .with_retries(&what, || {
                self.client
                    .set_service_account(row.id, row.flag, &row.reason)
            })
            .await;
        report.attempts = attempted.attempts;
        report.http_status = attempted.last_status;
        match attempted.ended {
            Ended::Done(identity) => {
                report.username = identity.username;
                report.email = identity.email;
                report.service_account_at = identity.service_account;
                report.with_outcome(Outcome::Updated, "")
            }
            Ended::Failed(failure) => report.with_outcome(Outcome::Failed, failure.message),
            // Not done, so not_attempted like every remaining row; the attempts and the
            // last status stay on record.
            Ended::Stopped(None) => {
                report.with_outcome(Outcome::NotAttempted, self.control.stop_message())
            }
            Ended::Stopped(Some(failure)) => report.with_outcome(
                Outcome::NotAttempted,
                format!(
                    "{}; not retried after: {}",
                    self.control.stop_message(),
                    failure.message
                ),
            ),
        }
    }
}

/// How a request with retries ended.
#[derive(Debug)]
pub enum Ended<T> {
    Done(T),
    /// Not retryable, or retries exhausted.
    Failed(Failure),
    /// The run stopped first; the last failure, if an attempt was made.
    Stopped(Option<Failure>),
}

/// A request with retries: how it ended, the attempts made and the last status seen.
#[derive(Debug)]
pub struct Attempted<T> {
    pub ended: Ended<T>,
    pub attempts: u32,
    pub last_status: Option<u16>,
}

/// Runs `workers` tasks that take rows from `jobs` and send their reports to `results`.
pub fn spawn_workers(
    engine: Arc<Engine>,
    workers: usize,
    jobs: mpsc::Receiver<Row>,
    results: mpsc::Sender<ReportRow>,
) -> tokio::task::JoinSet<()> {
    let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let engine = Arc::clone(&engine);
        let jobs = Arc::clone(&jobs);
        let results = results.clone();
        set.spawn(async move {
            loop {
                let next = jobs.lock().await.recv().await;
                let Some(row) = next else { break };
                let report = engine.apply_row(row).await;
                if results.send(report).await.is_err() {
                    break;
                }
            }
        });
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_stop_reason_wins() {
        let control = RunControl::default();
        assert!(!control.is_stopped());
        control.stop(StopReason::Interrupted);
        control.stop(StopReason::Fatal {
            message: "x".to_owned(),
        });
        assert!(control.is_stopped());
        assert_eq!(control.reason(), Some(StopReason::Interrupted));
    }

    #[test]
    fn unlimited_rate_has_no_limiter() {
        let burst = std::num::NonZeroU32::MIN;
        assert!(build_limiter(Rate::Unlimited, burst).is_none());
        assert!(build_limiter("10/s".parse().unwrap(), burst).is_some());
    }
}
