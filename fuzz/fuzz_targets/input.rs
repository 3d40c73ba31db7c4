//! Fuzzes the input path `apply` takes: both passes of the row reader and validator.
//! Run: cargo install cargo-fuzz && cargo +nightly fuzz run input
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let delimiter = match data.first() {
        Some(b';') => b';',
        Some(b'\t') => b'\t',
        _ => b',',
    };
    // Every record gets exactly one outcome, and both passes agree on the count: the
    // function asserts it.
    let _ = drata_svcacct::fuzz_input(data, delimiter);
});
