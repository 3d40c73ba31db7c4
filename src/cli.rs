//! The command line: clap parses typed values, then [`Cli::into_command`] checks what
//! clap cannot and builds the [`Command`] before any I/O.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

#[cfg(feature = "simulator")]
use crate::config::parse_share;
use crate::config::{
    accepted_file, check_name, ControlRef, Owner, Renewal, UploadConfig, UploadOptionError,
};
use crate::config::{
    parse_base_url, parse_delimiter, parse_interval, parse_timeout, ApplyOptions, Command,
    ConfigError, Connect, ExportConfig, ExportFilter, ExportFormat, KeySource, LogFormat, Mode,
    Only, OutputOptions, PlanOptions, Region, ResumeCommand, ResumeWord, RunConfig, RunOptions,
    Target, DEFAULT_PROGRESS_INTERVAL, DEFAULT_RATE, DEFAULT_TIMEOUT,
};
use crate::engine::RetryPolicy;
use crate::input::{Encoding, InputOptions, InputSource, DEFAULT_MAX_COPY_MIB};
use crate::model::{IdentityKind, Rate};
use crate::output::Console;
use crate::secret::{ApiKey, KeyError};
#[cfg(feature = "simulator")]
use crate::simulator::{SimulatorConfig, MAX_IDENTITIES};

/// The use cases shown after the options of `--help`, and in the man pages' EXAMPLES.
macro_rules! examples {
    () => {
        "\
Examples:
  Quarterly access review: start from Drata, edit, see what would change, apply it
    DRATA_API_KEY=... drata-svcacct export -o q4-review.csv
    DRATA_API_KEY=... drata-svcacct plan q4-review.csv
    DRATA_API_KEY=... drata-svcacct apply q4-review.csv --evidence q4-evidence.xlsx

  A list decided elsewhere: check it, see what would change, apply it
    drata-svcacct validate q3-review.csv
    DRATA_API_KEY=... drata-svcacct plan q3-review.csv
    DRATA_API_KEY=... drata-svcacct apply q3-review.csv --evidence q3-evidence.md

  One-off migration, reversible, with a blast-radius guard
    drata-svcacct apply migration.csv --token-file ~/.drata-key \\
        --max-changes 500 --undo migration-undo.csv

  Nightly cron job, quiet unless something fails: one crontab line (cron reads % as a newline,
  so it is written \\%)
    15 3 * * * drata-svcacct apply --rules /srv/svcacct/rules.toml --max-changes 50 --token-file /etc/drata/key --quiet --report /var/log/svcacct/$(date -u +\\%FT\\%H\\%M\\%SZ).csv --log-format json

  Try it without a Drata account
    drata-svcacct apply samples/quarterly-review.csv --simulate"
    };
}
const EXAMPLES: &str = examples!();

/// clap's default layout of `--help`, with the examples printed as written: clap refills
/// after-help text to the terminal's width, which would break the crontab line in two (a
/// crontab entry is one line). `after_help` still carries them, for the man pages.
const HELP_WITH_EXAMPLES: &str = concat!(
    "{before-help}{about-with-newline}\n{usage-heading} {usage}\n\n{all-args}\n\n",
    examples!()
);

#[derive(Debug, Parser)]
#[command(
    name = "drata-svcacct",
    version = env!("DRATA_SVCACCT_VERSION"),
    about = "Apply a CSV of service-account decisions to Drata identities, safely and fast",
    after_help = EXAMPLES,
    help_template = HELP_WITH_EXAMPLES,
    propagate_version = true
)]
pub struct Cli {
    /// The parsed command line as clap holds it, for the resume command. First: the fields
    /// below take their values out of the matches they are built from.
    #[command(flatten)]
    matches: KeptMatches,

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
    #[command(after_help = EXAMPLES, help_template = HELP_WITH_EXAMPLES)]
    Plan(PlanArgs),
    /// Apply the input through the Drata API
    #[command(after_help = EXAMPLES, help_template = HELP_WITH_EXAMPLES)]
    Apply(ApplyArgs),
    /// Write the current identities as an input file, to start a review from Drata
    #[command(after_help = EXAMPLES, help_template = HELP_WITH_EXAMPLES)]
    Export(ExportArgs),
    /// Put an evidence file (the workbook of --evidence) into Drata's Evidence Library
    #[command(after_help = UPLOAD_EXAMPLES)]
    UploadEvidence(UploadArgs),
    /// Serve a local stand-in of the Drata API
    #[cfg(feature = "simulator")]
    Simulate(SimulateArgs),
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): the top one, or a command's; --out writes them all
    Man {
        /// The command whose page to print, or `rules` for the rules file's format (section 5)
        /// [default: the top page]
        #[arg(value_enum, value_name = "COMMAND")]
        page: Option<ManPage>,

        /// Write the pages into this directory (created if missing) instead: drata-svcacct.1,
        /// drata-svcacct-apply.1, ..., and drata-svcacct-rules.5 (into ../man5 when DIR is a
        /// man1 folder); only the named one when a page is given
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// The commands that have a man page of their own: every one of [`Commands`] (a unit
/// test holds the two lists together).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ManPage {
    Validate,
    Plan,
    Apply,
    Export,
    UploadEvidence,
    #[cfg(feature = "simulator")]
    Simulate,
    Completions,
    Man,
    /// The rules file's format: a page of section 5 (file formats), not a command.
    Rules,
}

#[derive(Debug, Args)]
struct InputArgs {
    /// The input to read: a CSV, a spreadsheet (.xlsx, .xlsm, .xls, .ods), or - for a CSV on
    /// standard input
    #[arg(value_name = "INPUT", required_unless_present = "rules")]
    input: Option<PathBuf>,

    /// Decide identities by the rules in this TOML file, as well as (or instead of) INPUT;
    /// a row of INPUT wins over a rule for its identity (the format: `drata-svcacct man rules`)
    #[arg(long, value_name = "PATH")]
    rules: Option<PathBuf>,

    /// Header of the id column [default: id]
    #[arg(long, value_name = "NAME")]
    id_column: Option<String>,

    /// Header of the flag column [default: serviceAccount or flag]
    #[arg(long, value_name = "NAME")]
    flag_column: Option<String>,

    /// Header of the reason column [default: serviceAccountReason or reason]
    #[arg(long, value_name = "NAME")]
    reason_column: Option<String>,

    /// Header of the column naming, by email, the Drata user each identity belongs to
    /// (empty: linked to nobody); without the column links are not touched [default:
    /// linkedUser]
    #[arg(long, value_name = "NAME")]
    link_column: Option<String>,

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

    /// The sheet of a spreadsheet input (.xlsx, .xlsm, .xls, .ods), any case, hidden ones
    /// too [default: the active sheet when visible, else the first visible one]
    #[arg(long, value_name = "NAME")]
    sheet: Option<String>,

    /// The header is row N (1-based), for files with title rows the search misses
    /// [default: searched for among the first 20 non-empty rows]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    header_row: Option<u64>,

    /// Text encoding of the input [default: UTF-8, or UTF-16 by its byte-order mark]
    #[arg(long, value_enum, value_name = "NAME")]
    encoding: Option<Encoding>,

    /// The largest input copied (standard input, or a file for plan and apply), in MiB
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_COPY_MIB, hide = true)]
    max_input_mib: u64,
}

#[derive(Debug, Args)]
struct PlanArgs {
    #[command(flatten)]
    run: RunArgs,

    #[command(flatten)]
    plan: PlanOptions,
}

/// What only `apply` does, and the options people try by habit.
#[derive(Debug, Args)]
struct ApplyArgs {
    #[command(flatten)]
    run: RunArgs,

    #[command(flatten)]
    apply: ApplyOptions,

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

    /// A Retry-After pause longer than this, in milliseconds, is announced and shown
    #[arg(long, value_name = "MS", default_value_t = RetryPolicy::default().long_pause.as_millis() as u64, hide = true)]
    long_pause_ms: u64,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    input: InputArgs,

    #[command(flatten)]
    connect: ConnectArgs,

    #[command(flatten)]
    options: RunOptions,
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

    /// Add a `rule` column: the rule of this TOML file that would decide each identity
    #[arg(long, value_name = "PATH")]
    rules: Option<PathBuf>,
}

const UPLOAD_EXAMPLES: &str = "\
Examples:
  The quarter's evidence, next to the access-review control, renewed every quarter
    DRATA_API_KEY=... drata-svcacct upload-evidence q4-evidence.xlsx \\
        --owner grc-lead@example.com --control DCF-24";

#[derive(Debug, Args)]
struct UploadArgs {
    /// The file to upload (normally the .xlsx of --evidence)
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// The item's owner: a Drata user's email, or a user id
    #[arg(long, value_name = "EMAIL|ID")]
    owner: String,

    /// The workspace [default: the one Drata marks primary]
    #[arg(long, value_name = "ID")]
    workspace: Option<u64>,

    /// A control the evidence proves: its code (DCF-24) or its id; repeat for several
    #[arg(long, value_name = "CODE|ID")]
    control: Vec<String>,

    /// The item's name, at most 191 characters [default: the file's name and the date]
    #[arg(long, value_name = "TEXT")]
    name: Option<String>,

    /// How often the evidence is renewed (the renewal date is today plus this)
    #[arg(long, value_enum, default_value_t = Renewal::default())]
    renewal: Renewal,

    #[command(flatten)]
    connect: ConnectArgs,
}

#[cfg(feature = "simulator")]
#[derive(Debug, Args)]
struct SimulateArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value_t = SimulatorConfig::default().listen)]
    listen: std::net::SocketAddr,

    /// Seeded identities (ids 1..N; every 7th is already a service account; the people are
    /// linked to their Drata user, but ids 19 and 69 of every hundred)
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

    /// Spread of the latency: each request takes --latency ± up to MS milliseconds, evenly
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency_spread: u64,

    /// Share of requests whose connection is closed without an answer, from 0 to 1
    #[arg(long, value_name = "P", default_value = "0", value_parser = parse_share)]
    drop_rate: f64,

    /// Share of requests answered only after --slow-ms, from 0 to 1
    #[arg(long, value_name = "P", default_value = "0", value_parser = parse_share)]
    slow_rate: f64,

    /// Delay of the slow answers, in milliseconds (default: beyond the client's 30 s timeout)
    #[arg(long, value_name = "MS", default_value_t = SimulatorConfig::default().slow_delay.as_millis() as u64)]
    slow_ms: u64,

    /// Requests worked on at once; more are answered 503 (a server that admits few)
    #[arg(long, value_name = "N")]
    max_in_flight: Option<std::num::NonZeroU64>,

    /// Work on one request at a time, each taking MS milliseconds: the latency grows with
    /// the requests in flight (a server that queues)
    #[arg(long, value_name = "MS", default_value_t = 0)]
    queue_ms: u64,

    /// Seed of the fault injection, for repeatable runs
    #[arg(long, value_name = "N", default_value_t = SimulatorConfig::default().seed)]
    seed: u64,
}

impl InputArgs {
    fn into_options(self) -> InputOptions {
        InputOptions {
            source: self.input.map_or(InputSource::None, InputSource::from_arg),
            delimiter: self.delimiter,
            id_column: self.id_column,
            flag_column: self.flag_column,
            reason_column: self.reason_column,
            link_column: self.link_column,
            default_reason: self.reason.filter(|r| !r.trim().is_empty()),
            reason_if_true: self.reason_if_true.filter(|r| !r.trim().is_empty()),
            reason_if_false: self.reason_if_false.filter(|r| !r.trim().is_empty()),
            blank_false_reasons: false,
            max_copy_mib: self.max_input_mib,
            encoding: self.encoding,
            sheet: self.sheet,
            header_row: self.header_row,
            rules: self.rules,
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
    fn into_connect(self) -> Result<Connect, ConfigError> {
        Ok(Connect {
            target: self.target()?,
            retry: self.retry(),
            kind: self.kind,
            rate: self.rate,
            burst: self.burst,
            timeout: self.timeout,
            ca_cert: self.ca_cert,
        })
    }

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
            long_pause: Duration::from_millis(self.long_pause_ms),
            ..RetryPolicy::default()
        }
    }
}

impl RunArgs {
    fn into_config(
        self,
        mode: Mode,
        output: OutputOptions,
        resume: ResumeCommand,
    ) -> Result<RunConfig, ConfigError> {
        Ok(RunConfig {
            mode,
            connect: self.connect.into_connect()?,
            input: self.input.into_options(),
            options: self.options,
            apply: ApplyOptions::default(),
            plan: PlanOptions::default(),
            output,
            resume,
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
            connect: self.connect.into_connect()?,
            output,
            force: self.force,
            format,
            excel: self.excel,
            filter: ExportFilter {
                client_type: text(self.client_type),
                connection: text(self.connection),
                only: self.only,
            },
            rules: self.rules,
            log,
        })
    }
}

impl UploadArgs {
    fn into_config(self, log: OutputOptions) -> Result<UploadConfig, ConfigError> {
        if !accepted_file(&self.file) {
            return Err(UploadOptionError::FileType {
                file: self.file.display().to_string(),
            }
            .into());
        }
        let controls = self
            .control
            .iter()
            .map(|c| ControlRef::parse(c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(UploadConfig {
            owner: Owner::parse(&self.owner)?,
            name: check_name(self.name)?,
            file: self.file,
            workspace: self.workspace,
            controls,
            renewal: self.renewal,
            connect: self.connect.into_connect()?,
            log,
        })
    }
}

impl PlanArgs {
    fn into_config(
        self,
        output: OutputOptions,
        resume: ResumeCommand,
    ) -> Result<RunConfig, ConfigError> {
        let mut config = self.run.into_config(Mode::Plan, output, resume)?;
        config.input.blank_false_reasons = true;
        config.plan = self.plan;
        Ok(config)
    }
}

impl ApplyArgs {
    fn into_config(
        self,
        output: OutputOptions,
        resume: ResumeCommand,
    ) -> Result<RunConfig, ConfigError> {
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
        let mut config = self.run.into_config(Mode::Apply, output, resume)?;
        // apply reads the state first, as plan does: a blank reason is judged against it.
        config.input.blank_false_reasons = true;
        config.apply = self.apply;
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
            latency_spread: Duration::from_millis(self.latency_spread),
            drop_rate: self.drop_rate,
            slow_rate: self.slow_rate,
            slow_delay: Duration::from_millis(self.slow_ms),
            max_in_flight: self.max_in_flight.map(std::num::NonZeroU64::get),
            queue_delay: Duration::from_millis(self.queue_ms),
            seed: self.seed,
            ..SimulatorConfig::default()
        })
    }
}

/// The parsed command line, whole, as clap holds it: each argument's values as given and
/// where they came from (the command line, the environment, a default).
#[derive(Debug, Clone, Default)]
struct KeptMatches(ArgMatches);

impl FromArgMatches for KeptMatches {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self(matches.clone()))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0 = matches.clone();
        Ok(())
    }
}

impl Args for KeptMatches {
    fn augment_args(command: clap::Command) -> clap::Command {
        command
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        command
    }
}

/// Arguments the resume command never carries, and why. Every other argument the user set
/// is carried as given (a test walks them all), so that a new option needs nothing here.
const NOT_CARRIED: &[&str] = &[
    // clap's own: they print and exit before any run.
    "help",
    "version",
    // Replaced: the resume command ends with `--resume-from` and this run's report.
    "resume_from",
];

/// Per-run files besides the report: the resumed run writes its own, `.resumed` inserted in
/// the name. The undo file is not one of them: resumed runs add to it, so that one file
/// rolls everything back.
const PER_RUN_FILES: &[&str] = &["summary_json", "evidence"];

/// The report: the resumed run's is named after the one this run wrote.
const REPORT: &str = "report";

/// The command that resumes a run of this command line: the program, the subcommand, and
/// every argument the user set on the command line or through the environment, with its
/// values as given, in the order of the definition.
fn resume_command(program: String, matches: &ArgMatches) -> ResumeCommand {
    let mut words = vec![ResumeWord::Kept(program)];
    let Some((name, matches)) = matches.subcommand() else {
        return ResumeCommand { words };
    };
    words.push(ResumeWord::Kept(name.to_owned()));
    // Built, so that the global options are among the subcommand's.
    let mut definition = Cli::command();
    definition.build();
    if let Some(command) = definition.find_subcommand(name) {
        for arg in command.get_arguments() {
            words.extend(carried(arg, matches));
        }
    }
    ResumeCommand { words }
}

/// How the resume command carries one argument: nothing when the user did not set it.
fn carried(arg: &clap::Arg, matches: &ArgMatches) -> Vec<ResumeWord> {
    let id = arg.get_id().as_str();
    let given = matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    );
    if !given || NOT_CARRIED.contains(&id) {
        return Vec::new();
    }
    let values = || {
        matches
            .get_raw(id)
            .into_iter()
            .flatten()
            .map(|value| value.to_string_lossy().into_owned())
    };
    let option = match (arg.get_long(), arg.get_short()) {
        (Some(long), _) => format!("--{long}"),
        (None, Some(short)) => format!("-{short}"),
        // A positional argument: its values, as given.
        (None, None) => return values().map(ResumeWord::Kept).collect(),
    };
    match arg.get_action() {
        ArgAction::Count => {
            let count = matches.get_count(id).into();
            match arg.get_short() {
                Some(short) => vec![ResumeWord::Kept(format!(
                    "-{}",
                    short.to_string().repeat(count)
                ))],
                None => vec![ResumeWord::Kept(option); count],
            }
        }
        action if !action.takes_values() => vec![ResumeWord::Kept(option)],
        // One word `--option=value`, so that a value starting with '-' is not read as an
        // option.
        _ => values()
            .map(|value| match id {
                REPORT => ResumeWord::Report {
                    option: option.clone(),
                },
                _ if PER_RUN_FILES.contains(&id) => ResumeWord::Renamed {
                    option: option.clone(),
                    path: value.into(),
                },
                _ => ResumeWord::Kept(format!("{option}={value}")),
            })
            .collect(),
    }
}

impl Cli {
    /// Parses the process's arguments. What clap refuses comes back as a value, help and
    /// version among it: [`Cli::refusal_console`] prints it, [`Cli::refusal_exit_code`]
    /// says how the process ends.
    pub fn parse_args() -> Result<Self, clap::Error> {
        <Self as Parser>::try_parse()
    }

    /// The console for what clap refused, before any `Cli` exists: JSON when the
    /// arguments ask for `--log-format json`, like every other line on standard error.
    pub fn refusal_console() -> Console {
        Console::new(asks_for_json(std::env::args_os()), false)
    }

    /// How a refused command line ends: help and version as a success, anything else as
    /// a usage error (as clap itself would exit).
    pub fn refusal_exit_code(refused: &clap::Error) -> u8 {
        if refused.use_stderr() {
            crate::exit::USAGE
        } else {
            crate::exit::SUCCESS
        }
    }

    /// The console this command line asks for.
    pub fn console(&self) -> Console {
        self.output_options().console()
    }

    fn output_options(&self) -> OutputOptions {
        OutputOptions {
            quiet: self.quiet,
            verbose: self.verbose,
            log_format: self.log_format,
            progress_interval: self.progress_interval,
        }
    }

    /// Checks every value and builds the command; `program` is how the tool was invoked,
    /// for the commands it prints.
    pub(crate) fn into_command(self, program: String) -> Result<Command, ConfigError> {
        let resume = || resume_command(program, &self.matches.0);
        let output = self.output_options();
        Ok(match self.command {
            Commands::Validate(input) => Command::Validate {
                // Offline, a `false` row without a reason cannot be judged: it is fine if
                // its identity stays unmarked, which plan and apply check.
                input: InputOptions {
                    blank_false_reasons: true,
                    ..input.into_options()
                },
                output,
            },
            Commands::Plan(args) => Command::Run(Box::new(args.into_config(output, resume())?)),
            Commands::Apply(args) => Command::Run(Box::new(args.into_config(output, resume())?)),
            Commands::Export(args) => Command::Export(Box::new(args.into_config(output)?)),
            Commands::UploadEvidence(args) => {
                Command::UploadEvidence(Box::new(args.into_config(output)?))
            }
            #[cfg(feature = "simulator")]
            Commands::Simulate(args) => Command::Simulate {
                config: args.into_config()?,
                output,
            },
            Commands::Completions { shell } => Command::Completions {
                shell,
                definition: Box::new(<Self as clap::CommandFactory>::command()),
            },
            Commands::Man { page, out } => Command::Man {
                definition: Box::new(<Self as clap::CommandFactory>::command()),
                page: page.and_then(|page| {
                    clap::ValueEnum::to_possible_value(&page)
                        .map(|value| value.get_name().to_owned())
                }),
                out,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{resumed_name, MaxFailures};
    use crate::engine::ConcurrencyMode;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_a_man_page_name() {
        let commands: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|command| command.get_name().to_owned())
            .collect();
        let pages: Vec<String> = <ManPage as clap::ValueEnum>::value_variants()
            .iter()
            .filter_map(clap::ValueEnum::to_possible_value)
            .map(|value| value.get_name().to_owned())
            .collect();
        let commands_and_rules = [commands, vec!["rules".to_owned()]].concat();
        assert_eq!(pages, commands_and_rules);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cli = Cli::try_parse_from(["drata-svcacct", "apply", "x.csv", "--simulate"]).unwrap();
        let Command::Run(config) = cli.into_command(String::new()).unwrap() else {
            panic!("not a run")
        };
        assert_eq!(config.connect.rate.per_minute(), Some(450.0));
        assert_eq!(config.connect.burst.get(), 1);
        assert_eq!(config.options.concurrency, ConcurrencyMode::Auto);
        assert_eq!(config.connect.retry.max_attempts, 5);
        assert_eq!(config.connect.timeout, Duration::from_secs(30));
        assert_eq!(config.options.max_failures, MaxFailures::Percent(50.0));
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
    fn the_resume_command_carries_every_option_that_was_given() {
        let cli = Cli::try_parse_from([
            "drata-svcacct",
            "-vv",
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
            "--undo",
            "undo.csv",
            "--ca-cert",
            "corp ca.pem",
            "--timeout",
            "30",
        ])
        .unwrap();
        let Command::Run(config) = cli.into_command("drata-svcacct".to_owned()).unwrap() else {
            panic!("not a run")
        };
        // The default --timeout, given, is carried; so is -vv given before the subcommand.
        assert_eq!(config.output.verbose, 2);
        assert_eq!(
            config.resume_command(std::path::Path::new("new report.csv")),
            "drata-svcacct apply 'my file.csv' --reason=-x --base-url=http://127.0.0.1:9/public \
             --rate=8/s --timeout=30 '--ca-cert=corp ca.pem' '--report=new report.resumed.csv' \
             --overwrite-drift --summary-json=s.resumed.json --reconcile --resend --no-verify \
             --undo=undo.csv -vv \
             --resume-from 'new report.csv'"
        );
    }

    /// A value clap accepts for `arg`, given on purpose even where it is the default: what
    /// the user sets is carried, whatever its value.
    fn a_value(arg: &clap::Arg) -> String {
        if let Some(default) = arg.get_default_values().first() {
            return default.to_string_lossy().into_owned();
        }
        match arg.get_possible_values().first() {
            Some(value) => value.get_name().to_owned(),
            None => "1".to_owned(),
        }
    }

    /// The values of `id` as given, and where they came from.
    fn given(matches: &ArgMatches, id: &str) -> (Option<ValueSource>, Vec<String>, u8) {
        let values = matches
            .get_raw(id)
            .into_iter()
            .flatten()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        // Flags and counts have no values as given: their count is what they say.
        let count = match matches.try_get_one::<u8>(id) {
            Ok(Some(count)) => *count,
            _ => 0,
        };
        (matches.value_source(id), values, count)
    }

    /// Walks every argument of `apply`: set alone on a command line, it is in the resume
    /// command with the same values (renamed where the resumed run writes its own file),
    /// unless it is on the commented list of those never carried.
    #[test]
    fn every_argument_of_apply_is_carried_into_the_resume_command_or_listed_as_not() {
        let mut definition = Cli::command();
        definition.build();
        let apply = definition.find_subcommand("apply").unwrap();
        let ids: Vec<&str> = apply.get_arguments().map(|a| a.get_id().as_str()).collect();
        for listed in NOT_CARRIED.iter().chain(PER_RUN_FILES).chain([&REPORT]) {
            assert!(ids.contains(listed), "{listed} is not an argument of apply");
        }
        let report = std::path::Path::new("this run.csv");
        let mut walked = 0;
        for arg in apply.get_arguments() {
            let id = arg.get_id().as_str();
            if NOT_CARRIED.contains(&id) {
                continue;
            }
            let mut line = vec!["drata-svcacct".to_owned(), "apply".to_owned()];
            if !arg.is_positional() {
                line.push("in.csv".to_owned());
            }
            match (arg.get_long(), arg.get_action()) {
                (None, _) => line.push(a_value(arg)),
                (Some(long), ArgAction::Count) => line.extend(vec![format!("--{long}"); 2]),
                (Some(long), action) if !action.takes_values() => line.push(format!("--{long}")),
                (Some(long), _) => line.extend([format!("--{long}"), a_value(arg)]),
            }
            let matches = Cli::command().try_get_matches_from(&line).unwrap();
            let first = given(matches.subcommand_matches("apply").unwrap(), id);
            assert_eq!(first.0, Some(ValueSource::CommandLine), "{id}: {line:?}");
            let words = resume_command("drata-svcacct".to_owned(), &matches).words(report);
            let resumed = Cli::command()
                .try_get_matches_from(&words)
                .unwrap_or_else(|e| panic!("{id}: {words:?} does not parse: {e}"));
            let again = given(resumed.subcommand_matches("apply").unwrap(), id);
            let expected_values = match id {
                REPORT => vec![resumed_name(report).display().to_string()],
                _ if PER_RUN_FILES.contains(&id) => first
                    .1
                    .iter()
                    .map(|v| resumed_name(v.as_ref()).display().to_string())
                    .collect(),
                _ => first.1.clone(),
            };
            assert_eq!(
                again,
                (first.0, expected_values, first.2),
                "{id} is not carried as given: {line:?} resumes as {words:?}"
            );
            walked += 1;
        }
        assert!(walked > 30, "only {walked} arguments walked");
    }

    #[test]
    fn the_resume_command_resumes_from_this_runs_report_and_carries_nothing_unset() {
        let matches = Cli::command()
            .try_get_matches_from(["drata-svcacct", "apply", "in.csv", "--resume-from", "a.csv"])
            .unwrap();
        let report = std::path::Path::new("b.csv");
        assert_eq!(
            resume_command("drata-svcacct".to_owned(), &matches).words(report),
            ["drata-svcacct", "apply", "in.csv", "--resume-from", "b.csv"]
        );
    }
}
