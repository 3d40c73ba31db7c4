//! Fuzzes the input path `apply` takes: both passes of the row reader and validator.
//! Run: cargo install cargo-fuzz && cargo +nightly fuzz run input
#![no_main]

use drata_svcacct::config::{InputOptions, InputSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let delimiter = match data.first() {
        Some(b';') => b';',
        Some(b'\t') => b'\t',
        _ => b',',
    };
    let options = InputOptions::new(InputSource::Stdin, delimiter);
    if let Ok((scan, outcomes)) = drata_svcacct::input::check_bytes(data, &options) {
        // Every record gets exactly one outcome, and both passes agree on the count.
        assert_eq!(scan.rows, outcomes.len() as u64);
        assert!(scan.invalid_rows <= scan.rows);
    }
});
