//! The request engine: the shared rate limiter, retries, the adaptive pace after 429s,
//! the in-flight limit, the run's stop switch, the worker pool, and the defensive
//! listing reader.

mod budget;
mod concurrency;
mod control;
mod inflight;
mod listing;
mod pool;
mod requests;
mod retry;
mod throttle;

pub(crate) use concurrency::ConcurrencyMode;
pub(crate) use control::{watch_signals, RunControl, Signals};
pub(crate) use listing::{fetch, fetch_unless_refused, fetch_users, Directory, Listing};
pub(crate) use pool::{spawn_workers, Job};
pub(crate) use requests::{Ended, Engine, Request};
pub(crate) use retry::{classify, may_have_applied, RetryPolicy};
