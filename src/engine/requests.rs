//! Every request goes through here: one rate limiter shared by every request, the
//! adaptive pace after 429s, a pause that a 429 puts on every worker, and retries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

use super::control::RunControl;
use super::retry::{classify, FailureKind, RetryPolicy};
use super::throttle::AdaptiveRate;
use crate::drata::{ApiClient, Failure};
use crate::model::{Rate, StopReason};
use crate::text::plural;

/// Counters of requests, shared by the workers.
#[derive(Debug, Default)]
pub(crate) struct RequestStats {
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
}

impl RequestStats {
    pub(crate) fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.rate_limited.load(Ordering::Relaxed),
        )
    }
}

/// A pause every worker honours before its next request (set by a 429).
#[derive(Debug, Default)]
struct PauseGate {
    until: Mutex<Option<Instant>>,
}

impl PauseGate {
    pub(crate) fn pause_for(&self, wait: Duration) {
        let end = Instant::now() + wait;
        if let Ok(mut until) = self.until.lock() {
            if until.is_none_or(|u| u < end) {
                *until = Some(end);
            }
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        self.until
            .lock()
            .ok()
            .and_then(|until| *until)
            .is_some_and(|end| end > Instant::now())
    }

    pub(crate) async fn wait(&self) {
        loop {
            let until = self.until.lock().ok().and_then(|u| *u);
            match until {
                Some(end) if end > Instant::now() => tokio::time::sleep_until(end).await,
                _ => return,
            }
        }
    }
}

/// Holds every request back until the run's first attempt has an answer (or fails): a
/// run-fatal answer (401, a refused TLS certificate) then costs one request, not one per
/// worker.
#[derive(Debug)]
struct FirstAnswer {
    gate: tokio::sync::Semaphore,
}

impl Default for FirstAnswer {
    fn default() -> Self {
        Self {
            gate: tokio::sync::Semaphore::new(1),
        }
    }
}

/// Held by the first attempt; dropping it lets every other request go.
struct FirstAttempt<'a>(&'a tokio::sync::Semaphore);

impl Drop for FirstAttempt<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl FirstAnswer {
    /// `Some` for the one attempt that goes first; `None` for all the others, once it
    /// has its answer.
    async fn wait(&self) -> Option<FirstAttempt<'_>> {
        // A closed gate is an open road: the first answer is in.
        let permit = self.gate.acquire().await.ok()?;
        permit.forget();
        Some(FirstAttempt(&self.gate))
    }
}

/// Builds the shared limiter; `None` when the rate is unlimited.
fn build_limiter(rate: Rate, burst: std::num::NonZeroU32) -> Option<DefaultDirectRateLimiter> {
    let interval = rate.interval()?;
    let quota = Quota::with_period(interval.max(Duration::from_nanos(1)))?.allow_burst(burst);
    Some(RateLimiter::direct(quota))
}

/// What every worker shares.
pub(crate) struct Engine {
    pub client: ApiClient,
    limiter: Option<DefaultDirectRateLimiter>,
    /// Slows below `--rate` while the server keeps answering 429.
    adaptive: Mutex<AdaptiveRate>,
    pause: PauseGate,
    first: FirstAnswer,
    pub control: Arc<RunControl>,
    policy: RetryPolicy,
    pub stats: RequestStats,
}

impl Engine {
    pub(crate) fn new(
        client: ApiClient,
        rate: Rate,
        burst: std::num::NonZeroU32,
        policy: RetryPolicy,
        control: Arc<RunControl>,
    ) -> Self {
        Self {
            client,
            limiter: build_limiter(rate, burst),
            adaptive: Mutex::new(AdaptiveRate::new(rate.interval())),
            pause: PauseGate::default(),
            first: FirstAnswer::default(),
            control,
            policy,
            stats: RequestStats::default(),
        }
    }

    /// Waits for the 429 pause and a limiter permit; false when the run stopped meanwhile.
    pub(crate) async fn permit(&self) -> bool {
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
    pub(crate) fn rate_reductions(&self) -> u64 {
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
    pub(crate) async fn with_retries<T, F, Fut>(&self, what: &str, mut attempt: F) -> Attempted<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(u16, T), Failure>>,
    {
        let mut attempts = 0;
        let mut last_status = None;
        let mut last_failure: Option<Failure> = None;
        loop {
            let first = self.first.wait().await;
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
            let answer = attempt().await;
            drop(first);
            let failure = match answer {
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
            if failure.status().is_some() {
                last_status = failure.status();
            }
            let kind = classify(failure.cause);
            if failure.status() == Some(429) {
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
            let give_up = match kind {
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
                if kind == FailureKind::Retryable {
                    failure.message = format!(
                        "{} (gave up after {attempts} {})",
                        failure.message,
                        plural(attempts.into(), "attempt", "attempts")
                    );
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
            if failure.status() == Some(429) {
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
}

/// How a request with retries ended.
#[derive(Debug)]
pub(crate) enum Ended<T> {
    Done(T),
    /// Not retryable, or retries exhausted.
    Failed(Failure),
    /// The run stopped first; the last failure, if an attempt was made.
    Stopped(Option<Failure>),
}

/// A request with retries: how it ended, the attempts made and the last status seen.
#[derive(Debug)]
pub(crate) struct Attempted<T> {
    pub ended: Ended<T>,
    pub attempts: u32,
    pub last_status: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_attempt_goes_alone() {
        let first = FirstAnswer::default();
        let attempt = first.wait().await;
        assert!(attempt.is_some());
        let waiting = tokio::time::timeout(Duration::from_millis(50), first.wait()).await;
        assert!(waiting.is_err(), "the others wait for the first answer");
        drop(attempt);
        assert!(first.wait().await.is_none(), "then every attempt goes");
        assert!(first.wait().await.is_none());
    }

    #[test]
    fn unlimited_rate_has_no_limiter() {
        let burst = std::num::NonZeroU32::MIN;
        assert!(build_limiter(Rate::Unlimited, burst).is_none());
        assert!(build_limiter("10/s".parse().unwrap(), burst).is_some());
    }
}
