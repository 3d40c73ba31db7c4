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
    ConfigError, KeySource, LogFormat, MaxFailures, Mode, OutputOptions, Region, RunConfig, Target,
    DEFAULT_CONCURRENCY, DEFAULT_MAX_FAILURES, DEFAULT_PROGRESS_INTERVAL, DEFAULT_RATE,
    DEFAULT_TIMEOUT,
};
use crate::engine::{ConcurrencyMode, RetryPolicy};
use crate::input::{InputOptions, InputSource};
use crate::model::{IdentityKind, Rate};
use crate::secret::{ApiKey, KeyError};
#[cfg(feature = "simulator")]
use crate::simulator::{SimulatorConfig, MAX_IDENTITIES};

const EXAMPLES: &str = "\
Examples:
  Quarterly access review: check the export, see what would change, apply it
    drata-svcacct validate q3-review.csv
    DRATA_API_KEY=... drata-svcacct plan q3-review.csv
    DRATA_API_KEY=... drata-svcacct apply q3-review.csv --evidence q3-evidence.md

  One-off migration, reversible, with a blast-radius guard
    drata-svcacct apply migration.csv --token-file ~/.drata-key --reconcile \\
        --max-changes 500 --undo migration-undo.csv

  Nightly cron job, quiet unless something fails
    drata-svcacct apply /srv/svcacct/desired.csv --token-file /etc/drata/key --quiet \\
        --reconcile --report /var/log/svcacct/$(date +%F).csv --log-format json

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
    Plan(RunArgs),
    /// Apply the input through the Drata API
    #[command(after_help = EXAMPLES)]
    Apply(RunArgs),
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

    /// Field delimiter (one character; \t for tab)
    #[arg(long, value_name = "C", default_value = ",", value_parser = parse_delimiter)]
    delimiter: u8,

    /// Reason used where the reason cell is blank or the column is absent
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    input: InputArgs,

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

    /// Where the per-row report goes [default: <input stem>.report.<UTC timestamp>.csv]
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,

    /// Allow replacing existing report, summary, undo and evidence files
    #[arg(long)]
    force: bool,

    /// Request rate: N/s, N/min, N/h or unlimited
    #[arg(long, value_name = "R", default_value = DEFAULT_RATE)]
    rate: Rate,

    /// Token-bucket burst of the rate limiter
    #[arg(long, value_name = "N", default_value = "1")]
    burst: NonZeroU32,

    /// Requests in flight at most: a number from 1 to 1024, or auto (enough for --rate at
    /// the measured latency, 4 to 64, lowered on timeouts, 5xx and 429s)
    #[arg(long, value_name = "N|auto", default_value = DEFAULT_CONCURRENCY,
          value_parser = parse_concurrency)]
    concurrency: ConcurrencyMode,

    /// Attempts per request, the first included
    #[arg(long, value_name = "N", default_value_t = NonZeroU32::new(RetryPolicy::default().max_attempts).unwrap_or(NonZeroU32::MIN))]
    max_attempts: NonZeroU32,

    /// Per-request timeout in seconds, from 0.1 to 3600
    #[arg(long, value_name = "SECS", value_parser = parse_timeout,
          default_value = DEFAULT_TIMEOUT)]
    timeout: Duration,

    /// Abort past this many failed rows: N, P% (applies once 20 rows finished) or none
    #[arg(long, value_name = "N|P%", default_value = DEFAULT_MAX_FAILURES)]
    max_failures: MaxFailures,

    /// Send the valid rows even if some rows are invalid
    #[arg(long)]
    skip_invalid: bool,

    /// A report of an earlier run of this input: rows it shows as done are skipped
    #[arg(long, value_name = "PATH")]
    resume_from: Option<PathBuf>,

    /// Fetch the current state first and skip rows already in the desired state (apply)
    #[arg(long)]
    reconcile: bool,

    /// Refuse (exit 3, nothing sent) when more than N rows would be updated
    #[arg(long, value_name = "N")]
    max_changes: Option<u64>,

    /// With --reconcile: write a CSV in the input format that restores the previous state
    #[arg(long, value_name = "PATH", requires = "reconcile")]
    undo: Option<PathBuf>,

    /// Write a machine-readable summary of the run (JSON)
    #[arg(long, value_name = "PATH")]
    summary_json: Option<PathBuf>,

    /// Write a Markdown record of the run for auditors
    #[arg(long, value_name = "PATH")]
    evidence: Option<PathBuf>,

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
        }
    }
}

/// `DRATA_API_KEY`, read here and never through clap: clap would print it in `--help`.
fn key_from_env() -> Result<ApiKey, KeyError> {
    match std::env::var("DRATA_API_KEY") {
        Ok(raw) => ApiKey::new(&raw).map_err(|e| KeyError::InEnvironment(Box::new(e))),
        Err(_) => Err(KeyError::Missing),
    }
}

impl RunArgs {
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

    fn into_config(
        self,
        mode: Mode,
        output: OutputOptions,
        program: String,
    ) -> Result<RunConfig, ConfigError> {
        if mode == Mode::Plan
            && (self.reconcile || self.undo.is_some() || self.resume_from.is_some())
        {
            return Err(ConfigError::ApplyOnly(
                "--reconcile, --undo and --resume-from",
            ));
        }
        Ok(RunConfig {
            mode,
            target: self.target()?,
            input: self.input.into_options(),
            kind: self.kind,
            report: self.report,
            force: self.force,
            rate: self.rate,
            burst: self.burst,
            concurrency: self.concurrency,
            timeout: self.timeout,
            retry: RetryPolicy {
                max_attempts: self.max_attempts.get(),
                base: Duration::from_millis(self.retry_base_ms.max(1)),
                ..RetryPolicy::default()
            },
            max_failures: self.max_failures,
            skip_invalid: self.skip_invalid,
            reconcile: self.reconcile || mode == Mode::Plan,
            max_changes: self.max_changes,
            undo: self.undo,
            resume_from: self.resume_from,
            summary_json: self.summary_json,
            evidence: self.evidence,
            output,
            program,
        })
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
                input: input.into_options(),
                output,
            },
            Commands::Plan(args) => {
                Command::Run(Box::new(args.into_config(Mode::Plan, output, program)?))
            }
            Commands::Apply(args) => {
                Command::Run(Box::new(args.into_config(Mode::Apply, output, program)?))
            }
            #[cfg(feature = "simulator")]
            Commands::Simulate(args) => Command::Simulate {
                config: args.into_config()?,
                output,
            },
            Commands::Completions { shell } => Command::Completions(shell),
            Commands::Man => Command::Man,
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
        ])
        .unwrap();
        let Command::Run(config) = cli.into_command("drata-svcacct".to_owned()).unwrap() else {
            panic!("not a run")
        };
        assert_eq!(
            config.resume_command(std::path::Path::new("new report.csv")),
            "drata-svcacct apply 'my file.csv' --reason=-x --base-url http://127.0.0.1:9/public/ \
             --rate 8/s --reconcile --summary-json=s.resumed.json --resume-from 'new report.csv'"
        );
    }
}
