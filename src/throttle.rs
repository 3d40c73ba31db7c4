//! Adaptive slowdown after 429s. The configured `--rate` is a ceiling; when the server
//! still answers 429, the pace drops (once per storm) to at most half of what it was and
//! at most 90% of the rate the server actually accepted lately, and after a quiet period
//! it recovers step by step. So a run asked to go faster than the server allows settles
//! under the server's limit instead of retrying in a storm. Pure logic: time is passed in.

use std::time::Duration;

use tokio::time::Instant;

/// 429s closer together than this belong to one storm and halve the pace once.
const STORM_WINDOW: Duration = Duration::from_secs(1);
/// No 429 for this long before the pace starts to recover.
const QUIET_PERIOD: Duration = Duration::from_secs(10);
/// Time between two recovery steps.
const RECOVERY_STEP: Duration = Duration::from_secs(2);
/// Each recovery step shortens the interval by this factor (+25% rate).
const RECOVERY_FACTOR: f64 = 0.8;
/// The slowest pace it ever settles at.
const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// Successes over this window measure the rate the server accepts.
const MEASURE_WINDOW: Duration = Duration::from_secs(5);
/// Below this many successes in the window, the measure is too thin to use.
const MEASURE_MIN_SUCCESSES: usize = 5;
/// Share of the measured accepted rate to settle at.
const MEASURE_SHARE: f64 = 0.9;

#[derive(Debug, Clone)]
pub struct AdaptiveRate {
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
    reductions: u64,
    /// Recent successful answers, to measure what the server accepts.
    successes: std::collections::VecDeque<Instant>,
    first_success: Option<Instant>,
}

impl AdaptiveRate {
    pub fn new(configured: Option<Duration>) -> Self {
        Self {
            configured: configured.unwrap_or(Duration::ZERO),
            slowed: None,
            next_slot: None,
            last_send: None,
            average_gap: None,
            last_429: None,
            last_change: None,
            reductions: 0,
            successes: std::collections::VecDeque::new(),
            first_success: None,
        }
    }

    /// The interval in force after 429s, if any.
    pub fn slowed_interval(&self) -> Option<Duration> {
        self.slowed
    }

    /// How many times a 429 storm halved the pace.
    pub fn reductions(&self) -> u64 {
        self.reductions
    }

    /// Reserves the next send slot: the returned instant is when the request may go.
    pub fn reserve(&mut self, now: Instant) -> Instant {
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
    pub fn on_success(&mut self, now: Instant) {
        self.first_success.get_or_insert(now);
        self.successes.push_back(now);
        while self
            .successes
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) > MEASURE_WINDOW)
        {
            self.successes.pop_front();
        }
    }

    /// The interval matching 90% of the rate the server accepted over the last window.
    fn measured_interval(&self, now: Instant) -> Option<Duration> {
        let recent = self
            .successes
            .iter()
            .filter(|at| now.saturating_duration_since(**at) <= MEASURE_WINDOW)
            .count();
        if recent < MEASURE_MIN_SUCCESSES {
            return None;
        }
        let window = self
            .first_success
            .map_or(MEASURE_WINDOW, |first| now.saturating_duration_since(first))
            .clamp(Duration::from_secs(1), MEASURE_WINDOW);
        let accepted_per_second = recent as f64 / window.as_secs_f64();
        Some(Duration::from_secs_f64(
            1.0 / (accepted_per_second * MEASURE_SHARE),
        ))
    }

    /// Records a 429. Returns the new, slower interval when this 429 starts a storm.
    pub fn on_rate_limited(&mut self, now: Instant) -> Option<Duration> {
        self.last_429 = Some(now);
        if self
            .last_change
            .is_some_and(|changed| now.saturating_duration_since(changed) < STORM_WINDOW)
        {
            return None;
        }
        let pace = self.slowed.unwrap_or_else(|| {
            self.configured
                .max(self.average_gap.unwrap_or(Duration::ZERO))
                .max(Duration::from_millis(1))
        });
        let halved = pace * 2;
        let slower = self
            .measured_interval(now)
            .map_or(halved, |measured| measured.max(halved))
            .min(MAX_INTERVAL);
        self.slowed = Some(slower);
        self.last_change = Some(now);
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
    fn the_configured_rate_alone_adds_no_wait() {
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        let now = Instant::now();
        assert_eq!(rate.reserve(now), now);
        assert_eq!(rate.reserve(now), now);
        assert_eq!(rate.slowed_interval(), None);
    }

    #[test]
    fn a_429_halves_the_pace_once_per_storm() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        assert_eq!(rate.on_rate_limited(start), Some(MS(200)));
        assert_eq!(rate.on_rate_limited(start + MS(300)), None, "same storm");
        assert_eq!(rate.on_rate_limited(start + MS(1500)), Some(MS(400)));
        assert_eq!(rate.reductions(), 2);
        let t = start + MS(1500);
        assert_eq!(rate.reserve(t), t);
        assert_eq!(
            rate.reserve(t),
            t + MS(400),
            "requests are spaced by the slower interval"
        );
        assert_eq!(rate.reserve(t), t + MS(800));
    }

    #[test]
    fn an_unlimited_run_slows_from_the_pace_it_had() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(None);
        for i in 0..20 {
            rate.reserve(start + MS(10 * i));
        }
        let slower = rate.on_rate_limited(start + MS(200)).unwrap();
        assert!(slower >= MS(19) && slower <= MS(21), "{slower:?}");
    }

    #[test]
    fn the_pace_recovers_after_a_quiet_period_back_to_the_configured_rate() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(Some(MS(100)));
        rate.on_rate_limited(start);
        rate.reserve(start + MS(5_000));
        assert_eq!(
            rate.slowed_interval(),
            Some(MS(200)),
            "not quiet long enough"
        );
        rate.reserve(start + MS(10_000));
        assert_eq!(rate.slowed_interval(), Some(MS(160)));
        rate.reserve(start + MS(11_000));
        assert_eq!(
            rate.slowed_interval(),
            Some(MS(160)),
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
    fn a_storm_settles_under_the_rate_the_server_accepted() {
        let start = Instant::now();
        let mut rate = AdaptiveRate::new(None);
        // Requests every 10 ms, but the server accepted only 20 in the last 2 s (10/s).
        for i in 0..200 {
            rate.reserve(start + MS(10 * i));
        }
        for i in 0..20 {
            rate.on_success(start + MS(100 * i));
        }
        let slower = rate.on_rate_limited(start + MS(2_000)).unwrap();
        // 90% of 20 successes over 1.9 s: about 9.5/s, one every ~105 ms.
        assert!(slower >= MS(100) && slower <= MS(112), "{slower:?}");
    }

    #[test]
    fn the_pace_never_drops_below_one_request_a_minute() {
        let mut rate = AdaptiveRate::new(Some(MS(40_000)));
        let mut t = Instant::now();
        for _ in 0..5 {
            rate.on_rate_limited(t);
            t += Duration::from_secs(2);
        }
        assert_eq!(rate.slowed_interval(), Some(MAX_INTERVAL));
    }
}
