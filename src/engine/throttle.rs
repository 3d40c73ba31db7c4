//! Adaptive slowdown after 429s. The configured `--rate` is a ceiling; when the server
//! still answers 429, the pace drops once per storm: on the first storm to half, on later
//! ones to 90% of the rate the server accepted since the previous storm (time paused
//! left out), and after a quiet period it recovers step by step. So a run asked to go
//! faster than the server allows settles just under the server's limit instead of
//! retrying in a storm. Pure logic: time is passed in.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// After a storm's pause, 429s for this long still belong to the same storm.
const STORM_WINDOW: Duration = Duration::from_secs(1);
/// No 429 for this long before the pace starts to recover.
const QUIET_PERIOD: Duration = Duration::from_secs(10);
/// Time between two recovery steps.
const RECOVERY_STEP: Duration = Duration::from_secs(2);
/// Each recovery step shortens the interval by this factor (about +11% rate).
const RECOVERY_FACTOR: f64 = 0.9;
/// The slowest pace it ever settles at.
const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// Successes over at most this window measure the rate the server accepts.
const MEASURE_WINDOW: Duration = Duration::from_secs(10);
/// Below this many successes in the window, the measure is too thin to use.
const MEASURE_MIN_SUCCESSES: usize = 5;
/// Share of the measured accepted rate to settle at.
const MEASURE_SHARE: f64 = 0.9;
/// When the server accepted at least the current pace yet answered 429 (a burst), the
/// interval grows by this factor only.
const BURST_SLOWDOWN: f64 = 1.25;
/// The share of 503 (and 408) answers is measured over the last this many answers: a few
/// seconds at Drata's rate, so that a struggling server is heard within seconds. Another 5xx
/// (500, 502, 504) never comes here: it is one request's failure, which the retry budget
/// bounds (`budget.rs`), not a sign of load.
const ERROR_WINDOW: usize = 20;
/// This many 503 (or 408) answers in the window lower the rate as a 429 storm does: a
/// fifth of the answers is a server that cannot keep up, not an odd failure.
const ERROR_COUNT: usize = 4;

#[derive(Debug, Clone)]
pub(crate) struct AdaptiveRate {
    /// The configured interval between requests; zero when unlimited.
    configured: Duration,
    /// The slower interval in force after 429s; `None` while the configured rate holds.
    slowed: Option<Duration>,
    next_slot: Option<Instant>,
    last_send: Option<Instant>,
    /// Moving average of the time between sends, to know the pace a 429 interrupted.
    average_gap: Option<Duration>,
    last_429: Option<Instant>,
    last_change: Option<Instant>,
    /// When the current storm's 429s stop counting as the same storm.
    storm_until: Option<Instant>,
    /// When the previous storm began: the measure starts there, past any initial burst.
    previous_storm: Option<Instant>,
    reductions: u64,
    /// Recent successful answers, to measure what the server accepts.
    successes: VecDeque<Instant>,
    /// Recent pauses `(start, end)`: time in them is not time the server could accept.
    pauses: VecDeque<(Instant, Instant)>,
    /// The last [`ERROR_WINDOW`] answers: `true` for a 503 or 408 (a sign of overload).
    answers: VecDeque<bool>,
}

impl AdaptiveRate {
    pub(crate) fn new(configured: Option<Duration>) -> Self {
        Self {
            configured: configured.unwrap_or(Duration::ZERO),
            slowed: None,
            next_slot: None,
            last_send: None,
            average_gap: None,
            last_429: None,
            last_change: None,
            storm_until: None,
            previous_storm: None,
            reductions: 0,
            successes: VecDeque::new(),
            pauses: VecDeque::new(),
            answers: VecDeque::with_capacity(ERROR_WINDOW),
        }
    }

    fn remember(&mut self, server_error: bool) {
        if self.answers.len() == ERROR_WINDOW {
            self.answers.pop_front();
        }
        self.answers.push_back(server_error);
    }

    /// Records a 503 or 408 answer (or a 5xx with `Retry-After`). When [`ERROR_COUNT`] of the last [`ERROR_WINDOW`]
    /// answers were such, the pace drops as after a 429 (with no pause), and the window
    /// starts afresh; returns the new interval then. Only while the pace is the configured
    /// one: a server that fails a share of any requests fails them at every pace, and
    /// the measure of what it accepted (its successes) would lower the pace again at each
    /// window, down to one request a minute. The pace recovers after the quiet period as
    /// after 429s, and the next storm lowers it again.
    pub(crate) fn on_server_error(&mut self, now: Instant) -> Option<Duration> {
        self.remember(true);
        let errors = self.answers.iter().filter(|e| **e).count();
        if errors < ERROR_COUNT {
            return None;
        }
        self.answers.clear();
        if self.slowed.is_some() {
            return None;
        }
        self.on_rate_limited(now, Duration::ZERO)
    }

    /// The interval in force after 429s, if any.
    #[cfg(test)]
    pub(crate) fn slowed_interval(&self) -> Option<Duration> {
        self.slowed
    }

    /// How many times a 429 storm lowered the pace.
    pub(crate) fn reductions(&self) -> u64 {
        self.reductions
    }

    /// Reserves the next send slot: the returned instant is when the request may go.
    pub(crate) fn reserve(&mut self, now: Instant) -> Instant {
        self.recover(now);
        let slot = match self.slowed {
            None => now,
            Some(interval) => {
                let slot = self.next_slot.map_or(now, |next| next.max(now));
                self.next_slot = Some(slot + interval);
                slot
            }
        };
        if let Some(previous) = self.last_send {
            let gap = slot.saturating_duration_since(previous);
            self.average_gap = Some(match self.average_gap {
                None => gap,
                Some(average) => average.mul_f64(0.8) + gap.mul_f64(0.2),
            });
        }
        self.last_send = Some(slot.max(self.last_send.unwrap_or(slot)));
        slot
    }

    /// Records a successful answer.
    pub(crate) fn on_success(&mut self, now: Instant) {
        self.remember(false);
        self.successes.push_back(now);
        while self
            .successes
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) > MEASURE_WINDOW)
        {
            self.successes.pop_front();
        }
    }

    /// 90% of the rate the server accepted since `since` (at most the window), as an
    /// interval, leaving time spent paused out.
    fn measured_interval(&self, now: Instant, since: Instant) -> Option<Duration> {
        let start = since.max(now.checked_sub(MEASURE_WINDOW).unwrap_or(since));
        let accepted = self.successes.iter().filter(|at| **at >= start).count();
        if accepted < MEASURE_MIN_SUCCESSES {
            return None;
        }
        let paused: Duration = self
            .pauses
            .iter()
            .map(|(from, to)| (*to).min(now).saturating_duration_since((*from).max(start)))
            .sum();
        let active = now.saturating_duration_since(start).saturating_sub(paused);
        if active < Duration::from_millis(500) {
            return None;
        }
        let per_second = accepted as f64 / active.as_secs_f64() * MEASURE_SHARE;
        Some(Duration::from_secs_f64(1.0 / per_second))
    }

    /// Records a 429 and the pause every worker now takes. Returns the new, slower
    /// interval when this 429 starts a storm.
    pub(crate) fn on_rate_limited(&mut self, now: Instant, pause: Duration) -> Option<Duration> {
        self.last_429 = Some(now);
        // Several workers see the same storm: keep the union of the pauses, as the gate
        // does, so that overlapping ones are not counted twice.
        let end = now + pause;
        match self.pauses.back_mut() {
            Some((_, last_end)) if now <= *last_end => *last_end = (*last_end).max(end),
            _ => self.pauses.push_back((now, end)),
        }
        while self
            .pauses
            .front()
            .is_some_and(|(_, end)| now.saturating_duration_since(*end) > MEASURE_WINDOW)
        {
            self.pauses.pop_front();
        }
        if self.storm_until.is_some_and(|until| now < until) {
            return None;
        }
        let pace = self.slowed.unwrap_or_else(|| {
            self.configured
                .max(self.average_gap.unwrap_or(Duration::ZERO))
                .max(Duration::from_millis(1))
        });
        let measured = self
            .previous_storm
            .and_then(|since| self.measured_interval(now, since));
        let slower = match measured {
            Some(measured) if measured > pace => measured,
            Some(_) => pace.mul_f64(BURST_SLOWDOWN),
            None => pace * 2,
        }
        .min(MAX_INTERVAL);
        self.slowed = Some(slower);
        self.last_change = Some(now);
        self.previous_storm = Some(now);
        self.storm_until = Some(now + pause + STORM_WINDOW);
        self.reductions += 1;
        Some(slower)
    }

    fn recover(&mut self, now: Instant) {
        let Some(interval) = self.slowed else { return };
        let quiet = self
            .last_429
            .is_none_or(|at| now.saturating_duration_since(at) >= QUIET_PERIOD);
        let stepped = self
            .last_change
            .is_none_or(|at| now.saturating_duration_since(at) >= RECOVERY_STEP);
        if quiet && stepped {
            let faster = interval.mul_f64(RECOVERY_FACTOR);
            self.slowed =
                (faster > self.configured && faster >= Duration::from_millis(1)).then_some(faster);
            self.last_change = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn a_share_of_server_errors_lowers_the_rate_as_429s_do() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        // Three 5xx among 20 answers: an odd failure, the pace holds.
        for n in 0..20u64 {
            let now = start + MS(100 * n);
            if n % 7 == 3 {
                assert_eq!(rate.on_server_error(now), None, "answer {n}");
            } else {
                rate.on_success(now);
            }
        }
        assert_eq!(rate.slowed_interval(), None);
        // One more makes four in the last 20: the pace halves.
        let t = start + MS(2_000);
        assert_eq!(rate.on_server_error(t), Some(MS(200)), "the fourth: halved");
        assert_eq!(rate.reductions(), 1);
        // The window started afresh: three more are not yet a storm.
        let later = t + MS(5_000);
        for _ in 0..3 {
            assert_eq!(rate.on_server_error(later), None);
        }
        // With 17 successes the window is full; the next 5xx pushes the oldest out: three.
        for _ in 0..17 {
            rate.on_success(later);
        }
        assert_eq!(rate.on_server_error(later), None, "three of the last 20");
        // Quiet for long enough: the pace recovers as after a 429.
        let quiet = t + QUIET_PERIOD;
        assert_eq!(rate.reserve(quiet), quiet);
        assert_eq!(rate.slowed_interval(), Some(MS(180)));
    }

    #[test]
    fn a_steady_share_of_server_errors_lowers_the_pace_once_not_in_a_spiral() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        // 30% of answers fail, whatever the pace, for a minute: 6 in every 20.
        for n in 0..600u64 {
            let now = start + MS(100 * n);
            if n % 10 < 3 {
                rate.on_server_error(now);
            } else {
                rate.on_success(now);
            }
        }
        assert_eq!(rate.reductions(), 1, "lowered once");
        assert_eq!(rate.slowed_interval(), Some(MS(200)), "half, and no lower");
    }

    #[test]
    fn the_configured_rate_alone_adds_no_wait() {
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        let now = Instant::now();
        assert_eq!(rate.reserve(now), now);
        assert_eq!(rate.reserve(now), now);
        assert_eq!(rate.slowed_interval(), None);
    }

    #[test]
    fn a_first_storm_halves_the_pace_once() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        assert_eq!(rate.on_rate_limited(start, MS(1_000)), Some(MS(200)));
        assert_eq!(
            rate.on_rate_limited(start + MS(1_500), MS(1_000)),
            None,
            "the pause and one second after it are the same storm"
        );
        assert_eq!(rate.reductions(), 1);
        let t = start + MS(2_000);
        assert_eq!(rate.reserve(t), t);
        assert_eq!(
            rate.reserve(t),
            t + MS(200),
            "requests are spaced by the slower interval"
        );
        assert_eq!(rate.reserve(t), t + MS(400));
    }

    #[test]
    fn a_later_storm_settles_under_the_rate_accepted_since_the_first() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(Some(MS(60)));
        assert_eq!(rate.on_rate_limited(start, MS(1_000)), Some(MS(120)));
        // After the 1 s pause the server accepts 8/s for 4 s, then answers 429 again.
        for i in 0..32 {
            rate.on_success(start + MS(1_000 + 125 * i));
        }
        let slower = rate.on_rate_limited(start + MS(5_000), MS(1_000)).unwrap();
        // 32 accepted over 4 s of sending (the pause left out): 8/s, 90% of it is 7.2/s.
        assert!(slower >= MS(136) && slower <= MS(142), "{slower:?}");
        assert_eq!(rate.reductions(), 2, "each storm counts once");
    }

    /// A rate limiter slowed to 200 ms by a storm (pause 0) at `start`.
    fn after_a_storm(start: Instant) -> AdaptiveRate {
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        assert_eq!(rate.on_rate_limited(start, Duration::ZERO), Some(MS(200)));
        rate
    }

    #[test]
    fn a_storm_ends_exactly_one_second_after_its_pause() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        assert_eq!(rate.on_rate_limited(start, MS(1_000)), Some(MS(200)));
        assert_eq!(rate.on_rate_limited(start + MS(1_999), MS(1_000)), None);
        assert_eq!(
            rate.on_rate_limited(start + MS(2_000), MS(1_000)),
            Some(MS(400)),
            "at pause + STORM_WINDOW a 429 is a new storm"
        );
    }

    #[test]
    fn five_successes_are_enough_to_measure_and_four_are_not() {
        let start = Instant::now();
        // Five accepted over 5 s: 1/s, 90% of it is one every 1.11 s.
        let mut rate = after_a_storm(start);
        for i in 1..=5 {
            rate.on_success(start + MS(1_000 * i));
        }
        let slower = rate.on_rate_limited(start + MS(5_000), Duration::ZERO);
        assert!(
            slower.is_some_and(|s| s > MS(1_100) && s < MS(1_120)),
            "{slower:?}"
        );
        // Four are too thin: the pace halves instead.
        let mut rate = after_a_storm(start);
        for i in 1..=4 {
            rate.on_success(start + MS(1_000 * i));
        }
        let slower = rate.on_rate_limited(start + MS(5_000), Duration::ZERO);
        assert_eq!(slower, Some(MS(400)));
    }

    #[test]
    fn half_a_second_of_sending_is_enough_to_measure_and_less_is_not() {
        let start = Instant::now();
        // A storm, and within it a 429 that pauses until 1.5 s; at 1.5 s the next storm.
        // Five accepted over 0.5 s of sending: 10/s, faster than the 200 ms pace, so the
        // storm was a burst and the pace slows by a quarter.
        let mut rate = after_a_storm(start);
        assert_eq!(rate.on_rate_limited(start + MS(500), MS(1_000)), None);
        for i in 1..=5 {
            rate.on_success(start + MS(100 * i));
        }
        let slower = rate.on_rate_limited(start + MS(1_500), Duration::ZERO);
        assert_eq!(slower, Some(MS(250)), "0.5 s of sending measures");
        // The same over 0.2 s of sending measures nothing: the pace halves.
        let mut rate = after_a_storm(start);
        assert_eq!(rate.on_rate_limited(start + MS(200), MS(1_300)), None);
        for i in 1..=5 {
            rate.on_success(start + MS(40 * i));
        }
        let slower = rate.on_rate_limited(start + MS(1_500), Duration::ZERO);
        assert_eq!(slower, Some(MS(400)), "0.2 s of sending is too short");
    }

    #[test]
    fn a_measured_rate_equal_to_the_pace_is_a_burst() {
        let start = Instant::now();
        // Ten accepted over 1.8 s: 90% of it is exactly one every 200 ms, the pace in force.
        let mut rate = after_a_storm(start);
        for i in 1..=10 {
            rate.on_success(start + MS(180 * i));
        }
        assert_eq!(
            rate.on_rate_limited(start + MS(1_800), Duration::ZERO),
            Some(MS(250))
        );
    }

    #[test]
    fn the_measure_keeps_successes_and_pauses_of_the_last_window_only() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        for i in 0..=10 {
            rate.on_success(start + MS(3_000 * i));
        }
        // At 30 s, those at 20 s and later are kept (exactly 10 s old still counts).
        assert_eq!(rate.successes.len(), 4);
        rate.on_success(start + MS(31_000));
        assert_eq!(rate.successes.len(), 5);
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        rate.on_success(start);
        rate.on_success(start + MEASURE_WINDOW);
        assert_eq!(rate.successes.len(), 2, "exactly a window old is kept");

        // Pauses likewise: kept while they ended at most a window ago.
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        for i in 0..=10 {
            rate.on_rate_limited(start + MS(3_000 * i), MS(100));
        }
        assert_eq!(rate.pauses.len(), 4, "{:?}", rate.pauses);
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        rate.on_rate_limited(start, Duration::ZERO);
        rate.on_rate_limited(start + MEASURE_WINDOW, Duration::ZERO);
        assert_eq!(rate.pauses.len(), 2, "exactly a window old is kept");
    }

    #[test]
    fn overlapping_pauses_count_once() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(Some(MS(60)));
        // Four workers in flight see the same storm, each told to wait 1 s.
        for i in 0..4 {
            rate.on_rate_limited(start + MS(5 * i), MS(1_000));
        }
        for i in 0..32 {
            rate.on_success(start + MS(1_015 + 125 * i));
        }
        let slower = rate.on_rate_limited(start + MS(5_000), MS(1_000)).unwrap();
        // 32 accepted over 5 s less one pause of ~1 s: 8/s, so 90% is one every ~139 ms.
        assert!(slower >= MS(134) && slower <= MS(142), "{slower:?}");
    }

    #[test]
    fn a_storm_after_a_burst_slows_by_a_quarter() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        rate.on_rate_limited(start, Duration::ZERO);
        // The server accepted 20/s, faster than the 200 ms pace: the 429 was a burst.
        for i in 0..40 {
            rate.on_success(start + MS(1_100 + 50 * i));
        }
        assert_eq!(
            rate.on_rate_limited(start + MS(3_100), Duration::ZERO),
            Some(MS(250))
        );
    }

    #[test]
    fn an_unlimited_run_slows_from_the_pace_it_had() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(None);
        for i in 0..20 {
            rate.reserve(start + MS(10 * i));
        }
        let slower = rate.on_rate_limited(start + MS(200), MS(1_000)).unwrap();
        assert!(slower >= MS(19) && slower <= MS(21), "{slower:?}");
    }

    #[test]
    fn the_pace_recovers_after_a_quiet_period_back_to_the_configured_rate() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        rate.on_rate_limited(start, Duration::ZERO);
        rate.reserve(start + MS(5_000));
        assert_eq!(
            rate.slowed_interval(),
            Some(MS(200)),
            "not quiet long enough"
        );
        rate.reserve(start + MS(10_000));
        assert_eq!(rate.slowed_interval(), Some(MS(180)));
        rate.reserve(start + MS(11_000));
        assert_eq!(
            rate.slowed_interval(),
            Some(MS(180)),
            "one step per RECOVERY_STEP"
        );
        let mut t = start + MS(12_000);
        for _ in 0..10 {
            rate.reserve(t);
            t += RECOVERY_STEP;
        }
        assert_eq!(rate.slowed_interval(), None, "back to the configured rate");
    }

    #[test]
    fn recovering_to_exactly_the_configured_rate_hands_back_to_it() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(Some(MS(90)));
        rate.on_rate_limited(start, Duration::ZERO);
        // One recovery step from 100 ms is 90 ms, the configured interval itself.
        rate.slowed = Some(MS(100));
        let t = start + QUIET_PERIOD;
        assert_eq!(rate.reserve(t), t);
        assert_eq!(rate.slowed_interval(), None);
        assert_eq!(
            rate.reserve(t),
            t,
            "the limiter alone spaces requests again"
        );
    }

    #[test]
    fn the_pace_never_drops_below_one_request_a_minute() {
        let mut rate = AdaptiveRate::new(Some(MS(40_000)));
        let mut t = Instant::now();
        for _ in 0..5 {
            rate.on_rate_limited(t, Duration::ZERO);
            t += Duration::from_secs(2);
        }
        assert_eq!(rate.slowed_interval(), Some(MAX_INTERVAL));
    }
}
