//! Every request goes through here: one rate limiter shared by every request, the
//! adaptive pace after 429s, a pause that a 429 puts on every worker, the in-flight
//! limit, and retries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

use super::budget::{Charge, RetryBudget};
use super::concurrency::{Answer, Concurrency, ConcurrencyMode};
use super::control::RunControl;
use super::inflight::{InFlight, Slot};
use super::retry::{classify, RetryPolicy};
use super::throttle::AdaptiveRate;
use crate::drata::{ApiClient, Cause, Failure};
use crate::model::{
    ConcurrencyFigures, FailureKind, LatencyFigures, Live, Rate, StopReason, StopSource,
};
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

    /// What is left of the pause; `None` when there is none.
    fn remaining(&self) -> Option<Duration> {
        self.until
            .lock()
            .ok()
            .and_then(|until| *until)
            .map(|end| end.saturating_duration_since(Instant::now()))
            .filter(|left| !left.is_zero())
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

/// How long the other requests wait for the run's first answer at most. A refused TLS
/// certificate is known within the handshake, and a 401 from a server near by within
/// this; a slow server (seconds per answer) must not hold the whole run back for one
/// round trip, which would cost the rate that round trip.
const FIRST_ANSWER_WAIT: Duration = Duration::from_millis(500);

/// Holds every request back until the run's first attempt has an answer (or fails), for
/// [`FIRST_ANSWER_WAIT`] at most: a run-fatal answer (401, a refused TLS certificate)
/// then costs one request, not one per worker.
#[derive(Debug)]
struct FirstAnswer {
    gate: tokio::sync::Semaphore,
    /// When the first attempt went.
    first_sent: std::sync::OnceLock<Instant>,
}

impl Default for FirstAnswer {
    fn default() -> Self {
        Self {
            gate: tokio::sync::Semaphore::new(1),
            first_sent: std::sync::OnceLock::new(),
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
        if let Ok(permit) = self.gate.try_acquire() {
            permit.forget();
            let _ = self.first_sent.set(Instant::now());
            return Some(FirstAttempt(&self.gate));
        }
        // A closed gate is an open road: the first answer is in. Past the wait, go too.
        let deadline =
            self.first_sent.get().copied().unwrap_or_else(Instant::now) + FIRST_ANSWER_WAIT;
        let _ = tokio::time::timeout_at(deadline, self.gate.acquire()).await;
        None
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
    /// The end of the last long `Retry-After` pause, for the progress line.
    long_pause: PauseGate,
    first: FirstAnswer,
    pub control: Arc<RunControl>,
    policy: RetryPolicy,
    /// Pays for the retries of failures that are not throttling; shared by every request.
    budget: Mutex<RetryBudget>,
    pub stats: RequestStats,
    mode: ConcurrencyMode,
    /// The in-flight slots and their controller.
    inflight: InFlight,
}

impl Engine {
    pub(crate) fn new(
        client: ApiClient,
        rate: Rate,
        burst: std::num::NonZeroU32,
        policy: RetryPolicy,
        control: Arc<RunControl>,
        mode: ConcurrencyMode,
    ) -> Self {
        Self {
            mode,
            inflight: InFlight::new(Concurrency::new(mode, rate.interval())),
            client,
            limiter: build_limiter(rate, burst),
            adaptive: Mutex::new(AdaptiveRate::new(rate.interval())),
            pause: PauseGate::default(),
            long_pause: PauseGate::default(),
            first: FirstAnswer::default(),
            control,
            policy,
            budget: Mutex::new(RetryBudget::default()),
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

    /// A slot for one attempt; `None` when the run stopped first.
    async fn slot(&self) -> Option<Slot<'_>> {
        tokio::select! {
            biased;
            _ = self.control.stopped() => None,
            slot = self.inflight.acquire() => Some(slot),
        }
    }

    /// Makes one request with retries: every attempt takes an in-flight slot, then waits
    /// for the pause and a permit; 429s pause everyone and slow the pace; run-fatal
    /// answers stop the run.
    pub(crate) async fn with_retries<T, F, Fut>(
        &self,
        what: &str,
        request: Request,
        mut attempt: F,
    ) -> Attempted<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(u16, T), Failure>>,
    {
        let mut attempts = 0;
        let mut last_status = None;
        let mut last_failure: Option<Failure> = None;
        let mut last_kind = None;
        // What the last retry cost the budget: handed back if it succeeds.
        let mut paid = 0;
        loop {
            let first = self.first.wait().await;
            let ready = match self.slot().await {
                Some(slot) => self.permit().await.then_some(slot),
                None => None,
            };
            let Some(slot) = ready else {
                return Attempted {
                    ended: Ended::Stopped(last_failure),
                    attempts,
                    last_status,
                    failure: last_kind,
                };
            };
            attempts += 1;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            if attempts > 1 {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            let answer = self.attempt_once(slot, request, &mut attempt).await;
            drop(first);
            let failure = match answer {
                Ok((status, value)) => {
                    if let Ok(mut budget) = self.budget.lock() {
                        budget.refill(paid);
                    }
                    return Attempted {
                        ended: Ended::Done(value),
                        attempts,
                        last_status: Some(status),
                        failure: None,
                    };
                }
                Err(failure) => failure,
            };
            // The last status seen: a timeout after a 500 keeps the 500.
            if failure.status().is_some() {
                last_status = failure.status();
            }
            let kind = match classify(failure.cause) {
                FailureKind::Fatal
                    if request == Request::ListingPageUnlessRefused
                        && failure.status() == Some(403) =>
                {
                    FailureKind::Row
                }
                kind => kind,
            };
            last_kind = Some(kind);
            match self.after_failure(what, failure, kind, attempts) {
                Next::GiveUp(failure) => {
                    return Attempted {
                        ended: Ended::Failed(failure),
                        attempts,
                        last_status,
                        failure: last_kind,
                    };
                }
                Next::Retry(failure, delay, cost) => {
                    paid = cost;
                    last_failure = Some(failure);
                    self.backoff(delay).await;
                }
            }
        }
    }

    /// Sends one attempt in its slot and tells the in-flight controller how it went.
    async fn attempt_once<T, F, Fut>(
        &self,
        mut slot: Slot<'_>,
        request: Request,
        attempt: &mut F,
    ) -> Result<(u16, T), Failure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(u16, T), Failure>>,
    {
        slot.sent(Instant::now());
        let result = attempt().await;
        let answer = answer_of(&result);
        slot.answered(Instant::now(), answer, request != Request::Update);
        if result.is_ok() {
            if let Ok(mut rate) = self.adaptive.lock() {
                rate.on_success(Instant::now());
            }
        }
        if let Answer::ServerError(status) = answer {
            let slower = self
                .adaptive
                .lock()
                .ok()
                .and_then(|mut rate| rate.on_server_error(Instant::now()));
            if let Some(interval) = slower {
                tracing::warn!(
                    status,
                    rate_per_minute = format!("{:.0}", 60.0 / interval.as_secs_f64()),
                    "the server keeps answering 5xx: lowering the request rate"
                );
            }
        }
        result
    }

    /// What a failed attempt leads to: giving up (the row fails, or the run stops), or a
    /// retry after a delay; a 429 pauses every worker and slows the pace.
    fn after_failure(
        &self,
        what: &str,
        mut failure: Failure,
        kind: FailureKind,
        attempts: u32,
    ) -> Next {
        if failure.status() == Some(429) {
            self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        let give_up = match kind {
            FailureKind::Row => true,
            FailureKind::Fatal => {
                self.control
                    .stop(StopReason::Fatal(StopSource::new(failure.clone())));
                true
            }
            FailureKind::Retryable => !self.policy.may_retry(attempts),
        };
        if give_up {
            if kind == FailureKind::Retryable {
                failure.message = format!(
                    "{} (gave up after {attempts} {})",
                    failure.message,
                    plural(attempts.into(), "attempt", "attempts")
                );
            }
            return Next::GiveUp(failure);
        }
        let Some(cost) = self.pay_for_retry(&failure) else {
            failure.message = format!(
                "{} (not retried: the retry budget is spent, too many requests failed lately)",
                failure.message
            );
            return Next::GiveUp(failure);
        };
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
        if failure.retry_after.is_some() && delay > self.policy.long_pause {
            announce_pause(delay, failure.status());
            self.long_pause.pause_for(delay);
        }
        tracing::debug!(
            what,
            attempt = attempts,
            delay_ms = delay.as_millis() as u64,
            error = %failure.message,
            "retrying"
        );
        Next::Retry(failure, delay, cost)
    }

    /// Pays the retry budget for retrying `failure`: the tokens paid, or `None` when the
    /// budget is spent. The first refusal of the run is said at WARN.
    fn pay_for_retry(&self, failure: &Failure) -> Option<u32> {
        let charge = Charge::of(failure.cause, failure.retry_after.is_some());
        let mut budget = self.budget.lock().ok()?;
        let paid = budget.pay(charge);
        if paid.is_none() && budget.refused() == 1 {
            tracing::warn!(
                "the retry budget is spent: requests failing with a 5xx, a timeout or a lost \
                 connection are no longer retried until enough requests succeed"
            );
        }
        paid
    }

    /// The in-flight limit and recent latencies, for the progress display.
    pub(crate) fn live(&self) -> Live {
        Live {
            paused: self.long_pause.remaining(),
            ..self.inflight.live()
        }
    }

    /// The in-flight figures and latencies of the run, for the summary.
    pub(crate) fn concurrency_figures(&self) -> (ConcurrencyFigures, LatencyFigures) {
        self.inflight.figures(self.mode.to_string())
    }
}

/// Says at WARN how long the server asked the run to wait.
fn announce_pause(delay: Duration, status: Option<u16>) {
    tracing::warn!(
        status,
        pause_seconds = delay.as_secs(),
        "the server asked to wait {} s (Retry-After) before the next attempt",
        delay.as_secs()
    );
}

/// How an attempt's answer weighs on the in-flight limit and the pace: only throttling
/// signals (a timeout, 408, 429, 503, a `Retry-After`) lower them. Another 5xx (500, 502,
/// 504) is this request's failure, which the retry budget bounds: a server failing a
/// steady tenth of its requests is no busier for it, and slowing down would not help.
fn answer_of<T>(result: &Result<(u16, T), Failure>) -> Answer {
    match result {
        Ok(_) => Answer::Fine,
        Err(failure) => match failure.cause {
            Cause::Transport => Answer::Silence,
            Cause::Status(429) => Answer::RateLimited,
            Cause::Status(status @ 500..=599) if status != 503 && failure.retry_after.is_none() => {
                Answer::Failed(status)
            }
            Cause::Status(status @ (408 | 500..=599)) => Answer::ServerError(status),
            // A refused certificate stops the run; it says nothing of the server's load.
            Cause::Status(_) | Cause::Unreadable(_) | Cause::Certificate(_) | Cause::Proxy => {
                Answer::Fine
            }
        },
    }
}

/// After a failed attempt.
enum Next {
    GiveUp(Failure),
    /// Retry after the delay; the tokens the retry cost the budget.
    Retry(Failure, Duration, u32),
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

/// What a request is, for the in-flight limit: an update's latency is measured, a listing
/// page's is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    Update,
    ListingPage,
    /// A listing page whose refusal (403) only ends the listing: `apply --resend` goes on
    /// without the state.
    ListingPageUnlessRefused,
}

/// A request with retries: how it ended, the attempts made and the last status seen.
#[derive(Debug)]
pub(crate) struct Attempted<T> {
    pub ended: Ended<T>,
    pub attempts: u32,
    pub last_status: Option<u16>,
    /// What the failure it ended with meant; `None` when it succeeded or never went.
    pub failure: Option<FailureKind>,
}

impl<T> Attempted<T> {
    /// A request the run stopped before it was sent.
    pub(crate) fn unsent() -> Self {
        Self {
            ended: Ended::Stopped(None),
            attempts: 0,
            last_status: None,
            failure: None,
        }
    }
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

    #[tokio::test(start_paused = true)]
    async fn a_slow_first_answer_holds_the_others_back_for_a_moment_only() {
        let first = FirstAnswer::default();
        let _slow = first.wait().await;
        let started = Instant::now();
        assert!(first.wait().await.is_none(), "the others go");
        assert_eq!(started.elapsed(), FIRST_ANSWER_WAIT);
        let later = Instant::now();
        assert!(first.wait().await.is_none());
        assert_eq!(
            later.elapsed(),
            Duration::ZERO,
            "past the wait, nobody waits again"
        );
    }

    #[test]
    fn answers_weigh_on_the_in_flight_limit_by_what_they_say_of_load() {
        let failed = |cause| -> Result<(u16, ()), Failure> {
            Err(Failure {
                cause,
                retry_after: None,
                message: String::new(),
            })
        };
        assert_eq!(answer_of(&Ok((200, ()))), Answer::Fine);
        assert_eq!(answer_of(&failed(Cause::Transport)), Answer::Silence);
        assert_eq!(answer_of(&failed(Cause::Status(429))), Answer::RateLimited);
        for status in [408, 503] {
            assert_eq!(
                answer_of(&failed(Cause::Status(status))),
                Answer::ServerError(status)
            );
        }
        for status in [500, 501, 502, 504, 599] {
            assert_eq!(
                answer_of(&failed(Cause::Status(status))),
                Answer::Failed(status),
                "not a sign of load"
            );
            let asked_to_wait = Err::<(u16, ()), _>(Failure {
                cause: Cause::Status(status),
                retry_after: Some(Duration::from_secs(1)),
                message: String::new(),
            });
            assert_eq!(answer_of(&asked_to_wait), Answer::ServerError(status));
        }
        for status in [301, 400, 401, 404, 409, 499] {
            assert_eq!(answer_of(&failed(Cause::Status(status))), Answer::Fine);
        }
        assert_eq!(answer_of(&failed(Cause::Unreadable(200))), Answer::Fine);
    }

    #[test]
    fn unlimited_rate_has_no_limiter() {
        let burst = std::num::NonZeroU32::MIN;
        assert!(build_limiter(Rate::Unlimited, burst).is_none());
        assert!(build_limiter("10/s".parse().unwrap(), burst).is_some());
    }
}
