//! End-to-end tests: the real binary over loopback HTTP, against the project's simulator or
//! a scripted server bound to port 0. One test binary, one module per topic; the helpers
//! they share live in `tests/support/`.

#[path = "../support/mod.rs"]
mod support;

mod concurrency;
mod faults;
mod input;
mod network;
mod operator;
mod reconcile;
mod report;
mod resume;
mod security;
