//! The command line: clap parses typed values, then [`Cli::into_command`] checks what
//! clap cannot and builds the [`Command`] before any I/O.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[cfg(feature = "simulator")]
use crate::config::parse_share;
use crate::config::{
    parse_base_url, parse_concurrency, parse_delimiter, parse_interval, parse_timeout, Command,
    ConfigError, ExportConfig, ExportFilter, ExportFormat, KeySource, LogFormat, MaxFailures, Mode,
    Only, OutputOptions, PlanOptions, Region, RunConfig, Target, DEFAULT_CONCURRENCY,
    DEFAULT_MAX_FAILURES, DEFAULT_PROGRESS_INTERVAL, DEFAULT_RATE, DEFAULT_TIMEOUT,
};
use crate::engine::{ConcurrencyMode, RetryPolicy};
use crate::input::{Encoding, InputOptions, InputSource, DEFAULT_MAX_COPY_MIB};
use crate::model::{IdentityKind, Rate};
use crate::secret::{ApiKey, KeyError};
#[cfg(feature = "simulator")]
use crate::simulator::{SimulatorConfig, MAX_IDENTITIES};

const EXAMPLES: &str = "\
Examples:
  Quarterly access review: start from Drata, edit, see what would change, apply it
    DRATA_API_KEY=... drata-svcacct export -o q4-review.csv
    DRATA_API_KEY=... drata-svcacct plan q4-review.csv
    DRATA_API_KEY=... drata-svcacct apply q4-review.csv --evidence q4-evidence.md

  A list decided elsewhere: check it, see what would change, apply it
    drata-svcacct validate q3-review.csv
    DRATA_API_KEY=... drata-svcacct plan q3-review.csv
    DRATA_API_KEY=... drata-svcacct apply q3-review.csv --evidence q3-evidence.md

  One-off migration, reversible, with a blast-radius guard
    drata-svcacct apply migration.csv --token-file ~/.drata-key \\
        --max-changes 500 --undo migration-undo.csv

  Nightly cron job, quiet unless something fails
    drata-svcacct apply /srv/svcacct/desired.csv --token-file /etc/drata/key --quiet \\
        --report /var/log/svcacct/$(date -u +%FT%H%M%SZ).csv --log-format json

  Try it without a Drata account
    drata-svcacct apply samples/quarterly-review.csv --simulate";

#[derive(Debug, Parser)]
#[command(
    name = "drata-svcacct",
    version,
    about = "Apply a CSV of service-account decisions to Drata identities, safely and fast",
    after_help = EXAMPLES,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Commands,

    /// Print only errors (and the summary when the run did not fully succeed)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    /// More detail: -v for every row and retry, -vv for HTTP internals
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Log format on standard error
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Seconds between progress lines when standard error is not a terminal
    #[arg(long, global = true, value_parser = parse_interval,
          default_value = DEFAULT_PROGRESS_INTERVAL,
          hide = true)]
    progress_interval: Duration,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Check the input offline: no network, no token
    Validate(InputArgs),
    /// Read-only: fetch the current state and report what would change
    #[command(after_help = EXAMPLES)]
    Plan(PlanArgs),
    /// Apply the input through the Drata API
    #[command(after_help = EXAMPLES)]
    Apply(ApplyArgs),
    /// Write the current identities as an input file, to start a review from Drata
    #[command(after_help = EXAMPLES)]
    Export(ExportArgs),
    /// Serve a local stand-in of the Drata API
    #[cfg(feature = "simulator")]
    Simulate(SimulateArgs),
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    Man,
}

#[derive(Debug, Args)]
struct InputArgs {
    /// The CSV to read, or - for standard input
    #[arg(value_name = "INPUT")]
    input: PathBuf,

    /// Header of the id column [default: id]
    #[arg(long, value_name = "NAME")]
    id_column: Option<String>,

    /// Header of the flag column [default: serviceAccount or flag]
    #[arg(long, value_name = "NAME")]
    flag_column: Option<String>,

    /// Header of the reason column [default: serviceAccountReason or reason]
    #[arg(long, value_name = "NAME")]
    reason_column: Option<String>,

    /// Field delimiter (one character; \t for tab) [default: read from the header among
    /// , ; tab |]
    #[arg(long, value_name = "C", value_parser = parse_delimiter)]
    delimiter: Option<u8>,

    /// Reason used where the reason cell is blank or the column is absent
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,

    /// Reason for blank cells of rows marked as service accounts (before --reason)
    #[arg(long, value_name = "TEXT")]
    reason_if_true: Option<String>,

    /// Reason for blank cells of rows marked as not service accounts (before --reason)
    #[arg(long, value_name = "TEXT")]
    reason_if_false: Option<String>,

    /// The sheet of a spreadsheet input (.xlsx, .xlsm, .xls, .ods) [default: the first]
    #[arg(long, value_name = "NAME")]
    sheet: Option<String>,

    /// Text encoding of the input [default: UTF-8, or UTF-16 by its byte-order mark]
    #[arg(long, value_enum, value_name = "NAME")]
    encoding: Option<Encoding>,

    /// The largest input copied (standard input, or a file for plan and apply), in MiB
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_COPY_MIB, hide = true)]
    max_input_mib: u64,
}

/// What only `plan` does.
#[derive(Debug, Args)]
struct PlanArgs {
    #[command(flatten)]
    run: RunArgs,

    /// Print the plan as one JSON document on standard output (every change, with the
    /// state before and after), instead of the text diff
    #[arg(long)]
    json: bool,

    /// Exit 4 when rows would change (0 only when there is nothing to do), for scripts
    #[arg(long)]
    detailed_exitcode: bool,
}

/// What only `apply` does, and the options people try by habit.
#[derive(Debug, Args)]
struct ApplyArgs {
    #[command(flatten)]
    run: RunArgs,

    /// Accepted for older scripts; changes nothing: apply always reads the current state
    /// first and sends only what differs, as plan shows
    #[arg(long)]
    reconcile: bool,

    /// Send every valid row, even those Drata already holds in the desired state
    #[arg(long)]
    resend: bool,

    /// Skip reading the state again after the run to check every row sent
    #[arg(long)]
    no_verify: bool,

    /// Write a CSV in the input format that restores the previous state
    #[arg(long, value_name = "PATH")]
    undo: Option<PathBuf>,

    /// A report of an earlier run of this input: rows it shows as done are skipped
    #[arg(long, value_name = "PATH")]
    resume_from: Option<PathBuf>,

    /// Not an option of apply: `drata-svcacct plan` shows what would change
    #[arg(long, hide = true)]
    dry_run: bool,

    /// Not an option of apply: the report goes to --report PATH
    #[arg(short = 'o', long, value_name = "PATH", hide = true)]
    output: Option<PathBuf>,
}

/// How to reach Drata and at what pace: shared by `plan`, `apply` and `export`.
#[derive(Debug, Args)]
struct ConnectArgs {
    /// Drata region, which picks the base URL
    #[arg(long, value_enum, default_value_t = Region::Us)]
    region: Region,

    /// Override the region's base URL (https://, or http:// to loopback only)
    #[arg(
        long,
        value_name = "URL",
        env = "DRATA_BASE_URL",
        hide_env_values = true
    )]
    base_url: Option<String>,

    /// Read the API key from the first line of this file [default: env DRATA_API_KEY]
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,

    /// Request rate: N/s, N/min, N/h or unlimited
    #[arg(long, value_name = "R", default_value = DEFAULT_RATE)]
    rate: Rate,

    /// Token-bucket burst of the rate limiter
    #[arg(long, value_name = "N", default_value = "1")]
    burst: NonZeroU32,

    /// Attempts per request, the first included
    #[arg(long, value_name = "N", default_value_t = NonZeroU32::new(RetryPolicy::default().max_attempts).unwrap_or(NonZeroU32::MIN))]
    max_attempts: NonZeroU32,

    /// Per-request timeout in seconds, from 0.1 to 3600
    #[arg(long, value_name = "SECS", value_parser = parse_timeout,
          default_value = DEFAULT_TIMEOUT)]
    timeout: Duration,

    /// Also trust the CA certificates in this PEM file (a TLS-inspecting proxy's CA), besides
    /// the system store (or SSL_CERT_FILE / SSL_CERT_DIR)
    #[arg(long, value_name = "PATH")]
    ca_cert: Option<PathBuf>,

    /// Which identities: infrastructure or version-control
    #[arg(long, value_enum, default_value_t = IdentityKind::Infrastructure)]
    kind: IdentityKind,

    /// Run against an in-process simulator on loopback; no token needed
    // Not in conflict with --base-url: DRATA_BASE_URL may be exported, and is ignored here.
    #[cfg(feature = "simulator")]
    #[arg(long, conflicts_with = "token_file")]
    simulate: bool,

    /// First backoff ceiling in milliseconds (doubles per attempt, capped at 30 s)
    #[arg(long, value_name = "MS", default_value_t = RetryPolicy::default().base.as_millis() as u64, hide = true)]
    retry_base_ms: u64,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    input: InputArgs,

    #[command(flatten)]
    connect: ConnectArgs,

    /// Where the per-row report goes [default: <input stem>.report.<UTC timestamp>.csv]
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,

    /// Allow replacing existing report, summary, undo and evidence files
    #[arg(long)]
    force: bool,

    /// Requests in flight at most: a number from 1 to 1024, or auto (enough for --rate at
    /// the measured latency, 4 to 64, lowered on timeouts, 5xx and 429s)
    #[arg(long, short = 'j', visible_aliases = ["jobs", "parallel"], value_name = "N|auto",
          default_value = DEFAULT_CONCURRENCY, value_parser = parse_concurrency)]
    concurrency: ConcurrencyMode,

    /// Abort past this many failed rows: N, P% (applies once 20 rows finished) or none
    #[arg(long, value_name = "N|P%", default_value = DEFAULT_MAX_FAILURES)]
    max_failures: MaxFailures,

    /// Send the valid rows even if some rows are invalid
    #[arg(long)]
    skip_invalid: bool,

    /// Send edited rows even where Drata changed since the export (conflicts)
    #[arg(long)]
    overwrite_drift: bool,

    /// Refuse (exit 3, nothing sent) when more than N rows would be updated
    #[arg(long, value_name = "N")]
    max_changes: Option<u64>,

    /// Write a machine-readable summary of the run (JSON)
    #[arg(long, value_name = "PATH")]
    summary_json: Option<PathBuf>,

    /// Write a Markdown record of the run for auditors
    #[arg(long, value_name = "PATH")]
    evidence: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ExportArgs {
    #[command(flatten)]
    connect: ConnectArgs,

    /// Where to write, created readable by you only [default: standard output]
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    output: Option<PathBuf>,

    /// Allow replacing an existing output file
    #[arg(long)]
    force: bool,

    /// File format [default: xlsx when the output ends in .xlsx, otherwise csv]
    #[arg(long, value_enum)]
    format: Option<ExportFormat>,

    /// CSV for Excel: UTF-8 with a byte-order mark, CRLF line ends
    #[arg(long)]
    excel: bool,

    /// Only identities of this client type (AWS, GCP, GITHUB, ...; any case)
    #[arg(long, value_name = "TYPE")]
    client_type: Option<String>,

    /// Only identities of this connection: its alias or its id (any case)
    #[arg(long, value_name = "ALIAS|ID")]
    connection: Option<String>,

    /// Only identities not marked as service accounts, or only marked ones
    #[arg(long, value_enum)]
    only: Option<Only>,
}

#[cfg(feature = "simulator")]
#[derive(Debug, Args)]
struct SimulateArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value_t = SimulatorConfig::default().listen)]
    listen: std::net::SocketAddr,

    /// Seeded identities (ids 1..N; every 7th is already a service account)
    #[arg(long, value_name = "N", default_value_t = SimulatorConfig::default().identities)]
    identities: u64,

    /// Bearer token the simulator requires
    #[arg(long, value_name = "TOKEN", default_value_t = SimulatorConfig::default().token)]
    token: String,

    /// Leaky-bucket rate limit: N/s, N/min, N/h or unlimited
    #[arg(long, value_name = "R", default_value_t = SimulatorConfig::default().rate_limit)]
    rate_limit: Rate,

    /// Requests the leaky bucket holds before it answers 429
    #[arg(long, value_name = "N", default_value_t = NonZeroU32::new(SimulatorConfig::default().bucket_capacity).unwrap_or(NonZeroU32::MIN))]
    bucket_capacity: NonZeroU32,

    /// Share of PUTs answered 500, from 0 to 1
    #[arg(long, value_name = "P", default_value = "0", value_parser = parse_share)]
    error_rate: f64,

    /// Added latency per request, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency: u64,

    /// Share of requests whose connection is closed without an answer, from 0 to 1
    #[arg(long, value_name = "P", default_value = "0", value_parser = parse_share)]
    drop_rate: f64,

    /// Share of requests answered only after --slow-ms, from 0 to 1
    #[arg(long, value_name = "P", default_value = "0", value_parser = parse_share)]
    slow_rate: f64,

    /// Delay of the slow answers, in milliseconds (default: beyond the client's 30 s timeout)
    #[arg(long, value_name = "MS", default_value_t = SimulatorConfig::default().slow_delay.as_millis() as u64)]
    slow_ms: u64,

    /// Seed of the fault injection, for repeatable runs
    #[arg(long, value_name = "N", default_value_t = SimulatorConfig::default().seed)]
    seed: u64,
}

impl InputArgs {
    fn into_options(self) -> InputOptions {
        InputOptions {
            source: InputSource::from_arg(self.input),
            delimiter: self.delimiter,
            id_column: self.id_column,
            flag_column: self.flag_column,
            reason_column: self.reason_column,
            default_reason: self.reason.filter(|r| !r.trim().is_empty()),
            reason_if_true: self.reason_if_true.filter(|r| !r.trim().is_empty()),
            reason_if_false: self.reason_if_false.filter(|r| !r.trim().is_empty()),
            blank_false_reasons: false,
            max_copy_mib: self.max_input_mib,
            encoding: self.encoding,
            sheet: self.sheet,
        }
    }
}

/// True when the raw arguments ask for JSON logs (`--log-format json` or `=json`).
fn asks_for_json(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let args: Vec<std::ffi::OsString> = args.collect();
    args.iter().enumerate().any(|(i, arg)| {
        arg == "--log-format=json"
            || (arg == "--log-format" && args.get(i + 1).is_some_and(|a| a == "json"))
    })
}

/// `DRATA_API_KEY`, read here and never through clap: clap would print it in `--help`.
fn key_from_env() -> Result<ApiKey, KeyError> {
    match std::env::var("DRATA_API_KEY") {
        Ok(raw) if raw.trim().is_empty() => {
            Err(KeyError::InEnvironment(Box::new(KeyError::SetButEmpty)))
        }
        Ok(raw) => ApiKey::new(&raw).map_err(|e| KeyError::InEnvironment(Box::new(e))),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(KeyError::InEnvironment(Box::new(KeyError::NotAHeaderValue)))
        }
        Err(std::env::VarError::NotPresent) => Err(KeyError::Missing),
    }
}

impl ConnectArgs {
    fn target(&self) -> Result<Target, ConfigError> {
        #[cfg(feature = "simulator")]
        if self.simulate {
            return Ok(Target::Simulated);
        }
        let base_url = match &self.base_url {
            Some(url) if !url.trim().is_empty() => Some(parse_base_url(url)?),
            _ => None,
        };
        Ok(Target::Remote {
            region: self.region,
            base_url,
            key: match &self.token_file {
                Some(path) => KeySource::File(path.clone()),
                None => KeySource::Env(key_from_env()),
            },
        })
    }

    fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.get(),
            base: Duration::from_millis(self.retry_base_ms.max(1)),
            ..RetryPolicy::default()
        }
    }
}

impl RunArgs {
    fn into_config(
        self,
        mode: Mode,
        output: OutputOptions,
        program: String,
    ) -> Result<RunConfig, ConfigError> {
        Ok(RunConfig {
            mode,
            target: self.connect.target()?,
            input: self.input.into_options(),
            kind: self.connect.kind,
            report: self.report,
            force: self.force,
            rate: self.connect.rate,
            burst: self.connect.burst,
            concurrency: self.concurrency,
            timeout: self.connect.timeout,
            retry: self.connect.retry(),
            max_failures: self.max_failures,
            skip_invalid: self.skip_invalid,
            resend: false,
            overwrite_drift: self.overwrite_drift,
            verify: false,
            max_changes: self.max_changes,
            undo: None,
            resume_from: None,
            plan: PlanOptions::default(),
            summary_json: self.summary_json,
            evidence: self.evidence,
            ca_cert: self.connect.ca_cert,
            output,
            program,
        })
    }
}

impl ExportArgs {
    fn into_config(self, log: OutputOptions) -> Result<ExportConfig, ConfigError> {
        let output = self.output.filter(|path| path.as_os_str() != "-");
        let format = self.format.unwrap_or(match &output {
            Some(path)
                if path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("xlsx")) =>
            {
                ExportFormat::Xlsx
            }
            _ => ExportFormat::Csv,
        });
        if format == ExportFormat::Xlsx {
            if output.is_none() {
                return Err(ConfigError::XlsxNeedsFile);
            }
            if self.excel {
                return Err(ConfigError::ExcelIsCsv);
            }
        }
        let text =
            |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Ok(ExportConfig {
            target: self.connect.target()?,
            kind: self.connect.kind,
            rate: self.connect.rate,
            burst: self.connect.burst,
            timeout: self.connect.timeout,
            retry: self.connect.retry(),
            ca_cert: self.connect.ca_cert,
            output,
            force: self.force,
            format,
            excel: self.excel,
            filter: ExportFilter {
                client_type: text(self.client_type),
                connection: text(self.connection),
                only: self.only,
            },
            log,
        })
    }
}

impl PlanArgs {
    fn into_config(self, output: OutputOptions, program: String) -> Result<RunConfig, ConfigError> {
        let mut config = self.run.into_config(Mode::Plan, output, program)?;
        config.input.blank_false_reasons = true;
        config.plan = PlanOptions {
            json: self.json,
            detailed_exitcode: self.detailed_exitcode,
        };
        Ok(config)
    }
}

impl ApplyArgs {
    fn into_config(self, output: OutputOptions, program: String) -> Result<RunConfig, ConfigError> {
        if self.dry_run {
            return Err(ConfigError::Guessed {
                given: "--dry-run",
                instead: "`drata-svcacct plan` with the same arguments shows what would change and sends nothing",
            });
        }
        if self.output.is_some() {
            return Err(ConfigError::Guessed {
                given: "-o/--output",
                instead: "the per-row report goes to --report PATH",
            });
        }
        let mut config = self.run.into_config(Mode::Apply, output, program)?;
        // `--reconcile` is what apply always does now.
        let _ = self.reconcile;
        config.resend = self.resend;
        config.verify = !self.no_verify;
        config.input.blank_false_reasons = true;
        config.undo = self.undo;
        config.resume_from = self.resume_from;
        Ok(config)
    }
}

#[cfg(feature = "simulator")]
impl SimulateArgs {
    fn into_config(self) -> Result<SimulatorConfig, ConfigError> {
        if self.identities > MAX_IDENTITIES {
            return Err(ConfigError::TooMany("--identities", MAX_IDENTITIES));
        }
        Ok(SimulatorConfig {
            listen: self.listen,
            identities: self.identities,
            token: self.token,
            rate_limit: self.rate_limit,
            bucket_capacity: self.bucket_capacity.get(),
            error_rate: self.error_rate,
            latency: Duration::from_millis(self.latency),
            drop_rate: self.drop_rate,
            slow_rate: self.slow_rate,
            slow_delay: Duration::from_millis(self.slow_ms),
            seed: self.seed,
        })
    }
}

impl Cli {
    /// Parses the process's arguments, or exits as clap does: help and version on standard
    /// output, usage errors on standard error (as one JSON object when the arguments ask
    /// for `--log-format json`, like every other line there).
    pub fn parse_args() -> Self {
        match <Self as Parser>::try_parse() {
            Ok(cli) => cli,
            Err(error) if error.use_stderr() && asks_for_json(std::env::args_os()) => {
                let line = serde_json::json!({
                    "timestamp": humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
                    "level": "ERROR",
                    "message": error.kind().to_string(),
                    "detail": error.to_string().trim(),
                });
                eprintln!("{line}");
                std::process::exit(crate::exit::USAGE.into());
            }
            Err(error) => error.exit(),
        }
    }

    /// True when every line on standard error is to be JSON.
    pub fn json_logs(&self) -> bool {
        self.log_format == LogFormat::Json
    }

    /// Checks every value and builds the command; `program` is how the tool was invoked,
    /// for the commands it prints.
    pub(crate) fn into_command(self, program: String) -> Result<Command, ConfigError> {
        let output = OutputOptions {
            quiet: self.quiet,
            verbose: self.verbose,
            log_format: self.log_format,
            progress_interval: self.progress_interval,
        };
        Ok(match self.command {
            Commands::Validate(input) => Command::Validate {
                // Offline, a `false` row without a reason cannot be judged: it is fine if
                // its identity stays unmarked, which plan and apply --reconcile check.
                input: InputOptions {
                    blank_false_reasons: true,
                    ..input.into_options()
                },
                output,
            },
            Commands::Plan(args) => Command::Run(Box::new(args.into_config(output, program)?)),
            Commands::Apply(args) => Command::Run(Box::new(args.into_config(output, program)?)),
            Commands::Export(args) => Command::Export(Box::new(args.into_config(output)?)),
            #[cfg(feature = "simulator")]
            Commands::Simulate(args) => Command::Simulate {
                config: args.into_config()?,
                output,
            },
            Commands::Completions { shell } => Command::Completions {
                shell,
                definition: Box::new(<Self as clap::CommandFactory>::command()),
            },
            Commands::Man => Command::Man {
                definition: Box::new(<Self as clap::CommandFactory>::command()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cli = Cli::try_parse_from(["drata-svcacct", "apply", "x.csv", "--simulate"]).unwrap();
        let Command::Run(config) = cli.into_command(String::new()).unwrap() else {
            panic!("not a run")
        };
        assert_eq!(config.rate.per_minute(), Some(450.0));
        assert_eq!(config.burst.get(), 1);
        assert_eq!(config.concurrency, ConcurrencyMode::Auto);
        assert_eq!(config.retry.max_attempts, 5);
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.max_failures, MaxFailures::Percent(50.0));
        assert_eq!(config.output.progress_interval, Duration::from_secs(10));
    }

    #[test]
    fn bad_values_are_refused_before_any_io() {
        for args in [
            vec!["apply", "x.csv", "--rate", "fast"],
            vec!["apply", "x.csv", "--concurrency", "0"],
            vec!["apply", "x.csv", "--concurrency", "1025"],
            vec!["apply", "x.csv", "--base-url", "http://example.com"],
            vec!["apply", "x.csv", "--max-failures", "lots"],
            vec!["apply", "x.csv", "--delimiter", "ab"],
            vec!["apply", "x.csv", "--timeout", "0"],
            vec!["apply", "x.csv", "--timeout", "1e300"],
            vec!["plan", "x.csv", "--reconcile"],
            vec!["simulate", "--error-rate", "2"],
        ] {
            let refused = Cli::try_parse_from(std::iter::once("drata-svcacct").chain(args.clone()))
                .map_err(|_| ())
                .and_then(|cli| cli.into_command(String::new()).map_err(|_| ()));
            assert!(refused.is_err(), "{args:?}");
        }
    }

    #[test]
    fn the_resume_command_carries_every_option_that_is_not_a_default() {
        let cli = Cli::try_parse_from([
            "drata-svcacct",
            "apply",
            "my file.csv",
            "--report",
            "old.csv",
            "--resume-from=older.csv",
            "--summary-json",
            "s.json",
            "--rate",
            "8/s",
            "--base-url",
            "http://127.0.0.1:9/public",
            "--reason=-x",
            "--reconcile",
            "--resend",
            "--no-verify",
            "--overwrite-drift",
            "--ca-cert",
            "corp ca.pem",
        ])
        .unwrap();
        let Command::Run(config) = cli.into_command("drata-svcacct".to_owned()).unwrap() else {
            panic!("not a run")
        };
        assert_eq!(
            config.resume_command(std::path::Path::new("new report.csv")),
            "drata-svcacct apply 'my file.csv' --reason=-x --base-url http://127.0.0.1:9/public/ \
             --ca-cert 'corp ca.pem' --rate 8/s --resend --overwrite-drift --no-verify '--report=new report.resumed.csv' --summary-json=s.resumed.json --resume-from 'new report.csv'"
        );
    }
}
