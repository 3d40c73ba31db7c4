use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let cli = drata_svcacct::cli::Cli::parse();
    match cli.into_command(argv) {
        Ok(command) => ExitCode::from(drata_svcacct::run(command)),
        Err(e) => {
            eprintln!("drata-svcacct: error: {e}");
            ExitCode::from(drata_svcacct::exit::USAGE)
        }
    }
}
