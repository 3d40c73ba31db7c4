//! `drata-svcacct`: apply a CSV of service-account decisions to Drata identities.
//!
//! The modules are layers, each importing only those below it; `docs/architecture.md`
//! lists them in their order, and `tests/cli/layers.rs` checks the code against that list.

mod cli;
mod commands;
mod config;
mod drata;
mod engine;
mod error;
mod exit;
mod field;
mod input;
mod model;
mod output;
mod secret;
#[cfg(feature = "simulator")]
pub mod simulator;
mod suggest;
mod text;

pub use cli::Cli;
pub use error::Error;
pub use model::{IdentityKind, Rate};
pub use output::Console;

/// Runs a parsed command line to completion: the exit code of a command that ran, or
/// the error that stopped it before it could.
pub fn run(cli: Cli) -> Result<u8, Error> {
    let program = std::env::args_os().next().map_or_else(
        || "drata-svcacct".to_owned(),
        |p| p.to_string_lossy().into_owned(),
    );
    let command = cli.into_command(program)?;
    commands::run(command)
}

/// The scan of the input and the read after it over raw bytes, for the fuzz target: the number of rows, and
/// how many of them would be sent. `None` when the bytes are not CSV with a header.
#[doc(hidden)]
pub fn fuzz_input(data: &[u8], delimiter: u8) -> Option<(u64, u64)> {
    let options = input::InputOptions::new(input::InputSource::Stdin, delimiter);
    let (scan, outcomes) = input::check_bytes(data, &options).ok()?;
    assert_eq!(
        scan.rows,
        outcomes.len() as u64,
        "every record has one outcome"
    );
    assert!(scan.invalid_rows <= scan.rows);
    Some((
        scan.rows,
        outcomes.iter().filter(|(_, send)| *send).count() as u64,
    ))
}
