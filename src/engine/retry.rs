//! Pure retry logic: which answers are retried and how long to wait before the next try.
//! No clocks and no randomness of its own, so it is unit-tested exactly.

use std::time::Duration;

use crate::drata::Cause;
use crate::model::{Answer, FailureKind};

/// The backoff and attempt limits (`docs/contract.md`, "Network behaviour").
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// The first backoff ceiling; it doubles with every failed attempt.
    pub base: Duration,
    /// The largest backoff ceiling.
    pub cap: Duration,
    /// The longest `Retry-After` that is honoured.
    pub retry_after_cap: Duration,
    /// A `Retry-After` pause longer than this is announced at WARN and shown on the
    /// progress line: a run that stops for minutes in silence looks hung.
    pub long_pause: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            retry_after_cap: Duration::from_secs(300),
            long_pause: Duration::from_secs(10),
        }
    }
}

/// Statuses answered again later: timeouts, rate limiting and server errors.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Statuses that end the whole run: the key or the account cannot do this at all.
pub(crate) fn is_run_fatal_status(status: u16) -> bool {
    matches!(status, 401 | 402 | 403 | 412)
}

/// Classifies a failed attempt.
pub(crate) fn classify(cause: Cause) -> FailureKind {
    match cause {
        Cause::Transport | Cause::Unreadable(_) => FailureKind::Retryable,
        // The trust store will not change before the next attempt.
        Cause::Certificate(_) => FailureKind::Fatal,
        // Wrong proxy credentials again would only lock the account.
        Cause::Proxy => FailureKind::Fatal,
        Cause::Status(status) if is_retryable_status(status) => FailureKind::Retryable,
        Cause::Status(status) if is_run_fatal_status(status) => FailureKind::Fatal,
        Cause::Status(_) => FailureKind::Row,
    }
}

/// What the attempts at one request prove about whether Drata applied it: the one answer
/// to "was it applied?". A 2xx applied it; nothing sent proves nothing (`None`); else the
/// last attempt decides: a certain refusal (a 4xx, a refused certificate or proxy) was not
/// applied, and a 5xx, a timeout or a lost connection may have been.
pub(crate) fn answer(done: bool, attempts: u32, failure: Option<FailureKind>) -> Option<Answer> {
    if done {
        return Some(Answer::Applied);
    }
    if attempts == 0 {
        return None;
    }
    Some(match failure {
        Some(FailureKind::Row | FailureKind::Fatal) => Answer::Refused,
        Some(FailureKind::Retryable) | None => Answer::Uncertain,
    })
}

/// True when a failed attempt may have been applied all the same: no answer (a timeout,
/// a lost connection), a 5xx, or a 2xx whose body could not be read. For requests that
/// are not idempotent (an upload's POST), before sending again.
pub(crate) fn may_have_applied(cause: Cause) -> bool {
    match cause {
        Cause::Transport | Cause::Unreadable(_) => true,
        Cause::Status(status) => status >= 500,
        Cause::Certificate(_) | Cause::Proxy => false,
    }
}

impl RetryPolicy {
    /// The backoff ceiling after `failed_attempts` failures (1 for the first): `base`
    /// doubled `failed_attempts - 1` times, at most `cap`.
    pub(crate) fn ceiling(&self, failed_attempts: u32) -> Duration {
        let doublings = failed_attempts.saturating_sub(1).min(32);
        self.base
            .checked_mul(1u32 << doublings.min(31))
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// How long to wait before the next attempt. `unit_random` is uniform in [0, 1):
    /// full jitter picks a delay anywhere below the ceiling. A `Retry-After` from the
    /// server wins, capped at `retry_after_cap`.
    pub(crate) fn delay(
        &self,
        failed_attempts: u32,
        retry_after: Option<Duration>,
        unit_random: f64,
    ) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.retry_after_cap);
        }
        self.ceiling(failed_attempts)
            .mul_f64(unit_random.clamp(0.0, 1.0))
    }

    /// True when another attempt is allowed after `attempts_made`.
    pub(crate) fn may_retry(&self, attempts_made: u32) -> bool {
        attempts_made < self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_may_have_applied_without_an_answer_or_behind_a_5xx() {
        for cause in [
            Cause::Transport,
            Cause::Unreadable(200),
            Cause::Status(500),
            Cause::Status(502),
        ] {
            assert!(may_have_applied(cause), "{cause:?}");
        }
        for cause in [
            Cause::Status(429),
            Cause::Status(400),
            Cause::Status(499),
            Cause::Proxy,
        ] {
            assert!(!may_have_applied(cause), "{cause:?}");
        }
    }

    #[test]
    fn an_answer_proves_applied_refused_or_nothing_certain() {
        assert_eq!(answer(true, 1, None), Some(Answer::Applied));
        assert_eq!(
            answer(true, 3, Some(FailureKind::Retryable)),
            Some(Answer::Applied)
        );
        assert_eq!(answer(false, 0, None), None);
        assert_eq!(answer(false, 0, Some(FailureKind::Retryable)), None);
        assert_eq!(
            answer(false, 1, Some(FailureKind::Row)),
            Some(Answer::Refused)
        );
        assert_eq!(
            answer(false, 2, Some(FailureKind::Fatal)),
            Some(Answer::Refused)
        );
        assert_eq!(
            answer(false, 5, Some(FailureKind::Retryable)),
            Some(Answer::Uncertain)
        );
        assert_eq!(answer(false, 1, None), Some(Answer::Uncertain));
    }

    use crate::drata::CertProblem;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn ceiling_doubles_from_base_and_caps() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.ceiling(1), MS(500));
        assert_eq!(policy.ceiling(2), MS(1000));
        assert_eq!(policy.ceiling(3), MS(2000));
        assert_eq!(policy.ceiling(7), MS(30_000), "500 ms * 64 is past the cap");
        assert_eq!(policy.ceiling(1000), MS(30_000), "no overflow");
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_ceiling() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(3, None, 0.0), Duration::ZERO);
        assert_eq!(policy.delay(3, None, 0.5), MS(1000));
        assert!(policy.delay(3, None, 0.999_999) < MS(2000));
        assert_eq!(
            policy.delay(3, None, 7.0),
            MS(2000),
            "out-of-range randomness is clamped"
        );
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(1, Some(MS(7000)), 0.9), MS(7000));
        assert_eq!(policy.delay(1, Some(MS(900_000)), 0.9), MS(300_000));
    }

    #[test]
    fn failures_are_classified() {
        assert_eq!(classify(Cause::Transport), FailureKind::Retryable);
        assert_eq!(classify(Cause::Proxy), FailureKind::Fatal);
        assert_eq!(classify(Cause::Unreadable(200)), FailureKind::Retryable);
        assert_eq!(classify(Cause::Status(500)), FailureKind::Retryable);
        assert_eq!(classify(Cause::Status(429)), FailureKind::Retryable);
        assert_eq!(classify(Cause::Status(404)), FailureKind::Row);
        assert_eq!(classify(Cause::Status(301)), FailureKind::Row);
        assert_eq!(classify(Cause::Status(401)), FailureKind::Fatal);
        assert_eq!(classify(Cause::Status(412)), FailureKind::Fatal);
        for problem in [
            CertProblem::UnknownIssuer,
            CertProblem::Expired,
            CertProblem::WrongName,
            CertProblem::Other,
        ] {
            assert_eq!(classify(Cause::Certificate(problem)), FailureKind::Fatal);
        }
    }

    #[test]
    fn statuses_are_classified() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [200, 301, 400, 401, 404, 409, 422, 501] {
            assert!(!is_retryable_status(status), "{status}");
        }
        for status in [401, 402, 403, 412] {
            assert!(is_run_fatal_status(status), "{status}");
        }
        assert!(!is_run_fatal_status(404));
    }

    #[test]
    fn attempts_are_bounded() {
        let policy = RetryPolicy::default();
        assert!(policy.may_retry(4));
        assert!(!policy.may_retry(5));
    }
}
