//! End-to-end tests: the real binary over loopback HTTP (and HTTPS, in `tls`), against the
//! project's simulator or a scripted server bound to port 0. One test binary, one module per
//! topic; the helpers they share live in `tests/support/`.

// A test may unwrap: a panic is a failed test. The test binary is its own crate, so `pub`
// in `tests/support` means "for the tests" and cannot be narrower.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[path = "../support/mod.rs"]
mod support;

mod access;
mod answers;
mod cells;
mod clock_bound;
mod concurrency;
mod docs;
mod evidence;
mod export;
mod faults;
mod hostile;
mod input;
mod journal;
mod layers;
mod liars;
mod links;
mod network;
mod operator;
mod outputs;
mod plan;
mod platforms;
mod print;
mod readme;
mod reconcile;
mod report;
mod resume;
mod review;
mod rules;
mod security;
mod spreadsheets;
mod tls;
mod undo;
// The systemd units run the binary as another user (setpriv, chown): Linux only.
#[cfg(unix)]
mod units;
