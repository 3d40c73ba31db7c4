//! The commands: each turns a checked configuration into work, and returns the exit
//! code of a command that ran or the error that stopped it before it could.

mod blocking;
mod docs;
mod export;
mod run;
mod session;
#[cfg(feature = "simulator")]
mod simulate;
mod upload;
mod validate;

/// The UTC date of a moment, `YYYY-MM-DD`: a rule's `{date}`.
pub(crate) fn utc_date(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()[..10].to_owned()
}

use crate::config::{Command, OutputOptions};
use crate::error::Error;

pub(crate) fn run(command: Command) -> Result<u8, Error> {
    match command {
        Command::Completions { shell, definition } => docs::completions(shell, *definition),
        Command::Man {
            definition,
            page,
            out,
        } => docs::man(*definition, page.as_deref(), out.as_deref()),
        Command::Validate { input, output } => {
            init_logging(&output);
            validate::run(&input, &output.console())
        }
        Command::Run(config) => {
            init_logging(&config.output);
            runtime()?.block_on(run::run(*config))
        }
        Command::Export(config) => {
            init_logging(&config.log);
            runtime()?.block_on(export::run(*config))
        }
        Command::UploadEvidence(config) => {
            init_logging(&config.log);
            runtime()?.block_on(upload::run(*config))
        }
        #[cfg(feature = "simulator")]
        Command::Simulate { config, output } => {
            init_logging(&output);
            runtime()?.block_on(simulate::run(config))
        }
    }
}

/// One thread runs every task: the work is I/O-bound, and on a small machine cross-thread
/// wake-ups cost more than they give (the 50,000-row engine bench used 40% less CPU).
/// Reading the input stays on a blocking thread of its own.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// Logs go to standard error, as the console writes them.
fn init_logging(output: &OutputOptions) {
    output.console().init_logging(output.verbose);
}
