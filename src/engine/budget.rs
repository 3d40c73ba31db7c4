//! The retry budget: a token bucket shared by every request of a run, as the AWS SDKs'
//! "retry quota". Each retry of a failure that is not a throttling signal spends tokens,
//! each success gives some back; when the bucket cannot pay, the request is not retried.
//! A server failing an odd request costs nothing (its successes refill the bucket faster
//! than the retries drain it); a server failing most requests gets a few retries, not
//! `--max-attempts` per row. Throttling (429, 503, a `Retry-After`) is answered by the pace
//! and the in-flight limit instead, and spends nothing. Pure logic: no clock, no shared
//! state of its own.

use crate::drata::Cause;

/// Tokens in a full bucket, and at the start of a run: 100 retries of a 500 (or 50 after a
/// timeout) in a row before the budget is spent, the AWS SDKs' figure. Enough that an
/// outage of a few seconds at Drata's rate (8 requests a second) is ridden out, few enough
/// that a server failing every request is sent about a hundred retries, not four per row.
pub(crate) const CAPACITY: u32 = 500;
/// What the retry of a failed answer (500, 502, 504, an unreadable body) costs: one success
/// in five earns it back, so retries are free while under a sixth of the answers fail.
const RETRY_COST: u32 = 5;
/// What the retry after a timeout or a lost connection costs: twice a 500's, as the AWS
/// SDKs charge, since each one held a slot for the whole `--timeout` and says the server
/// may be down rather than failing one request.
const TIMEOUT_COST: u32 = 10;
/// What a success at the first attempt gives back: the slow refill that lets a long run
/// with odd failures keep its retries.
const SUCCESS_REFILL: u32 = 1;

/// Why a failed attempt would be retried, for the price of its retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charge {
    /// A throttling signal (429, 503, a `Retry-After`): the pace and the pause answer it,
    /// and `--max-attempts` bounds it; the budget does not.
    Throttled,
    /// No answer (a timeout, a lost connection) or 408.
    Timeout,
    /// Any other retryable failure: 500, 502, 504, an unreadable body.
    Failed,
}

impl Charge {
    /// What a failed attempt's retry is charged as. `retry_after` is true when the answer
    /// carried a `Retry-After`: the server asked for a pause, which is throttling.
    pub(crate) fn of(cause: Cause, retry_after: bool) -> Self {
        match cause {
            _ if retry_after => Charge::Throttled,
            Cause::Status(429 | 503) => Charge::Throttled,
            Cause::Transport | Cause::Status(408) => Charge::Timeout,
            _ => Charge::Failed,
        }
    }

    /// The tokens this retry costs.
    fn cost(self) -> u32 {
        match self {
            Charge::Throttled => 0,
            Charge::Timeout => TIMEOUT_COST,
            Charge::Failed => RETRY_COST,
        }
    }
}

/// The run's bucket of retry tokens.
#[derive(Debug, Clone)]
pub(crate) struct RetryBudget {
    tokens: u32,
    /// Retries the bucket could not pay for.
    refused: u64,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            tokens: CAPACITY,
            refused: 0,
        }
    }
}

impl RetryBudget {
    /// Pays for one retry charged as `charge`: `Some(cost)` when paid (the cost is handed
    /// back by [`RetryBudget::refill`] if the request then succeeds), `None` when the
    /// bucket holds too few tokens: the request is not retried.
    pub(crate) fn pay(&mut self, charge: Charge) -> Option<u32> {
        let cost = charge.cost();
        match self.tokens.checked_sub(cost) {
            Some(left) => {
                self.tokens = left;
                Some(cost)
            }
            None => {
                self.refused += 1;
                None
            }
        }
    }

    /// A request succeeded; `paid` is what its last retry cost (0 when it was not retried
    /// or its retry was free). A retry that succeeded was worth its price: the price comes
    /// back, as in the AWS SDKs, so that a server failing a fair share of requests but
    /// answering their retries keeps its budget; a first attempt brings
    /// [`SUCCESS_REFILL`]. Never above [`CAPACITY`].
    pub(crate) fn refill(&mut self, paid: u32) {
        let back = if paid == 0 { SUCCESS_REFILL } else { paid };
        self.tokens = self.tokens.saturating_add(back).min(CAPACITY);
    }

    /// Tokens left.
    #[cfg(test)]
    pub(crate) fn tokens(&self) -> u32 {
        self.tokens
    }

    /// Retries refused since the run began.
    pub(crate) fn refused(&self) -> u64 {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_free_timeouts_cost_twice_a_failure() {
        let table = [
            (Cause::Status(429), false, Charge::Throttled, 0),
            (Cause::Status(503), false, Charge::Throttled, 0),
            (Cause::Status(500), true, Charge::Throttled, 0),
            (Cause::Transport, true, Charge::Throttled, 0),
            (Cause::Transport, false, Charge::Timeout, 10),
            (Cause::Status(408), false, Charge::Timeout, 10),
            (Cause::Status(500), false, Charge::Failed, 5),
            (Cause::Status(502), false, Charge::Failed, 5),
            (Cause::Status(504), false, Charge::Failed, 5),
            (Cause::Unreadable(200), false, Charge::Failed, 5),
        ];
        for (cause, retry_after, charge, cost) in table {
            assert_eq!(Charge::of(cause, retry_after), charge, "{cause:?}");
            assert_eq!(charge.cost(), cost, "{charge:?}");
        }
    }

    #[test]
    fn a_full_bucket_pays_a_hundred_retries_of_a_500_then_none() {
        let mut budget = RetryBudget::default();
        assert_eq!(budget.tokens(), CAPACITY);
        for n in 0..100 {
            assert_eq!(budget.pay(Charge::Failed), Some(5), "retry {n}");
        }
        assert_eq!(budget.tokens(), 0);
        assert_eq!(budget.pay(Charge::Failed), None);
        assert_eq!(budget.pay(Charge::Timeout), None);
        assert_eq!(budget.refused(), 2);
        assert_eq!(
            budget.pay(Charge::Throttled),
            Some(0),
            "a 429 is retried on an empty bucket"
        );
        assert_eq!(budget.refused(), 2);
    }

    #[test]
    fn the_exact_price_is_enough_and_one_token_less_is_not() {
        let mut budget = RetryBudget::default();
        for _ in 0..49 {
            budget.pay(Charge::Timeout);
        }
        assert_eq!(budget.tokens(), 10);
        budget.refill(0);
        assert_eq!(budget.tokens(), 11);
        assert_eq!(budget.pay(Charge::Timeout), Some(10));
        assert_eq!(budget.tokens(), 1);
        assert_eq!(budget.pay(Charge::Failed), None, "1 token, 5 asked");
        for _ in 0..3 {
            budget.refill(0);
        }
        assert_eq!(budget.tokens(), 4);
        assert_eq!(budget.pay(Charge::Failed), None, "4 tokens, 5 asked");
        budget.refill(0);
        assert_eq!(budget.pay(Charge::Failed), Some(5), "5 tokens, 5 asked");
        assert_eq!(budget.tokens(), 0);
        assert_eq!(budget.refused(), 2);
    }

    #[test]
    fn a_success_gives_back_its_retrys_price_or_one_token_up_to_the_capacity() {
        let mut budget = RetryBudget::default();
        for _ in 0..4 {
            budget.pay(Charge::Timeout);
        }
        assert_eq!(budget.tokens(), 460);
        let table = [(0, 461), (5, 466), (10, 476), (0, 477)];
        for (paid, tokens) in table {
            budget.refill(paid);
            assert_eq!(budget.tokens(), tokens, "after a refill of {paid}");
        }
        for _ in 0..30 {
            budget.refill(0);
        }
        assert_eq!(budget.tokens(), CAPACITY, "never above the capacity");
        budget.refill(10);
        assert_eq!(budget.tokens(), CAPACITY);
    }

    /// `rows` requests, one in `every` failing at each attempt whatever came before (the
    /// n-th attempt of the run fails when n % every == 0), each retried while the bucket
    /// pays, up to `max_attempts`. Returns the attempts made and the requests that failed.
    fn drive(rows: u32, every: u32, max_attempts: u32) -> (u32, u32) {
        let mut budget = RetryBudget::default();
        let (mut attempts, mut failed) = (0, 0);
        for _ in 0..rows {
            let mut paid = 0;
            for attempt in 1..=max_attempts {
                attempts += 1;
                if attempts % every != 0 {
                    budget.refill(paid);
                    break;
                }
                // As the engine does: the attempts are counted before the budget is asked.
                let retry = (attempt < max_attempts)
                    .then(|| budget.pay(Charge::Failed))
                    .flatten();
                match retry {
                    Some(cost) => paid = cost,
                    None => {
                        failed += 1;
                        break;
                    }
                }
            }
        }
        (attempts, failed)
    }

    #[test]
    fn a_tenth_of_500s_never_empties_the_bucket_and_every_500_empties_it_once() {
        // One attempt in ten fails: every failure is retried and succeeds.
        assert_eq!(drive(10_000, 10, 5), (11_111, 0));
        // One in three: the retries are paid back when they succeed.
        assert_eq!(drive(10_000, 3, 5), (14_999, 0));
        // Every attempt fails: a hundred retries, then one attempt per request.
        assert_eq!(drive(1_000, 1, 5), (1_100, 1_000));
    }
}
