//! The command line, parsed by clap and turned into a checked [`Command`] before any I/O.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{
    parse_base_url, parse_delimiter, Command, ConfigError, IdentityKind, InputOptions, InputSource,
    KeySource, LogFormat, MaxFailures, Mode, OutputOptions, Rate, Region, RunConfig,
    SimulatorConfig, Target,
};
use crate::retry::RetryPolicy;
use crate::secret::ApiKey;

/// Requests in flight at most; far beyond what any API allows per IP.
const MAX_CONCURRENCY: usize = 1024;

/// The simulator keeps every identity in memory (two kinds): keep that bounded.
const MAX_SIMULATED_IDENTITIES: u64 = 10_000_000;

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
    pub command: Commands,

    /// Print only errors (and the summary when the run did not fully succeed)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More detail: -v for every row and retry, -vv for HTTP internals
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log format on standard error
    #[arg(long, global = true, value_enum, default_value_t = LogFormatArg::Text)]
    pub log_format: LogFormatArg,

    /// Seconds between progress lines when standard error is not a terminal
    #[arg(long, global = true, default_value_t = 10.0, hide = true)]
    pub progress_interval: f64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RegionArg {
    Us,
    Eu,
    Apac,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Infrastructure,
    VersionControl,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Check the input offline: no network, no token
    Validate(InputArgs),
    /// Read-only: fetch the current state and report what would change
    #[command(after_help = EXAMPLES)]
    Plan(RunArgs),
    /// Apply the input through the Drata API
    #[command(after_help = EXAMPLES)]
    Apply(RunArgs),
    /// Serve a local stand-in of the Drata API
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
pub struct InputArgs {
    /// The CSV to read, or - for standard input
    #[arg(value_name = "INPUT")]
    pub input: String,

    /// Header of the id column [default: id]
    #[arg(long, value_name = "NAME")]
    pub id_column: Option<String>,

    /// Header of the flag column [default: serviceAccount or flag]
    #[arg(long, value_name = "NAME")]
    pub flag_column: Option<String>,

    /// Header of the reason column [default: serviceAccountReason or reason]
    #[arg(long, value_name = "NAME")]
    pub reason_column: Option<String>,

    /// Field delimiter (one character; \t for tab)
    #[arg(long, value_name = "C", default_value = ",")]
    pub delimiter: String,

    /// Reason used where the reason cell is blank or the column is absent
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Drata region, which picks the base URL
    #[arg(long, value_enum, default_value_t = RegionArg::Us)]
    pub region: RegionArg,

    /// Override the region's base URL (https://, or http:// to loopback only)
    #[arg(
        long,
        value_name = "URL",
        env = "DRATA_BASE_URL",
        hide_env_values = true
    )]
    pub base_url: Option<String>,

    /// Read the API key from the first line of this file [default: env DRATA_API_KEY]
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Where the per-row report goes [default: <input stem>.report.<UTC timestamp>.csv]
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,

    /// Allow replacing existing report, summary, undo and evidence files
    #[arg(long)]
    pub force: bool,

    /// Request rate: N/s, N/min, N/h or unlimited
    #[arg(long, value_name = "R", default_value = "450/min")]
    pub rate: String,

    /// Token-bucket burst of the rate limiter
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub burst: u32,

    /// Requests in flight at most
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,

    /// Attempts per request, the first included
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub max_attempts: u32,

    /// Per-request timeout in seconds
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,

    /// Abort past this many failed rows: N, P% (applies once 20 rows finished) or none
    #[arg(long, value_name = "N|P%", default_value = "50%")]
    pub max_failures: String,

    /// Send the valid rows even if some rows are invalid
    #[arg(long)]
    pub skip_invalid: bool,

    /// A report of an earlier run of this input: rows it shows as done are skipped
    #[arg(long, value_name = "PATH")]
    pub resume_from: Option<PathBuf>,

    /// Fetch the current state first and skip rows already in the desired state (apply)
    #[arg(long)]
    pub reconcile: bool,

    /// Refuse (exit 3, nothing sent) when more than N rows would be updated
    #[arg(long, value_name = "N")]
    pub max_changes: Option<u64>,

    /// With --reconcile: write a CSV in the input format that restores the previous state
    #[arg(long, value_name = "PATH", requires = "reconcile")]
    pub undo: Option<PathBuf>,

    /// Write a machine-readable summary of the run (JSON)
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,

    /// Write a Markdown record of the run for auditors
    #[arg(long, value_name = "PATH")]
    pub evidence: Option<PathBuf>,

    /// Which identities: infrastructure or version-control
    #[arg(long, value_enum, default_value_t = KindArg::Infrastructure)]
    pub kind: KindArg,

    /// Run against an in-process simulator on loopback; no token needed
    // Not in conflict with --base-url: DRATA_BASE_URL may be exported, and is ignored here.
    #[arg(long, conflicts_with = "token_file")]
    pub simulate: bool,

    /// First backoff ceiling in milliseconds (doubles per attempt, capped at 30 s)
    #[arg(long, value_name = "MS", default_value_t = 500, hide = true)]
    pub retry_base_ms: u64,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,

    /// Seeded identities (ids 1..N; every 7th is already a service account)
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub identities: u64,

    /// Bearer token the simulator requires
    #[arg(long, value_name = "TOKEN", default_value = "sim-token")]
    pub token: String,

    /// Leaky-bucket rate limit: N/s, N/min, N/h or unlimited
    #[arg(long, value_name = "R", default_value = "500/min")]
    pub rate_limit: String,

    /// Requests the leaky bucket holds before it answers 429
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub bucket_capacity: u32,

    /// Share of PUTs answered 500, from 0 to 1
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub error_rate: f64,

    /// Added latency per request, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency: u64,

    /// Share of requests whose connection is closed without an answer, from 0 to 1
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub drop_rate: f64,

    /// Share of requests answered only after --slow-ms, from 0 to 1
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub slow_rate: f64,

    /// Delay of the slow answers, in milliseconds (default: beyond the client's 30 s timeout)
    #[arg(long, value_name = "MS", default_value_t = 35_000)]
    pub slow_ms: u64,

    /// Seed of the fault injection, for repeatable runs
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
}

fn positive_seconds(value: f64, what: &'static str) -> Result<Duration, ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(Duration::from_secs_f64(value.min(86_400.0)))
    } else {
        Err(ConfigError::Zero(what))
    }
}

fn share(value: f64, what: &'static str) -> Result<f64, ConfigError> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Share(what))
    }
}

impl InputArgs {
    fn into_options(self) -> Result<InputOptions, ConfigError> {
        Ok(InputOptions {
            source: InputSource::from_arg(&self.input),
            delimiter: parse_delimiter(&self.delimiter)?,
            id_column: self.id_column,
            flag_column: self.flag_column,
            reason_column: self.reason_column,
            default_reason: self.reason.filter(|r| !r.trim().is_empty()),
        })
    }
}

impl RunArgs {
    fn into_config(
        self,
        mode: Mode,
        output: OutputOptions,
        argv: Vec<String>,
    ) -> Result<RunConfig, ConfigError> {
        if mode == Mode::Plan
            && (self.reconcile || self.undo.is_some() || self.resume_from.is_some())
        {
            return Err(ConfigError::ApplyOnly(
                "--reconcile, --undo and --resume-from",
            ));
        }
        let target = if self.simulate {
            Target::Simulated
        } else {
            let base_url = match &self.base_url {
                Some(url) if !url.trim().is_empty() => parse_base_url(url)?,
                _ => parse_base_url(
                    match self.region {
                        RegionArg::Us => Region::Us,
                        RegionArg::Eu => Region::Eu,
                        RegionArg::Apac => Region::Apac,
                    }
                    .base_url(),
                )?,
            };
            let key = match self.token_file {
                Some(path) => KeySource::File(path),
                // Read here, never through clap: clap would print it in --help.
                None => KeySource::Env(match std::env::var("DRATA_API_KEY") {
                    Ok(raw) => ApiKey::new(&raw).map_err(|e| format!("DRATA_API_KEY: {e}")),
                    Err(_) => Err(crate::secret::KeyError::Missing.to_string()),
                }),
            };
            Target::Remote { base_url, key }
        };
        let concurrency = match self.concurrency {
            0 => return Err(ConfigError::Zero("--concurrency")),
            n if n > MAX_CONCURRENCY => {
                return Err(ConfigError::TooMany(
                    "--concurrency",
                    MAX_CONCURRENCY as u64,
                ))
            }
            n => n,
        };
        Ok(RunConfig {
            mode,
            input: self.input.into_options()?,
            target,
            kind: match self.kind {
                KindArg::Infrastructure => IdentityKind::Infrastructure,
                KindArg::VersionControl => IdentityKind::VersionControl,
            },
            report: self.report,
            force: self.force,
            rate: self.rate.parse::<Rate>()?,
            burst: NonZeroU32::new(self.burst).ok_or(ConfigError::Zero("--burst"))?,
            concurrency,
            timeout: positive_seconds(self.timeout, "--timeout")?,
            retry: RetryPolicy {
                max_attempts: match self.max_attempts {
                    0 => return Err(ConfigError::Zero("--max-attempts")),
                    n => n,
                },
                base: Duration::from_millis(self.retry_base_ms.max(1)),
                ..RetryPolicy::default()
            },
            max_failures: self.max_failures.parse::<MaxFailures>()?,
            skip_invalid: self.skip_invalid,
            reconcile: self.reconcile || mode == Mode::Plan,
            max_changes: self.max_changes,
            undo: self.undo,
            resume_from: self.resume_from,
            summary_json: self.summary_json,
            evidence: self.evidence,
            output,
            argv,
        })
    }
}

impl SimulateArgs {
    fn into_config(self) -> Result<SimulatorConfig, ConfigError> {
        if self.identities > MAX_SIMULATED_IDENTITIES {
            return Err(ConfigError::TooMany(
                "--identities",
                MAX_SIMULATED_IDENTITIES,
            ));
        }
        Ok(SimulatorConfig {
            listen: self.listen,
            identities: self.identities,
            token: self.token,
            rate_limit: self.rate_limit.parse::<Rate>()?,
            bucket_capacity: NonZeroU32::new(self.bucket_capacity)
                .ok_or(ConfigError::Zero("--bucket-capacity"))?
                .get(),
            error_rate: share(self.error_rate, "--error-rate")?,
            latency: Duration::from_millis(self.latency),
            drop_rate: share(self.drop_rate, "--drop-rate")?,
            slow_rate: share(self.slow_rate, "--slow-rate")?,
            slow_delay: Duration::from_millis(self.slow_ms),
            seed: self.seed,
        })
    }
}

impl Cli {
    /// Checks every value and builds the command; `argv` is kept to print resume commands.
    pub fn into_command(self, argv: Vec<String>) -> Result<Command, ConfigError> {
        let output = OutputOptions {
            quiet: self.quiet,
            verbose: self.verbose,
            log_format: match self.log_format {
                LogFormatArg::Text => LogFormat::Text,
                LogFormatArg::Json => LogFormat::Json,
            },
            progress_interval: positive_seconds(self.progress_interval, "--progress-interval")?,
        };
        Ok(match self.command {
            Commands::Validate(input) => Command::Validate {
                input: input.into_options()?,
                output,
            },
            Commands::Plan(args) => {
                Command::Run(Box::new(args.into_config(Mode::Plan, output, argv)?))
            }
            Commands::Apply(args) => {
                Command::Run(Box::new(args.into_config(Mode::Apply, output, argv)?))
            }
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
    fn defaults_match_the_spec() {
        let cli = Cli::try_parse_from(["drata-svcacct", "apply", "x.csv", "--simulate"]).unwrap();
        let Command::Run(config) = cli.into_command(vec![]).unwrap() else {
            panic!("not a run")
        };
        assert_eq!(config.rate.per_minute(), Some(450.0));
        assert_eq!(config.burst.get(), 1);
        assert_eq!(config.concurrency, 8);
        assert_eq!(config.retry.max_attempts, 5);
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.max_failures, MaxFailures::Percent(50.0));
    }

    #[test]
    fn bad_values_are_refused_before_any_io() {
        for args in [
            vec!["apply", "x.csv", "--rate", "fast"],
            vec!["apply", "x.csv", "--concurrency", "0"],
            vec!["apply", "x.csv", "--base-url", "http://example.com"],
            vec!["apply", "x.csv", "--max-failures", "lots"],
            vec!["apply", "x.csv", "--delimiter", "ab"],
            vec!["apply", "x.csv", "--timeout", "0"],
        ] {
            let cli =
                Cli::try_parse_from(std::iter::once("drata-svcacct").chain(args.clone())).unwrap();
            assert!(cli.into_command(vec![]).is_err(), "{args:?}");
        }
    }
}
