//! The in-flight limit: how many requests may be out at once. `--concurrency N` fixes it
//! at N; `--concurrency auto` (the default) sets it from two bounds, the lower winning:
//!
//! - **The need** (Little's law: in flight = rate × latency). To use the rate the limiter
//!   allows, enough requests must be out to cover the time each one takes. The latency is
//!   the 90th percentile of the last answers taken together with the ages of the requests
//!   still out, so that the limit grows during the first round trip, before any answer,
//!   and as soon as the server slows down; a quarter is added as headroom. With
//!   `--rate unlimited` there is no rate to cover: the need is the ceiling, and only the
//!   cap below holds the limit back; the cap then starts at [`START`] and grows from there
//!   (one per fine answer: it doubles every round trip, as TCP's slow start), so that a
//!   server that queues is not sent 64 requests at once, the last answered after 64
//!   times the time of one.
//! - **The cap** (AIMD, as TCP and Netflix's concurrency-limits): a sign that the server
//!   struggles (a timeout or connection error, a 408 or 5xx, a 429) multiplies the limit
//!   by [`BACKOFF`], down to [`FLOOR`] (one request at a time); every other answer adds
//!   [`GROWTH`], so the limit grows back while the server copes and stays low while it
//!   keeps failing. The cap counts whole requests (rounded down), and after a sign of
//!   overload it stays below the limit that met it until [`PROBE_AFTER`] fine answers
//!   came: a server that admits N requests at a time sees N + 1 once in that many
//!   answers, not after every answer.
//! - **The gradient** (as Netflix's Gradient2 and TCP Vegas): a server that queues
//!   requests answers more slowly the more are out, without ever failing until timeouts
//!   come. When the recent answers take more than [`TOLERANCE`] times the run's fastest
//!   ones, the cap shrinks in proportion (smoothed by [`SMOOTHING`]), down to [`START`],
//!   and stops growing; it grows again once the latency is back within the tolerance.
//!
//! The need is never below [`START`]; the limit stays between [`FLOOR`] and [`CEILING`].
//! Until [`SEED_ANSWERS`] answers have come, the latency is the largest seen rather than
//! the 90th percentile: a few first answers say little of the spread, and a limit set
//! too low at the start costs a whole round trip. Only the number in flight is decided
//! here: the rate stays the limiter's, and a 429 still pauses every worker. Latencies are
//! also kept for the whole run (both modes) for the progress display and the summary.
//! Pure logic: time is passed in.

use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroUsize;
use std::time::Duration;

use tokio::time::Instant;

/// The lowest automatic limit, reached only when the server keeps failing: a server that
/// admits one or two requests at a time must not get a steady share of 503s.
pub(crate) const FLOOR: usize = 1;
/// The first limit, and the least the need asks for: with fewer in flight, one slow answer
/// stalls a large share of the run, and four requests in flight are nothing to an API
/// that takes 500 a minute. Only signs of overload take the limit below it.
pub(crate) const START: usize = 4;
/// Recent answers slower than this many times the run's fastest ones mean the requests
/// queue at the server: twice leaves room for an ordinary spread of latencies (an answer
/// at 2.5 s and one at 5 s are the same server), while a queue grows it without bound.
const TOLERANCE: f64 = 2.0;
/// The share of the gradient's correction applied per answer: a fifth, so that the cap
/// follows a queue within a round trip of answers but one slow answer moves it little.
const SMOOTHING: f64 = 0.2;
/// The recent answers the gradient looks at, and how many it needs: 20 answers are a few
/// round trips of a small limit, enough for a 10th percentile that one fast answer does
/// not decide.
const GRADIENT_WINDOW: usize = 20;
/// The recent latency the gradient compares is the 10th percentile of the window: a queue
/// slows every answer, while a spread of latencies leaves some fast ones.
const RECENT: f64 = 0.1;
/// Answers before the need uses the 90th percentile instead of the largest latency seen.
const SEED_ANSWERS: usize = 10;
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
/// Fine answers after a sign of overload before the cap may reach again the limit that
/// met it. Growing back one request per answer, a server that admits 2 at a time would be
/// sent a third after every other answer (a third of the answers refused); held for 20,
/// it is sent a third once in about 21 answers (under 5%), while an odd failure at a
/// high limit costs one request in flight for 20 answers, a few seconds at Drata's rate.
const PROBE_AFTER: u32 = 20;
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
    /// 408, 503, or a 5xx with a `Retry-After`: the server says it is busy.
    ServerError(u16),
    /// 429.
    RateLimited,
    /// Another 5xx (500, 502, 504): this request failed, which says nothing of the load.
    /// The retry budget bounds its retries; it neither lowers the limit nor, being no
    /// real answer, counts as the fastest one.
    Failed(u16),
}

impl Answer {
    fn is_overload(self) -> bool {
        matches!(
            self,
            Answer::Silence | Answer::ServerError(_) | Answer::RateLimited
        )
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Fine => f.write_str("an answer"),
            Answer::Silence => f.write_str("a timeout or connection error"),
            Answer::ServerError(status) | Answer::Failed(status) => write!(f, "HTTP {status}"),
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
    /// The answers slowed with the requests out: the server queues them.
    Queueing { recent: Duration, fastest: Duration },
}

/// A change of the limit, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    pub from: usize,
    pub to: usize,
    pub why: Why,
}

/// The requests out when a sign of overload came, and the fine answers since.
#[derive(Debug, Clone, Copy)]
struct Hold {
    met: usize,
    fine: u32,
    /// When the overload was heard.
    since: Instant,
    /// When the cap reached `met` again: a fine answer to a request sent since ends the
    /// hold.
    probe_from: Option<Instant>,
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
    /// The requests out when the last sign of overload came, and the fine answers since,
    /// while fewer than [`PROBE_AFTER`]: the cap stays below that many.
    hold: Option<Hold>,
    /// Fine answers to come, with no sign of overload between them, before a hold may
    /// begin again: failures with fewer out than a hold's level are not the load's.
    unheld: u32,
    /// The level of the hold that such a failure ended: while `unheld`, a failure with as
    /// many out is the load's again and holds the cap anew.
    ended: Option<usize>,
    /// The last [`WINDOW`] latencies.
    recent: VecDeque<Duration>,
    /// The fastest fine answer of the run, the latency without a queue, as TCP Vegas's
    /// base RTT (any percentile above it creeps up as a queue lasts, until the queue looks
    /// normal). Signs of overload are left out: a 503 refused at once is fast because no
    /// work was done, and would make every answer look queued. An odd fast answer can only
    /// bring the cap to [`START`].
    fastest: Option<Duration>,
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
        let limit = fixed.unwrap_or(START);
        let per_second = interval
            .filter(|i| !i.is_zero())
            .map(|i| 1.0 / i.as_secs_f64());
        Self {
            fixed,
            per_second,
            // A rate bounds the need; without one, the cap grows from the start instead.
            cap: if per_second.is_some() { CEILING } else { START } as f64,
            hold: None,
            unheld: 0,
            ended: None,
            fastest: None,
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

    /// Records the answer to a listing page sent at `sent`. Pages carry 50 identities each
    /// and are read before the updates: their latency says nothing of how the server copes
    /// with the updates in flight, and would read as a queue to the gradient. Only a sign
    /// of overload counts, as for any answer.
    pub(crate) fn on_page_answer(
        &mut self,
        sent: Instant,
        now: Instant,
        answer: Answer,
    ) -> Option<Change> {
        if answer.is_overload() {
            return self.on_answer(sent, now, answer);
        }
        self.forget(sent);
        None
    }

    /// Records the answer to a request sent at `sent`; returns the change of the limit.
    pub(crate) fn on_answer(
        &mut self,
        sent: Instant,
        now: Instant,
        answer: Answer,
    ) -> Option<Change> {
        let level = self.out.values().sum::<usize>();
        self.forget(sent);
        let latency = now.saturating_duration_since(sent);
        self.run.record(latency);
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(latency);
        if answer == Answer::Fine {
            self.fastest = Some(self.fastest.map_or(latency, |f| f.min(latency)));
        }
        if self.fixed.is_some() {
            return None;
        }
        if answer.is_overload() {
            let lower = (self.cap.min(self.need(now)) * BACKOFF).max(FLOOR as f64);
            if lower < self.cap {
                self.reductions += 1;
            }
            self.cap = lower;
            self.hold_below(level, sent, now);
            return self.update(now, answer);
        }
        let Some((gradient, recent, fastest)) = self.gradient() else {
            self.grow(sent, now);
            return self.update(now, answer);
        };
        let shrunk = self.cap.min(self.need(now)) * (1.0 - SMOOTHING * (1.0 - gradient));
        let lower = shrunk.max(START as f64);
        if lower >= self.cap {
            return self.update(now, answer);
        }
        self.reductions += 1;
        self.cap = lower;
        self.update(now, answer).map(|change| Change {
            why: if change.to < change.from {
                Why::Queueing { recent, fastest }
            } else {
                change.why
            },
            ..change
        })
    }

    /// Holds the cap below `level`, the requests out when a request sent at `sent` met a
    /// sign of overload (itself included), for the next [`PROBE_AFTER`] fine answers. A
    /// request sent before the hold began fails in the same overload: the hold stays as
    /// it is. A request sent since that fails with fewer out than the level held (where a
    /// server that admits that many does not fail) says the failures are not the load's
    /// alone (a server failing 30% of any requests): the hold ends, and no other begins
    /// until [`PROBE_AFTER`] fine answers come with no sign between them; the cap is plain
    /// AIMD meanwhile, since holding it would walk it down to one in flight. Meanwhile a
    /// failure with at least the level of the hold that ended out is the load's (the level
    /// a server that admits fewer refuses): it holds the cap again, or one odd failure
    /// would leave such a server a probe after nearly every answer for the rest of the
    /// run. Holds begun so never walk the cap down, their level being no lower.
    fn hold_below(&mut self, level: usize, sent: Instant, now: Instant) {
        if let Some(hold) = self.hold {
            if sent < hold.since {
                return;
            }
            if level < hold.met {
                self.hold = None;
                self.unheld = PROBE_AFTER;
                self.ended = Some(hold.met);
                return;
            }
        }
        if self.unheld > 0 {
            if self.ended.is_none_or(|met| level < met) {
                self.unheld = PROBE_AFTER;
                return;
            }
            self.unheld = 0;
        }
        // One request at a time has nothing below it to hold.
        self.hold = (level > FLOOR).then_some(Hold {
            met: level,
            fine: 0,
            since: now,
            probe_from: None,
        });
    }

    /// Adds [`GROWTH`] to the cap after a fine answer to a request sent at `sent`: not up
    /// to the limit the last sign of overload met until [`PROBE_AFTER`] fine answers came,
    /// then up to that limit and no further until a request sent since is answered fine.
    /// So the probe is one request more, not one per answer that arrives before it goes.
    fn grow(&mut self, sent: Instant, now: Instant) {
        self.unheld = self.unheld.saturating_sub(1);
        let grown = (self.cap + GROWTH).min(CEILING as f64);
        let Some(hold) = self.hold.as_mut() else {
            self.cap = grown;
            return;
        };
        let top = match hold.probe_from {
            Some(from) if sent >= from => {
                self.hold = None;
                self.cap = grown;
                return;
            }
            Some(_) => hold.met,
            None => {
                hold.fine += 1;
                if hold.fine < PROBE_AFTER {
                    hold.met.saturating_sub(1).max(FLOOR)
                } else {
                    hold.probe_from = Some(now);
                    hold.met
                }
            }
        };
        self.cap = grown.min(top as f64).max(self.cap);
    }

    /// `TOLERANCE × fastest / recent` when it is below 1 (the recent answers are slower
    /// than the tolerance allows), with the two latencies; `None` while the latency is
    /// within the tolerance or too few answers came.
    fn gradient(&self) -> Option<(f64, Duration, Duration)> {
        if self.recent.len() < GRADIENT_WINDOW {
            return None;
        }
        let mut window: Vec<Duration> = self
            .recent
            .iter()
            .rev()
            .take(GRADIENT_WINDOW)
            .copied()
            .collect();
        let recent = percentile(&mut window, RECENT)?;
        let fastest = self.fastest?;
        let gradient = TOLERANCE * fastest.as_secs_f64() / recent.as_secs_f64();
        (gradient < 1.0).then_some((gradient, recent, fastest))
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
        // The need is rounded up (it must be covered), the cap down (a cap of 2.1 after an
        // overload at 3 is 2); a hair of slack, since 50 × 0.7 may land just under 35.
        let to = (need.ceil().min((self.cap + 1e-9).floor()) as usize).clamp(FLOOR, CEILING);
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

    /// Requests in flight that use the allowed rate at the current latency, with headroom;
    /// never below [`START`].
    fn need(&self, now: Instant) -> f64 {
        let need = match self.per_second {
            Some(rate) => rate * self.latency(now).as_secs_f64() * HEADROOM,
            None => CEILING as f64,
        };
        need.max(START as f64)
    }

    /// The 90th percentile of the recent latencies and the ages of the requests out; the
    /// largest of them until [`SEED_ANSWERS`] answers came.
    fn latency(&self, now: Instant) -> Duration {
        let mut samples: Vec<Duration> = self.recent.iter().copied().collect();
        for (sent, count) in &self.out {
            let age = now.saturating_duration_since(*sent);
            samples.extend(std::iter::repeat_n(age, *count));
        }
        let share = if self.run.total < SEED_ANSWERS as u64 {
            1.0
        } else {
            PERCENTILE
        };
        percentile(&mut samples, share).unwrap_or_default()
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
        assert_eq!((c.limit(), c.max_reached()), (START, START));
        assert_eq!(c.refresh(start), None);
        // 450/min at 20 ms: 0.15 in flight is enough.
        answers(&mut c, start, MS(133), MS(20), fine(100));
        assert_eq!(c.limit(), START);
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
                from: START,
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
    fn an_unlimited_rate_grows_from_the_start_to_the_ceiling_one_step_per_answer() {
        let mut c = auto(None);
        let start = Instant::now();
        assert_eq!(
            c.refresh(start),
            None,
            "no rate: the cap holds it at the start"
        );
        c.on_send(start);
        assert_eq!(
            c.on_answer(start, start + MS(10), Answer::Fine),
            Some(Change {
                from: START,
                to: START + 1,
                why: Why::Recovery
            })
        );
        answers(&mut c, start, MS(10), MS(10), fine(CEILING - START - 2));
        assert_eq!(c.limit(), CEILING - 1);
        // The step that meets the need is the need's, not a recovery below it.
        c.on_send(start);
        let last = c.on_answer(start, start + MS(10), Answer::Fine);
        assert!(
            matches!(
                last,
                Some(Change {
                    to: CEILING,
                    why: Why::Latency(_),
                    ..
                })
            ),
            "{last:?}"
        );
        answers(&mut c, start, MS(10), MS(10), fine(10));
        assert_eq!(c.limit(), CEILING, "and no further");
        let mut zero = auto(Some(Duration::ZERO));
        answers(&mut zero, start, MS(10), MS(10), fine(CEILING));
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
                to: 17,
                why: Why::Backoff(Answer::ServerError(503))
            }),
            "25 × 0.7 = 17.5, rounded down"
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
                from: START,
                to: 35,
                why: Why::Recovery
            })
        );
        assert_eq!(c.reductions(), 1);
    }

    #[test]
    fn a_500_neither_lowers_the_limit_nor_counts_as_the_fastest_answer() {
        let mut c = auto(Some(MS(100)));
        let start = Instant::now();
        let now = answers(&mut c, start, MS(100), MS(2_000), fine(SEED_ANSWERS));
        let limit = c.limit();
        for status in [500, 502, 504] {
            c.on_send(now);
            c.on_answer(now, now + MS(1), Answer::Failed(status));
        }
        assert_eq!(c.reductions(), 0);
        assert!(c.limit() >= limit, "{} < {limit}", c.limit());
        assert_eq!(c.fastest, Some(MS(2_000)), "a fast 500 did no work");
        assert_eq!(Answer::Failed(502).to_string(), "HTTP 502");
        assert!(!Answer::Failed(500).is_overload());
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
                (17, Why::Backoff(answer)),
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
        // 25 → 17.5 → 12.25 → 8.6 → 6.0 → 4.2 → 2.9 → 2.1 → 1.44 → 1.01 → 1: ten lowered
        // the cap, the rest found it at the floor of one request at a time.
        assert_eq!(c.reductions(), 10);
        // One fine answer adds one: two in flight again. The failures below the first
        // one's limit kept the hold at 25 (they say nothing of a level the server admits).
        answers(&mut c, now, MS(100), MS(2_000), fine(1));
        assert_eq!(c.limit(), 2);
    }

    #[test]
    fn the_limit_grows_back_one_step_per_fine_answer_up_to_the_need() {
        let mut c = auto(Some(MS(100)));
        let start = Instant::now();
        let now = answers(&mut c, start, MS(100), MS(2_000), fine(WINDOW));
        // The 502 comes with 25 requests out, itself included.
        for _ in 0..24 {
            c.on_send(now);
        }
        let now = answers(&mut c, now, MS(100), MS(2_000), [Answer::ServerError(502)]);
        for _ in 0..24 {
            c.forget(now - MS(100));
        }
        assert_eq!(c.limit(), 17);
        c.on_send(now);
        assert_eq!(
            c.on_answer(now, now + MS(2_000), Answer::Fine),
            Some(Change {
                from: 17,
                to: 18,
                why: Why::Recovery
            })
        );
        let now = answers(&mut c, now, MS(100), MS(2_000), fine(6));
        assert_eq!(c.limit(), 24, "one below the limit the 502 met");
        let now = answers(&mut c, now, MS(100), MS(2_000), fine(12));
        assert_eq!(c.limit(), 24, "held there until 20 fine answers");
        answers(&mut c, now, MS(100), MS(2_000), fine(1));
        assert_eq!(c.limit(), 25, "the 20th: back to the need");
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
    fn a_share_of_failures_that_are_not_the_loads_keeps_requests_in_flight() {
        // Unlimited rate, 100 ms a request, one send per 10 ms tick at most: ten in flight
        // send every tick. 30% of the requests fail whatever the load; the cap settles
        // near (1 - p) / (0.3 p) ≈ 8, the hold does not walk it down to one at a time.
        let mut c = auto(None);
        let sent = drive(&mut c, Instant::now(), MS(10), MS(100), 3_000, |n| {
            n % 10 < 3
        });
        assert!(sent >= 1_500, "{sent} of 3000 ticks sent a request");
        assert!(c.max_reached() >= 8, "{}", c.max_reached());
    }

    #[test]
    fn an_odd_failure_costs_little() {
        let mut c = auto(Some(MS(100)));
        let start = Instant::now();
        let odd = |n| n % 100 == 50 && n < 900;
        let sent = drive(&mut c, start, MS(100), MS(2_000), 1_000, odd);
        assert!(sent >= 950, "{sent} of 1000 ticks sent a request");
        assert_eq!(c.limit(), 25, "back to the need after the last one");
    }

    /// A server that works on `admits` requests at a time, `latency` each, and refuses any
    /// more at once with an immediate 503, driven one request per `interval` (at most) for
    /// `ticks` ticks. The first request it works on that ends at or after tick `odd_500`,
    /// if any, is answered 500 rather than fine: an odd failure, not the load's. Returns
    /// the requests answered fine and those refused.
    fn drive_admitting(
        c: &mut Concurrency,
        admits: usize,
        interval: Duration,
        latency: Duration,
        ticks: u32,
        mut odd_500: Option<u32>,
    ) -> (u32, u32) {
        let start = Instant::now();
        let mut out: VecDeque<Instant> = VecDeque::new();
        let (mut fine, mut refused) = (0, 0);
        for tick in 0..ticks {
            let now = start + interval * tick;
            while let Some(sent) = out.front().copied().filter(|at| now - *at >= latency) {
                out.pop_front();
                if odd_500.is_some_and(|at| tick >= at) {
                    odd_500 = None;
                    c.on_answer(sent, now, Answer::ServerError(500));
                    continue;
                }
                c.on_answer(sent, now, Answer::Fine);
                fine += 1;
            }
            c.refresh(now);
            if out.len() < c.limit() {
                c.on_send(now);
                if out.len() < admits {
                    out.push_back(now);
                } else {
                    c.on_answer(now, now, Answer::ServerError(503));
                    refused += 1;
                }
            }
        }
        (fine, refused)
    }

    #[test]
    fn a_server_admitting_two_at_a_time_is_sent_a_third_rarely() {
        // 7.5/s allowed, 1 s per request, 2 at a time: 2 answers a second at best. Each
        // overload at 3 holds the limit at 2 for 20 fine answers; growing back one per
        // answer, a third would go out after every other answer.
        let mut c = auto(Some(MS(133)));
        let (fine, refused) = drive_admitting(&mut c, 2, MS(133), MS(1_000), 900, None);
        let share = f64::from(refused) / f64::from(fine + refused);
        assert!(share < 0.06, "{refused} refused of {}", fine + refused);
        // 900 ticks of 133 ms are 120 s: 240 answers at most.
        assert!(fine >= 215, "{fine} answered: the server kept busy");
        assert_eq!(c.limit(), 2);
    }

    #[test]
    fn an_odd_failure_during_a_hold_does_not_bring_back_the_storm() {
        // As above, with one 500 halfway, while the limit is held at 2: two were out, fewer
        // than the three the hold met, so it ends. The next 503 at three in flight is the
        // load's again and holds the limit anew, rather than every third sent drawing one
        // for the rest of the run.
        let mut c = auto(Some(MS(133)));
        let (fine, refused) = drive_admitting(&mut c, 2, MS(133), MS(1_000), 1_800, Some(900));
        let share = f64::from(refused) / f64::from(fine + refused);
        assert!(share < 0.06, "{refused} refused of {}", fine + refused);
        assert!(fine >= 430, "{fine} answered: the server kept busy");
        assert_eq!(c.limit(), 2);
    }

    #[test]
    fn an_overload_at_three_brings_a_cap_of_two_point_one_down_to_two() {
        let mut c = auto(Some(MS(133)));
        let start = Instant::now();
        drive_admitting(&mut c, 2, MS(133), MS(1_000), 300, None);
        // The cap is rounded down: 3 × 0.7 = 2.1 is two requests, not three.
        c.cap = 3.0;
        c.limit = 3;
        c.hold = None;
        c.on_send(start);
        c.on_answer(start, start, Answer::ServerError(503));
        assert_eq!(c.limit(), 2);
        // One fine answer grows the cap to 3.1, but the hold keeps it at 2 for 20 answers.
        let now = answers(
            &mut c,
            start,
            MS(500),
            MS(1_000),
            fine(PROBE_AFTER as usize - 1),
        );
        assert_eq!(c.limit(), 2);
        let now = answers(&mut c, now, MS(500), MS(1_000), fine(1));
        assert_eq!(c.limit(), 3, "the 20th probes three again");
        // Answers to requests sent before the probe do not take it further.
        c.on_send(start);
        c.on_answer(start, now, Answer::Fine);
        assert_eq!(c.limit(), 3, "sent before the probe: held at three");
        let later = now + MS(10_000);
        c.on_send(later);
        c.on_answer(later, later + MS(1_000), Answer::Fine);
        assert_eq!(c.limit(), 4, "sent since: the hold is over");
        assert!(c.hold.is_none());
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
        assert_eq!(c.refresh(start + MS(4_000)).map(|c| c.to), Some(START));
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

    /// A server that works on one request at a time, `service` each, driven at an
    /// unlimited rate: every tick answers what is done and sends up to the limit.
    /// Returns the largest latency of the run and among the last 100 answers.
    fn drive_queue(
        c: &mut Concurrency,
        start: Instant,
        service: Duration,
        ticks: u32,
    ) -> (Duration, Duration) {
        let tick = MS(10);
        let mut out: VecDeque<(Instant, Instant)> = VecDeque::new();
        let mut last: VecDeque<Duration> = VecDeque::new();
        let mut slowest = Duration::ZERO;
        for n in 0..ticks {
            let now = start + tick * n;
            while let Some(&(sent, done)) = out.front().filter(|(_, done)| *done <= now) {
                out.pop_front();
                c.on_answer(sent, now, Answer::Fine);
                last.push_back(now - sent);
                slowest = slowest.max(now - sent);
                if last.len() > 100 {
                    last.pop_front();
                }
                let _ = done;
            }
            c.refresh(now);
            while out.len() < c.limit() {
                let free = out.back().map_or(now, |(_, done)| (*done).max(now));
                c.on_send(now);
                out.push_back((now, free + service));
            }
        }
        (slowest, last.into_iter().max().unwrap_or_default())
    }

    #[test]
    fn a_queueing_server_brings_the_limit_down_to_the_start() {
        let mut c = auto(None);
        let (slowest, lately) = drive_queue(&mut c, Instant::now(), MS(100), 6_000);
        assert_eq!(c.limit(), START, "the queue is kept short");
        assert!(c.reductions() > 5, "{}", c.reductions());
        assert!(
            lately <= MS(600),
            "{lately:?}: at most a few requests queue"
        );
        // Growing from the start, the gradient heard the queue before 64 went out: no
        // answer took the 6.4 s that 64 at once would.
        assert!(c.max_reached() < 32, "{}", c.max_reached());
        assert!(slowest < MS(3_000), "{slowest:?}");
    }

    #[test]
    fn the_gradient_needs_a_window_of_answers_and_a_latency_beyond_the_tolerance() {
        let mut c = auto(None);
        let start = Instant::now();
        c.refresh(start);
        assert!(c.gradient().is_none(), "no answer yet");
        // 20 fast answers, then 18 at four times their latency: two fast ones are left in
        // the window, its 10th percentile is still fast. Each grew the cap by one.
        let now = answers(&mut c, start, MS(10), MS(100), fine(GRADIENT_WINDOW));
        let now = answers(&mut c, now, MS(10), MS(400), fine(GRADIENT_WINDOW - 2));
        assert_eq!(c.limit(), START + 38);
        assert_eq!(c.reductions(), 0);
        // The 19th: the 10th percentile of the window is 400 ms, twice 100 ms is 200 ms.
        c.on_send(now);
        let change = c.on_answer(now, now + MS(400), Answer::Fine).unwrap();
        assert_eq!(
            change.why,
            Why::Queueing {
                recent: MS(400),
                fastest: MS(100)
            }
        );
        // 42 × (1 - 0.2 × (1 - 2 × 100 / 400)) = 37.8, rounded down.
        assert_eq!(change.to, 37);
        // Exactly twice the fastest is within the tolerance: the cap grows again.
        let mut d = auto(None);
        d.refresh(start);
        let now = answers(&mut d, start, MS(10), MS(100), fine(GRADIENT_WINDOW));
        let twice = MS(200);
        answers(&mut d, now, MS(10), twice, fine(GRADIENT_WINDOW));
        assert_eq!(d.reductions(), 0);
        assert_eq!(
            d.limit(),
            START + 2 * GRADIENT_WINDOW,
            "grew at every answer"
        );
    }

    /// Four out at `t0`, the first refused at `t1`: a hold below four. At the same
    /// instant a second is answered fine and one more sent. Then, with three out, either
    /// one sent before the hold or the one sent at its start is refused; five fine
    /// answers follow. Returns the limit after them.
    fn limit_after_a_second_refusal(sent_before_the_hold: bool) -> usize {
        let mut c = auto(None);
        let t0 = Instant::now();
        for _ in 0..START {
            c.on_send(t0);
        }
        let t1 = t0 + MS(10);
        c.on_answer(t0, t1, Answer::ServerError(503));
        c.on_answer(t0, t1, Answer::Fine);
        c.on_send(t1);
        let refused = if sent_before_the_hold { t0 } else { t1 };
        c.on_answer(refused, t1 + MS(10), Answer::ServerError(503));
        answers(&mut c, t1 + MS(20), MS(10), MS(5), fine(5));
        c.limit()
    }

    #[test]
    fn only_a_request_sent_since_the_hold_began_can_end_it() {
        // Sent before: the same overload; the hold keeps the cap below four.
        assert_eq!(limit_after_a_second_refusal(true), START - 1);
        // Sent at the hold's start or later, refused with fewer out than the hold met:
        // not the load's failure; the hold ends and the cap grows one per answer.
        assert!(
            limit_after_a_second_refusal(false) > START,
            "the hold ended"
        );
    }

    #[test]
    fn the_gradient_is_judged_from_the_window_th_answer_on() {
        // One fast answer, then slow ones: the 10th percentile is slow from the second
        // slow answer on, but nothing is judged before the window is full.
        let mut c = auto(None);
        let start = Instant::now();
        c.refresh(start);
        let now = answers(&mut c, start, MS(10), MS(100), fine(1));
        let now = answers(&mut c, now, MS(10), MS(400), fine(GRADIENT_WINDOW - 2));
        assert_eq!(c.reductions(), 0, "{} answers", GRADIENT_WINDOW - 1);
        assert!(c.gradient().is_none());
        answers(&mut c, now, MS(10), MS(400), fine(1));
        assert_eq!(c.reductions(), 1, "the window-th answer is judged");
    }

    #[test]
    fn a_spread_of_latencies_is_not_a_queue() {
        // 7.5/s against a server answering anywhere from 2.5 s to 7.5 s.
        let mut c = auto(Some(MS(133)));
        let mut now = Instant::now();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..300 {
            let latency = MS(rng.u64(2_500..=7_500));
            c.on_send(now);
            c.on_answer(now, now + latency, Answer::Fine);
            now += MS(133);
        }
        assert_eq!(c.reductions(), 0);
        assert_eq!(c.limit(), CEILING, "7.5/s × 7 s × 1.25 = 66");
    }

    #[test]
    fn listing_pages_do_not_feed_the_gradient_but_their_overload_counts() {
        let now = Instant::now();
        let mut c = Concurrency::new(ConcurrencyMode::Auto, None);
        for i in 0..40 {
            let sent = now + MS(i * 100);
            let latency = if i == 0 { MS(1) } else { MS(50) };
            c.on_send(sent);
            assert!(c
                .on_page_answer(sent, sent + latency, Answer::Fine)
                .is_none());
        }
        assert!(
            c.recent.is_empty() && c.gradient().is_none(),
            "pages not measured"
        );
        assert_eq!(c.reductions, 0);
        c.on_send(now);
        c.on_page_answer(now, now + MS(10), Answer::ServerError(503));
        assert_eq!(
            c.reductions, 1,
            "an overloaded listing still lowers the cap"
        );
    }

    #[test]
    fn the_first_answers_seed_the_limit_with_the_largest_latency() {
        let mut c = auto(Some(MS(100)));
        let start = Instant::now();
        let now = answers(&mut c, start, MS(0), MS(5_000), [Answer::Fine]);
        let now = answers(&mut c, now, MS(0), MS(1_000), fine(SEED_ANSWERS - 2));
        for _ in 0..20 {
            c.on_send(now);
        }
        // Nine answers, one of them 5 s: 10/s × 5 s × 1.25. The 90th percentile of the 29
        // samples would be 1 s.
        c.refresh(now);
        assert_eq!(c.limit(), 63);
        // The tenth answer: from now on the 90th percentile.
        answers(&mut c, now, MS(0), MS(1_000), fine(1));
        assert_eq!(c.limit(), 13, "10/s × 1 s × 1.25, rounded up");
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
    fn the_histogram_holds_latencies_from_zero_to_past_an_hour() {
        let quantile_of = |latency| {
            let mut run = Histogram::default();
            run.record(latency);
            run.quantile(0.5).unwrap()
        };
        assert!(quantile_of(Duration::ZERO) < Duration::from_nanos(100));
        // 1 µs is the first bucket of its doubling, 1.1% wide.
        let one = quantile_of(Duration::from_micros(1));
        assert!(
            one > Duration::from_nanos(1_000) && one < Duration::from_nanos(1_020),
            "{one:?}"
        );
        // Beyond the last bucket (2^32 µs, 71 minutes): kept in it.
        let longest = quantile_of(Duration::from_secs(10_000));
        assert!(
            longest > Duration::from_secs(4_200) && longest < Duration::from_secs(4_400),
            "{longest:?}"
        );
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
