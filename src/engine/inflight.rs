//! The in-flight gate: every attempt holds a slot from before it waits for the rate
//! limiter until its answer, and there are as many slots as the controller allows
//! (`concurrency.rs`). Each answer goes back to the controller, and every change of the
//! limit is logged at debug level (`-v`) with its reason.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::concurrency::{Answer, Change, Concurrency, Why};
use crate::model::{ConcurrencyFigures, LatencyFigures, Live};

/// How often an attempt waiting for a slot asks again without being woken: the need
/// grows with the age of the requests out, which no answer announces. A tenth of a
/// second is finer than Drata's pace (one request every 133 ms at the default rate).
const RECHECK: Duration = Duration::from_millis(100);

struct State {
    controller: Concurrency,
    in_use: usize,
}

/// The slots of one run.
pub(crate) struct InFlight {
    state: Mutex<State>,
    freed: Notify,
}

impl InFlight {
    pub(crate) fn new(controller: Concurrency) -> Self {
        Self {
            state: Mutex::new(State {
                controller,
                in_use: 0,
            }),
            freed: Notify::new(),
        }
    }

    /// A panic elsewhere cannot leave the counts unusable: they stay consistent under
    /// every lock.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a free slot.
    pub(crate) async fn acquire(&self) -> Slot<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut state = self.lock();
                let change = state.controller.refresh(Instant::now());
                if change.is_some_and(|c| c.to > c.from) {
                    // More slots: the other waiters need not wait for their next check.
                    self.freed.notify_waiters();
                }
                log_change(change);
                if state.in_use < state.controller.limit() {
                    state.in_use += 1;
                    return Slot {
                        gate: self,
                        sent: None,
                    };
                }
            }
            tokio::select! {
                _ = freed => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// The limit and the recent latencies, for the progress display.
    pub(crate) fn live(&self) -> Live {
        let state = self.lock();
        let (p50, p95) = state.controller.recent_latency();
        Live {
            limit: state.controller.limit(),
            latency: LatencyFigures::of(p50, p95),
            paused: None,
        }
    }

    /// The limit at the end, the highest reached, the backoffs, and the run's latencies.
    pub(crate) fn figures(&self, mode: String) -> (ConcurrencyFigures, LatencyFigures) {
        let state = self.lock();
        let controller = &state.controller;
        let (p50, p95) = controller.run_latency();
        (
            ConcurrencyFigures {
                mode,
                limit: controller.limit(),
                max: controller.max_reached(),
                reductions: controller.reductions(),
            },
            LatencyFigures::of(p50, p95),
        )
    }
}

fn log_change(change: Option<Change>) {
    let Some(Change { from, to, why }) = change else {
        return;
    };
    match why {
        Why::Latency(latency) => tracing::debug!(
            from,
            to,
            latency_p90_ms = latency.as_millis() as u64,
            "in-flight limit changed: rate × latency (Little's law)"
        ),
        Why::Backoff(answer) => tracing::debug!(
            from,
            to,
            "in-flight limit lowered after {answer}: the server may be struggling"
        ),
        Why::Recovery => tracing::debug!(from, to, "in-flight limit growing back"),
        Why::Queueing { recent, fastest } => tracing::debug!(
            from,
            to,
            latency_p10_ms = recent.as_millis() as u64,
            fastest_ms = fastest.as_millis() as u64,
            "in-flight limit lowered: answers slow down as more requests are out (the server queues them)"
        ),
    }
}

/// One attempt's slot; dropping it frees the slot.
pub(crate) struct Slot<'a> {
    gate: &'a InFlight,
    sent: Option<Instant>,
}

impl Slot<'_> {
    /// The request goes out now.
    pub(crate) fn sent(&mut self, at: Instant) {
        self.sent = Some(at);
        self.gate.lock().controller.on_send(at);
    }

    /// The attempt ended at `at`; frees the slot. A listing page's latency is not
    /// measured (see `Concurrency::on_page_answer`).
    pub(crate) fn answered(mut self, at: Instant, answer: Answer, page: bool) {
        let Some(sent) = self.sent.take() else { return };
        let mut gate = self.gate.lock();
        let change = if page {
            gate.controller.on_page_answer(sent, at, answer)
        } else {
            gate.controller.on_answer(sent, at, answer)
        };
        drop(gate);
        if change.is_some_and(|c| c.to > c.from) {
            self.gate.freed.notify_waiters();
        }
        log_change(change);
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        {
            let mut state = self.gate.lock();
            if let Some(sent) = self.sent {
                state.controller.forget(sent);
            }
            state.in_use -= 1;
        }
        self.gate.freed.notify_one();
    }
}
