//! `drata-svcacct`: apply a CSV of service-account decisions to Drata identities.
//!
//! `main.rs` parses the command line into a checked [`config::Command`] and calls
//! [`run`]; everything else lives here so tests can call it in-process.

pub mod api;
pub mod cli;
pub mod config;
pub mod evidence;
pub mod exit;
pub mod input;
pub mod job;
pub mod pool;
pub mod report;
pub mod resume;
pub mod retry;
pub mod secret;
pub mod simulator;
pub mod state;
pub mod summary;
pub mod throttle;

use std::io::IsTerminal;

use clap::CommandFactory;

use crate::config::{Command, InputOptions, LogFormat, OutputOptions, SimulatorConfig};

/// Runs a command to completion and returns its exit code.
pub fn run(command: Command) -> u8 {
    match command {
        Command::Completions(shell) => {
            let mut cli = cli::Cli::command();
            clap_complete::generate(shell, &mut cli, "drata-svcacct", &mut std::io::stdout());
            exit::SUCCESS
        }
        Command::Man => {
            let man = clap_mangen::Man::new(cli::Cli::command());
            match man.render(&mut std::io::stdout()) {
                Ok(()) => exit::SUCCESS,
                Err(e) => {
                    eprintln!("drata-svcacct: error: {e}");
                    exit::USAGE
                }
            }
        }
        Command::Validate { input, output } => {
            init_logging(&output);
            validate(&input)
        }
        Command::Run(config) => {
            init_logging(&config.output);
            match runtime() {
                Ok(rt) => rt.block_on(job::run(*config)),
                Err(code) => code,
            }
        }
        Command::Simulate { config, output } => {
            init_logging(&output);
            match runtime() {
                Ok(rt) => rt.block_on(serve_simulator(config)),
                Err(code) => code,
            }
        }
    }
}

/// One thread runs every task: the work is I/O-bound, and on a small machine cross-thread
/// wake-ups cost more than they give (the 50,000-row engine bench used 40% less CPU).
/// Reading the input stays on a blocking thread of its own.
fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("drata-svcacct: error: cannot start the runtime: {e}");
            exit::USAGE
        })
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

/// `validate`: every problem on standard output, counts on standard error.
pub fn validate(options: &InputOptions) -> u8 {
    let input = match input::InputFile::open(&options.source) {
        Ok(input) => input,
        Err(e) => {
            eprintln!("drata-svcacct: error: {e}");
            return exit::USAGE;
        }
    };
    let scan = match input::scan(&input, options, None) {
        Ok(scan) => scan,
        Err(e) => {
            eprintln!("drata-svcacct: error: {e}");
            return exit::USAGE;
        }
    };
    let mut reader = match input.reader(options, None) {
        Ok(reader) => reader,
        Err(e) => {
            eprintln!("drata-svcacct: error: {e}");
            return exit::USAGE;
        }
    };
    // Every problem, in line order: row problems from a second pass, conflicts from the scan.
    while let Some(Ok(record)) = reader.next_record() {
        match record {
            input::Record::Invalid(bad) => bad.problems.iter().for_each(|p| println!("{p}")),
            input::Record::Valid(row) => {
                if let input::RowStatus::Conflict { lines } = scan.status(&row) {
                    println!(
                        "{}",
                        input::Problem {
                            line: row.line,
                            column: scan.id_column.clone(),
                            message: input::conflict_message(row.id, lines),
                        }
                    );
                }
            }
        }
    }
    let sendable = scan.sendable_ids();
    eprintln!(
        "{}: {} rows, {} valid, {} invalid; {} to send, {} duplicate",
        input.path(),
        scan.rows,
        scan.valid_rows(),
        scan.invalid_rows,
        sendable,
        scan.valid_rows().saturating_sub(sendable),
    );
    exit::for_validation(scan.invalid_rows)
}

/// Installs the Ctrl-C and SIGTERM handlers now; the future resolves on either.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let streams = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        if let (Ok(mut interrupt), Ok(mut terminate)) = streams {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve_simulator(config: SimulatorConfig) -> u8 {
    // Before the banner: whoever reads it may send SIGTERM at once.
    let stopped = stop_signal();
    if !config.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %config.listen,
            "THE SIMULATOR IS LISTENING BEYOND LOOPBACK: anyone who can reach this address can use it"
        );
    }
    let running = match simulator::start(config.clone()).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!(
                "drata-svcacct: error: cannot listen on {}: {e}",
                config.listen
            );
            return exit::USAGE;
        }
    };
    eprintln!(
        "simulator listening on {} with {} identities (token {:?}); Ctrl-C stops it",
        running.base_url(),
        config.identities,
        config.token
    );
    stopped.await;
    exit::SUCCESS
}
