//! The in-flight limit: how many requests may be out at once. `--concurrency N` fixes it
//! at N; `--concurrency auto` (the default) sets it from two bounds, the lower winning:
//!
//! - **The need** (Little's law: in flight = rate × latency). To use the rate the limiter
//!   allows, enough requests must be out to cover the time each one takes. The latency is
//!   the 90th percentile of the last answers taken together with the ages of the requests
//!   still out, so that the limit grows during the first round trip, before any answer,
//!   and as soon as the server slows down; a quarter is added as headroom. With
//!   `--rate unlimited` there is no rate to cover: the need is the ceiling, and only the
//!   cap below holds the limit back.
//! - **The cap** (AIMD, as TCP and Netflix's concurrency-limits): a sign that the server
//!   struggles (a timeout or connection error, a 408 or 5xx, a 429) multiplies the limit
//!   by [`BACKOFF`]; every other answer adds [`GROWTH`], so the limit grows back while
//!   the server copes and stays low while it keeps failing.
//!
//! The limit stays between [`FLOOR`] and [`CEILING`]. Only the number in flight is decided
//! here: the rate stays the limiter's, and a 429 still pauses every worker. Latencies are
//! also kept for the whole run (both modes) for the progress display and the summary.
//! Pure logic: time is passed in.

use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroUsize;
use std::time::Duration;

use tokio::time::Instant;

/// The lowest automatic limit: with fewer in flight, one slow answer stalls a large share
/// of the run, and four requests in flight are nothing to an API that takes 500 a minute.
pub(crate) const FLOOR: usize = 4;
/// The highest automatic limit: Drata's 500 requests a minute at a 5 s latency need about
/// 42 in flight, 52 with the headroom; 64 covers that with room to spare, while bounding
/// the sockets, workers and memory of a run.
pub(crate) const CEILING: usize = 64;
/// The latency percentile Little's law is applied to: the need must cover most answers,
/// not the typical one, or every slower answer leaves a gap in the rate.
const PERCENTILE: f64 = 0.9;
/// Slots beyond rate × latency: a request waits at the rate limiter while the others are
/// out, and latencies spread beyond the percentile.
const HEADROOM: f64 = 1.25;
/// The need is computed from the last this many answers: a few seconds at Drata's rate,
/// so that a change of latency shows within seconds, while one odd answer in 50 does not
/// move the 90th percentile.
const WINDOW: usize = 50;
/// The limit is multiplied by this after a sign of overload. With one step of growth per
/// fine answer, a share p of failures settles the limit near (1 - p) / (0.3 p): about 8
/// in flight at 30% failures, while an odd failure in a hundred costs next to nothing.
const BACKOFF: f64 = 0.7;
/// Added to the cap by every answer that is not a sign of overload: one a request, so the
/// limit grows back to the need within a few round trips once the server copes again.
const GROWTH: f64 = 1.0;
/// Run latencies are kept in buckets this many to a doubling (1.1% wide each), so that a
/// percentile is within half a per cent whatever the run's length, in 16 KiB.
const BUCKETS_PER_DOUBLING: f64 = 64.0;
/// Buckets from 1 µs to 2^32 µs (71 minutes), beyond the longest `--timeout` (1 hour).
const BUCKETS: usize = 64 * 32;

/// `--concurrency`: `auto`, or a fixed number of requests in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConcurrencyMode {
    Auto,
    Fixed(NonZeroUsize),
}

impl ConcurrencyMode {
    /// The most requests ever in flight: the workers to start, the connections to keep.
    pub(crate) fn ceiling(self) -> usize {
        match self {
            ConcurrencyMode::Auto => CEILING,
            ConcurrencyMode::Fixed(n) => n.get(),
        }
    }
}

impl std::fmt::Display for ConcurrencyMode {
    /// The form `--concurrency` takes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConcurrencyMode::Auto => f.write_str("auto"),
            ConcurrencyMode::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// How an attempt ended, as far as the load on the server goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// An answer that says nothing of overload: a 2xx, a 3xx, a 4xx other than 408 and 429.
    Fine,
    /// A timeout or a connection error.
    Silence,
    /// 408 or a 5xx.
    ServerError(u16),
    /// 429.
    RateLimited,
}

impl Answer {
    fn is_overload(self) -> bool {
        self != Answer::Fine
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Fine => f.write_str("an answer"),
            Answer::Silence => f.write_str("a timeout or connection error"),
            Answer::ServerError(status) => write!(f, "HTTP {status}"),
            Answer::RateLimited => f.write_str("HTTP 429"),
        }
    }
}

/// Why the limit changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// Little's law at this latency (the 90th percentile, requests out included).
    Latency(Duration),
    /// A sign of overload.
    Backoff(Answer),
    /// Growing back after a backoff.
    Recovery,
}

/// A change of the limit, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    pub from: usize,
    pub to: usize,
    pub why: Why,
}

/// The in-flight limit of one run.
#[derive(Debug, Clone)]
pub(crate) struct Concurrency {
    /// `--concurrency N`; `None` for auto.
    fixed: Option<usize>,
    /// The rate the limiter allows, per second; `None` when unlimited.
    per_second: Option<f64>,
    /// The AIMD bound.
    cap: f64,
    /// The last [`WINDOW`] latencies.
    recent: VecDeque<Duration>,
    /// When the requests still out were sent, with how many at each instant.
    out: BTreeMap<Instant, usize>,
    limit: usize,
    max: usize,
    reductions: u64,
    run: Histogram,
}

impl Concurrency {
    /// `interval` is the limiter's time between two requests; `None` when unlimited.
    pub(crate) fn new(mode: ConcurrencyMode, interval: Option<Duration>) -> Self {
        let fixed = match mode {
            ConcurrencyMode::Auto => None,
            ConcurrencyMode::Fixed(n) => Some(n.get()),
        };
        let limit = fixed.unwrap_or(FLOOR);
        Self {
            fixed,
            per_second: interval
                .filter(|i| !i.is_zero())
                .map(|i| 1.0 / i.as_secs_f64()),
            cap: CEILING as f64,
            recent: VecDeque::with_capacity(WINDOW),
            out: BTreeMap::new(),
            limit,
            max: limit,
            reductions: 0,
            run: Histogram::default(),
        }
    }

    /// Requests that may be in flight now.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// The highest limit of the run.
    pub(crate) fn max_reached(&self) -> usize {
        self.max
    }

    /// How many signs of overload lowered the cap.
    pub(crate) fn reductions(&self) -> u64 {
        self.reductions
    }

    /// Records a request sent at `at`.
    pub(crate) fn on_send(&mut self, at: Instant) {
        *self.out.entry(at).or_default() += 1;
    }

    /// Forgets a request sent at `sent` that will never be answered (the run stopped).
    pub(crate) fn forget(&mut self, sent: Instant) {
        if let Some(count) = self.out.get_mut(&sent) {
            *count -= 1;
            if *count == 0 {
                self.out.remove(&sent);
            }
        }
    }

    /// Records the answer to a request sent at `sent`; returns the change of the limit.
    pub(crate) fn on_answer(
        &mut self,
        sent: Instant,
        now: Instant,
        answer: Answer,
    ) -> Option<Change> {
        self.forget(sent);
        let latency = now.saturating_duration_since(sent);
        self.run.record(latency);
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(latency);
        if self.fixed.is_some() {
            return None;
        }
        if answer.is_overload() {
            let lower = (self.cap.min(self.need(now)) * BACKOFF).max(FLOOR as f64);
            if lower < self.cap {
                self.reductions += 1;
            }
            self.cap = lower;
        } else {
            self.cap = (self.cap + GROWTH).min(CEILING as f64);
        }
        self.update(now, answer)
    }

    /// Recomputes the limit as time passes (the requests out grow older); returns the
    /// change, if any.
    pub(crate) fn refresh(&mut self, now: Instant) -> Option<Change> {
        if self.fixed.is_some() {
            return None;
        }
        self.update(now, Answer::Fine)
    }

    fn update(&mut self, now: Instant, answer: Answer) -> Option<Change> {
        let need = self.need(now);
        let to = (need.min(self.cap).ceil() as usize).clamp(FLOOR, CEILING);
        let from = self.limit;
        let why = match (to.cmp(&from), answer.is_overload()) {
            (std::cmp::Ordering::Equal, _) => return None,
            (std::cmp::Ordering::Less, true) => Why::Backoff(answer),
            _ if self.cap < need => Why::Recovery,
            _ => Why::Latency(self.latency(now)),
        };
        self.limit = to;
        self.max = self.max.max(to);
        Some(Change { from, to, why })
    }

    /// Requests in flight that use the allowed rate at the current latency, with headroom.
    fn need(&self, now: Instant) -> f64 {
        match self.per_second {
            Some(rate) => rate * self.latency(now).as_secs_f64() * HEADROOM,
            None => CEILING as f64,
        }
    }

    /// The 90th percentile of the recent latencies and the ages of the requests out.
    fn latency(&self, now: Instant) -> Duration {
        let mut samples: Vec<Duration> = self.recent.iter().copied().collect();
        for (sent, count) in &self.out {
            let age = now.saturating_duration_since(*sent);
            samples.extend(std::iter::repeat_n(age, *count));
        }
        percentile(&mut samples, PERCENTILE).unwrap_or_default()
    }

    /// The median and 95th percentile of the last answers' latencies.
    pub(crate) fn recent_latency(&self) -> (Option<Duration>, Option<Duration>) {
        let mut samples: Vec<Duration> = self.recent.iter().copied().collect();
        (
            percentile(&mut samples, 0.5),
            percentile(&mut samples, 0.95),
        )
    }

    /// The median and 95th percentile of every latency of the run.
    pub(crate) fn run_latency(&self) -> (Option<Duration>, Option<Duration>) {
        (self.run.quantile(0.5), self.run.quantile(0.95))
    }
}

/// The nearest-rank percentile `q` (0 to 1) of `samples`; `None` when there are none.
fn percentile(samples: &mut [Duration], q: f64) -> Option<Duration> {
    samples.sort_unstable();
    let rank = (q * samples.len() as f64).ceil() as usize;
    samples.get(rank.max(1) - 1).copied()
}

/// Latencies of a whole run in logarithmic buckets.
#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }
}

impl Histogram {
    fn record(&mut self, latency: Duration) {
        let micros = latency.as_micros() as f64;
        let bucket = ((micros + 1.0).log2() * BUCKETS_PER_DOUBLING) as usize;
        self.counts[bucket.min(BUCKETS - 1)] += 1;
        self.total += 1;
    }

    /// The nearest-rank quantile `q`, as the geometric middle of its bucket.
    fn quantile(&self, q: f64) -> Option<Duration> {
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        let bucket = self.counts.iter().position(|count| {
            seen += count;
            seen >= rank
        })?;
        let micros = ((bucket as f64 + 0.5) / BUCKETS_PER_DOUBLING).exp2() - 1.0;
        Some(Duration::from_secs_f64(micros / 1e6))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn auto(interval: Option<Duration>) -> Concurrency {
        Concurrency::new(ConcurrencyMode::Auto, interval)
    }

    fn fixed(n: usize) -> Concurrency {
        Concurrency::new(
            ConcurrencyMode::Fixed(NonZeroUsize::new(n).unwrap()),
            Some(MS(100)),
        )
    }

    /// `count` answers of `latency` each, one every `every`, starting at `start`; returns
    /// when the last was answered.
    fn answers(
        c: &mut Concurrency,
        start: Instant,
        every: Duration,
        latency: Duration,
        outcomes: impl IntoIterator<Item = Answer>,
    ) -> Instant {
        let mut now = start;
        for answer in outcomes {
            let sent = now;
            c.on_send(sent);
            now = sent + every;
            c.on_answer(sent, sent + latency, answer);
        }
        now
    }

    fn fine(count: usize) -> impl Iterator<Item = Answer> {
        std::iter::repeat_n(Answer::Fine, count)
    }

    /// A server answering after `latency`, failing the requests `fail` picks by their
    /// number, driven one request per `interval` for `ticks` ticks, as the pool does: each
    /// tick answers what is due, refreshes the limit and sends when a slot is free. The
    /// requests still out at the end are forgotten. Returns the requests sent.
    fn drive(
        c: &mut Concurrency,
        start: Instant,
        interval: Duration,
        latency: Duration,
        ticks: u32,
        fail: impl Fn(u32) -> bool,
    ) -> u32 {
        let mut out: VecDeque<(Instant, u32)> = VecDeque::new();
        let mut sent = 0;
        for tick in 0..ticks {
            let now = start + interval * tick;
            while let Some(&(at, n)) = out.front().filter(|(at, _)| now - *at >= latency) {
                out.pop_front();
                let answer = if fail(n) {
                    Answer::ServerError(500)
                } else {
                    Answer::Fine
                };
                c.on_answer(at, now, answer);
            }
            c.refresh(now);
            if out.len() < c.limit() {
                c.on_send(now);
                out.push_back((now, sent));
                sent += 1;
            }
        }
        for (at, _) in out {
            c.forget(at);
        }
        sent
    }

    #[test]
    fn a_fixed_limit_never_moves_but_latencies_are_measured() {
        let mut c = fixed(8);
        let start = Instant::now();
        assert_eq!(c.limit(), 8);
        answers(&mut c, start, MS(10), MS(2_000), fine(60));
        let failures = std::iter::repeat_n(Answer::ServerError(503), 20);
        answers(&mut c, start, MS(10), MS(2_000), failures);
        assert_eq!(c.refresh(start + MS(60_000)), None);
        assert_eq!((c.limit(), c.max_reached(), c.reductions()), (8, 8, 0));
        let (p50, p95) = c.run_latency();
        assert!(p50.unwrap().abs_diff(MS(2_000)) < MS(50), "{p50:?}");
        assert!(p95.unwrap().abs_diff(MS(2_000)) < MS(50), "{p95:?}");
        assert_eq!(c.recent_latency(), (Some(MS(2_000)), Some(MS(2_000))));
    }

    #[test]
    fn auto_starts_at_the_floor_and_stays_there_at_low_latency() {
        let mut c = auto(Some(MS(133)));
        let start = Instant::now();
        assert_eq!((c.limit(), c.max_reached()), (FLOOR, FLOOR));
        assert_eq!(c.refresh(start), None);
        // 450/min at 20 ms: 0.15 in flight is enough.
        answers(&mut c, start, MS(133), MS(20), fine(100));
        assert_eq!(c.limit(), FLOOR);
        assert_eq!(
            c.run_latency().0.map(|l| l.abs_diff(MS(20)) < MS(1)),
            Some(true)
        );
    }

    #[test]
    fn the_limit_follows_littles_law_at_a_steady_latency() {
        // 10 requests a second, each taking 2 s: 20 in flight, 25 with the headroom.
        let mut c = auto(Some(MS(100)));
        let start = Instant::now();
        let now = answers(&mut c, start, MS(100), MS(2_000), fine(WINDOW));
        assert_eq!(c.limit(), 25);
        assert_eq!(c.max_reached(), 25);
        assert_eq!(c.refresh(now), None, "steady: no change");
        // The server speeds up to 1 s: the need halves once the window has seen it.
        let now = answers(&mut c, now, MS(100), MS(1_000), fine(WINDOW - 6));
        assert_eq!(
            c.limit(),
            25,
            "six of the last 50 are slow: the 90th percentile too"
        );
        c.on_send(now);
        assert_eq!(
            c.on_answer(now, now + MS(1_000), Answer::Fine),
            Some(Change {
                from: 25,
                to: 13,
                why: Why::Latency(MS(1_000))
            }),
            "10/s × 1 s × 1.25, rounded up"
        );
        assert_eq!(c.max_reached(), 25);
    }

    #[test]
    fn a_change_of_latency_is_logged_with_the_latency() {
        let mut c = auto(Some(MS(100)));
        let start = Instant::now();
        c.on_send(start);
        let change = c.on_answer(start, start + MS(4_000), Answer::Fine);
        assert_eq!(
            change,
            Some(Change {
                from: FLOOR,
                to: 50,
                why: Why::Latency(MS(4_000))
            })
        );
    }

    #[test]
    fn the_first_round_trip_is_not_held_back() {
        // 450/min against a server taking 5 s: no answer comes for 5 s, yet the ages of
        // the requests out make the limit grow as fast as the rate sends them.
        let mut c = auto(Some(MS(133)));
        let sent = drive(&mut c, Instant::now(), MS(133), MS(5_000), 150, |_| false);
        assert_eq!(
            sent, 150,
            "one request every tick: the limit never held one back"
        );
        assert_eq!(c.limit(), 48, "7.5/s × 5.05 s × 1.25");
    }

    #[test]
    fn a_slow_server_is_covered_whatever_its_latency() {
        for (latency_ms, expected) in [(500, 5), (2_000, 20), (5_000, 48)] {
            let mut c = auto(Some(MS(133)));
            let ticks = 200;
            let sent = drive(
                &mut c,
                Instant::now(),
                MS(133),
                MS(latency_ms),
                ticks,
                |_| false,
            );
            assert_eq!(sent, ticks, "{latency_ms} ms");
            assert_eq!(c.limit(), expected, "{latency_ms} ms");
        }
    }

    #[test]
    fn an_unlimited_rate_needs_the_ceiling() {
        let mut c = auto(None);
        let start = Instant::now();
        assert_eq!(
            c.refresh(start),
            Some(Change {
                from: FLOOR,
                to: CEILING,
                why: Why::Latency(Duration::ZERO)
            })
        );
        let mut zero = auto(Some(Duration::ZERO));
        zero.refresh(start);
        assert_eq!(zero.limit(), CEILING, "a zero interval is unlimited too");
    }

    #[test]
    fn the_ceiling_bounds_any_latency() {
        let mut c = auto(Some(MS(10)));
        answers(&mut c, Instant::now(), MS(10), MS(30_000), fine(WINDOW));
        assert_eq!((c.limit(), c.max_reached()), (CEILING, CEILING));
    }

    #[test]
    fn a_server_error_backs_off_multiplicatively() {
        let mut c = auto(Some(MS(100)));
        let start = Instant::now();
        let now = answers(&mut c, start, MS(100), MS(2_000), fine(WINDOW));
        assert_eq!(c.limit(), 25);
        c.on_send(now);
        let change = c.on_answer(now, now + MS(2_000), Answer::ServerError(503));
        assert_eq!(
            change,
            Some(Change {
                from: 25,
                to: 18,
                why: Why::Backoff(Answer::ServerError(503))
            }),
            "25 × 0.7 = 17.5, rounded up"
        );
        assert_eq!(c.reductions(), 1);
        assert_eq!(c.max_reached(), 25);
    }

    #[test]
    fn a_first_answer_that_fails_slowly_raises_the_limit_without_calling_it_a_backoff() {
        let mut c = auto(Some(MS(100)));
        let start = Instant::now();
        c.on_send(start);
        let change = c.on_answer(start, start + MS(4_000), Answer::ServerError(500));
        // The need is 50; the cap becomes 35: up from the floor, held by the cap.
        assert_eq!(
            change,
            Some(Change {
                from: FLOOR,
                to: 35,
                why: Why::Recovery
            })
        );
        assert_eq!(c.reductions(), 1);
    }

    #[test]
    fn timeouts_and_429s_back_off_too() {
        for answer in [
            Answer::Silence,
            Answer::RateLimited,
            Answer::ServerError(408),
        ] {
            let mut c = auto(Some(MS(100)));
            let now = answers(&mut c, Instant::now(), MS(100), MS(2_000), fine(WINDOW));
            c.on_send(now);
            let change = c.on_answer(now, now + MS(2_000), answer).unwrap();
            assert_eq!(
                (change.to, change.why),
                (18, Why::Backoff(answer)),
                "{answer}"
            );
        }
    }

    #[test]
    fn failures_in_a_row_stop_at_the_floor() {
        let mut c = auto(Some(MS(100)));
        let start = Instant::now();
        let now = answers(&mut c, start, MS(100), MS(2_000), fine(WINDOW));
        let failures = std::iter::repeat_n(Answer::ServerError(500), 20);
        answers(&mut c, now, MS(100), MS(2_000), failures);
        assert_eq!(c.limit(), FLOOR);
        // 25 → 17.5 → 12.25 → 8.6 → 6.0 → 4.2 → 4: five lowered the cap, the rest found
        // it at the floor.
        assert_eq!(c.reductions(), 6);
    }

    #[test]
    fn the_limit_grows_back_one_step_per_fine_answer_up_to_the_need() {
        let mut c = auto(Some(MS(100)));
        let start = Instant::now();
        let now = answers(&mut c, start, MS(100), MS(2_000), fine(WINDOW));
        let now = answers(&mut c, now, MS(100), MS(2_000), [Answer::ServerError(502)]);
        assert_eq!(c.limit(), 18);
        c.on_send(now);
        assert_eq!(
            c.on_answer(now, now + MS(2_000), Answer::Fine),
            Some(Change {
                from: 18,
                to: 19,
                why: Why::Recovery
            })
        );
        answers(&mut c, now, MS(100), MS(2_000), fine(6));
        assert_eq!(c.limit(), 25, "back to the need");
        answers(&mut c, now, MS(100), MS(2_000), fine(20));
        assert_eq!(c.limit(), 25, "and no further");
    }

    #[test]
    fn a_struggling_server_keeps_the_limit_low() {
        // 10/s allowed, 2 s latency: the need is 25. With 30% of answers 500, the limit
        // settles far below it; once the errors stop, it grows back.
        let mut c = auto(Some(MS(100)));
        let start = Instant::now();
        drive(&mut c, start, MS(100), MS(2_000), 600, |n| n % 10 < 3);
        assert!(c.limit() <= 10, "{}", c.limit());
        assert!(c.max_reached() > 20, "{}", c.max_reached());
        assert!(c.reductions() >= 10, "{}", c.reductions());
        drive(&mut c, start + MS(60_000), MS(100), MS(2_000), 300, |_| {
            false
        });
        assert_eq!(c.limit(), 25, "recovered");
    }

    #[test]
    fn an_odd_failure_costs_little() {
        let mut c = auto(Some(MS(100)));
        let start = Instant::now();
        let sent = drive(&mut c, start, MS(100), MS(2_000), 1_000, |n| n % 100 == 50);
        assert!(sent >= 950, "{sent} of 1000 ticks sent a request");
        assert_eq!(c.limit(), 25);
    }

    #[test]
    fn requests_out_count_as_latency_until_forgotten() {
        let mut c = auto(Some(MS(100)));
        let start = Instant::now();
        for _ in 0..3 {
            c.on_send(start);
        }
        c.refresh(start + MS(2_000));
        assert_eq!(c.limit(), 25, "three requests out for 2 s");
        c.forget(start);
        c.refresh(start + MS(3_000));
        assert_eq!(c.limit(), 38, "the other two are still out, for 3 s now");
        c.forget(start);
        c.forget(start);
        c.forget(start);
        assert_eq!(c.refresh(start + MS(4_000)).map(|c| c.to), Some(FLOOR));
        assert!(c.out.is_empty());
    }

    #[test]
    fn the_window_keeps_the_last_answers() {
        let mut c = auto(Some(MS(100)));
        let start = Instant::now();
        let now = answers(&mut c, start, MS(100), MS(4_000), fine(WINDOW));
        answers(&mut c, now, MS(100), MS(1_000), fine(WINDOW - 1));
        assert_eq!(c.recent_latency(), (Some(MS(1_000)), Some(MS(1_000))));
        assert_eq!(c.recent.len(), WINDOW);
        assert_eq!(c.recent[0], MS(4_000), "the oldest one left");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=20).rev().map(MS).collect();
        assert_eq!(percentile(&mut samples, 0.5), Some(MS(10)));
        assert_eq!(percentile(&mut samples, 0.9), Some(MS(18)));
        assert_eq!(percentile(&mut samples, 0.95), Some(MS(19)));
        assert_eq!(percentile(&mut samples, 1.0), Some(MS(20)));
        assert_eq!(percentile(&mut samples, 0.0), Some(MS(1)));
        assert_eq!(percentile(&mut [], 0.5), None);
        assert_eq!(auto(None).recent_latency(), (None, None));
        assert_eq!(auto(None).run_latency(), (None, None));
    }

    #[test]
    fn run_percentiles_are_within_a_bucket() {
        let mut histogram = Histogram::default();
        for ms in 1..=1_000 {
            histogram.record(MS(ms));
        }
        for (q, expected) in [(0.5, 500.0), (0.95, 950.0), (0.01, 10.0), (1.0, 1_000.0)] {
            let got = histogram.quantile(q).unwrap().as_secs_f64() * 1e3;
            assert!((got / expected - 1.0).abs() < 0.006, "q {q}: {got} ms");
        }
        let mut small = Histogram::default();
        small.record(Duration::ZERO);
        small.record(Duration::from_micros(1));
        assert!(small.quantile(0.5).unwrap() < Duration::from_micros(1));
        assert_eq!(small.counts[0], 1, "zero has a bucket of its own");
        small.record(Duration::from_secs(100_000));
        assert_eq!(
            small.counts[BUCKETS - 1],
            1,
            "beyond the last bucket: the last"
        );
        assert_eq!(small.total, 3);
    }

    #[test]
    fn modes_and_answers_print_as_given() {
        assert_eq!(ConcurrencyMode::Auto.to_string(), "auto");
        let eight = ConcurrencyMode::Fixed(NonZeroUsize::new(8).unwrap());
        assert_eq!(eight.to_string(), "8");
        assert_eq!(
            (ConcurrencyMode::Auto.ceiling(), eight.ceiling()),
            (CEILING, 8)
        );
        assert_eq!(Answer::ServerError(503).to_string(), "HTTP 503");
        assert_eq!(Answer::RateLimited.to_string(), "HTTP 429");
        assert_eq!(Answer::Silence.to_string(), "a timeout or connection error");
        assert_eq!(Answer::Fine.to_string(), "an answer");
    }
}
