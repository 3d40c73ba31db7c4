//! The commands: each turns a checked configuration into work, and returns the exit
//! code of a command that ran or the error that stopped it before it could.

mod docs;
mod export;
mod run;
mod session;
#[cfg(feature = "simulator")]
mod simulate;
mod validate;

use std::io::IsTerminal;

use crate::config::{Command, LogFormat, OutputOptions};
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
            validate::run(&input)
        }
        Command::Run(config) => {
            init_logging(&config.output);
            runtime()?.block_on(run::run(*config))
        }
        Command::Export(config) => {
            init_logging(&config.log);
            runtime()?.block_on(export::run(*config))
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

/// Logs go to standard error: text (colored only on a terminal without NO_COLOR) or JSON.
fn init_logging(output: &OutputOptions) {
    let level = match (output.quiet, output.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // Our crate at the chosen level; dependencies stay at warn unless -vv.
    let filter = if output.verbose >= 2 {
        level.to_owned()
    } else {
        format!("warn,drata_svcacct={level}")
    };
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match output.log_format {
        LogFormat::Text => builder.with_ansi(color).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
