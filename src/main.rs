use std::process::ExitCode;

use drata_svcacct::Cli;

fn main() -> ExitCode {
    let cli = match Cli::parse_args() {
        Ok(cli) => cli,
        Err(refused) => {
            Cli::refusal_console().usage(&refused);
            return ExitCode::from(Cli::refusal_exit_code(&refused));
        }
    };
    let console = cli.console();
    match drata_svcacct::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            console.error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
