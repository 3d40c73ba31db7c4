use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = drata_svcacct::Cli::parse_args();
    let json = cli.json_logs();
    match drata_svcacct::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.is_closed_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", e.to_line(json));
            ExitCode::from(e.exit_code())
        }
    }
}
