//! The checked configuration of a command, built from the command line before any I/O.
//! The defaults live here, once: clap shows them and applies them.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;
use thiserror::Error;

use crate::drata::is_loopback_host;
use crate::engine::{ConcurrencyMode, RetryPolicy};
use crate::input::InputOptions;
use crate::model::{IdentityKind, Rate, RateError};
use crate::output::Console;
use crate::secret::{ApiKey, KeyError};
#[cfg(feature = "simulator")]
use crate::simulator::SimulatorConfig;
use crate::text::shell_quote;

mod upload;
pub(crate) use upload::UploadOptionError;
pub(crate) use upload::{
    accepted_file, check_name, ControlRef, Owner, Renewal, UploadConfig, MAX_NAME_CHARS,
    MAX_UPLOAD_BYTES,
};

/// `--rate`: 90% of Drata's 500 requests per minute per IP, so that retries and another
/// client on the same address still fit under the limit.
pub(crate) const DEFAULT_RATE: &str = "450/min";
/// `--concurrency`: as many requests in flight as the rate and the measured latency need
/// (`docs/concurrency.md`).
pub(crate) const DEFAULT_CONCURRENCY: &str = "auto";
/// `--timeout`, in seconds.
pub(crate) const DEFAULT_TIMEOUT: &str = "30";
/// `--max-failures`: a run where half the rows fail is better stopped and looked at.
pub(crate) const DEFAULT_MAX_FAILURES: &str = "50%";
/// `--progress-interval`, in seconds, off a terminal.
pub(crate) const DEFAULT_PROGRESS_INTERVAL: &str = "10";
/// Requests in flight at most; far beyond what any API allows per IP.
pub(crate) const MAX_CONCURRENCY: usize = 1024;
/// `--timeout` accepts this range of seconds: shorter cannot finish a TLS handshake,
/// longer is a hung connection.
pub(crate) const TIMEOUT_RANGE_SECS: std::ops::RangeInclusive<f64> = 0.1..=3600.0;

#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    #[error(transparent)]
    Rate(#[from] RateError),
    #[error("invalid --max-failures {0:?}: expected a count, a percentage like 10%, or none")]
    MaxFailures(String),
    #[error("invalid base URL {0:?}: {1}")]
    BaseUrl(String, &'static str),
    #[error("invalid delimiter {0:?}: expected one ASCII character (or \\t)")]
    Delimiter(String),
    #[error("{given} is not an option here: {instead}")]
    Guessed {
        given: &'static str,
        instead: &'static str,
    },
    #[error("{0} must be at most {1}")]
    TooMany(&'static str, u64),
    #[error("{0:?} is not a share from 0 to 1")]
    Share(String),
    #[error("invalid --concurrency {0:?}: expected auto or a number from 1 to {MAX_CONCURRENCY}")]
    Concurrency(String),
    #[error("invalid --timeout {0:?}: expected seconds from 0.1 to 3600")]
    Timeout(String),
    #[error("invalid --progress-interval {0:?}: expected seconds above 0")]
    Interval(String),
    #[error("--format xlsx writes a file: give it with -o PATH")]
    XlsxNeedsFile,
    #[error("--excel shapes a CSV (byte-order mark, CRLF); a workbook needs neither")]
    ExcelIsCsv,
    #[error(transparent)]
    Upload(#[from] UploadOptionError),
}

/// When to give up on a run because too many rows failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum MaxFailures {
    Count(u64),
    /// A share in percent; it applies once [`MaxFailures::PERCENT_MIN_FINISHED`] rows finished.
    Percent(f64),
    Disabled,
}

impl MaxFailures {
    /// A share of 2 failures in 3 rows says little: percentages wait for this many.
    pub(crate) const PERCENT_MIN_FINISHED: u64 = 20;

    /// True when `failed` rows out of `finished` is past the threshold.
    pub(crate) fn exceeded(&self, failed: u64, finished: u64) -> bool {
        match *self {
            MaxFailures::Count(limit) => failed > limit,
            MaxFailures::Percent(share) => {
                finished >= Self::PERCENT_MIN_FINISHED
                    && (failed as f64) * 100.0 > share * finished as f64
            }
            MaxFailures::Disabled => false,
        }
    }
}

impl FromStr for MaxFailures {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || ConfigError::MaxFailures(text.to_owned());
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("none") {
            return Ok(MaxFailures::Disabled);
        }
        if let Some(share) = trimmed.strip_suffix('%') {
            let share: f64 = share.trim().parse().map_err(|_| err())?;
            if !(0.0..=100.0).contains(&share) {
                return Err(err());
            }
            return Ok(MaxFailures::Percent(share));
        }
        trimmed.parse().map(MaxFailures::Count).map_err(|_| err())
    }
}

impl std::fmt::Display for MaxFailures {
    /// The form `--max-failures` takes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxFailures::Count(n) => write!(f, "{n}"),
            MaxFailures::Percent(share) => write!(f, "{share}%"),
            MaxFailures::Disabled => f.write_str("none"),
        }
    }
}

/// Drata regions and their public API base URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Region {
    #[default]
    Us,
    Eu,
    Apac,
}

impl Region {
    pub(crate) fn base_url(self) -> &'static str {
        match self {
            Region::Us => "https://public-api.drata.com/public",
            Region::Eu => "https://public-api.eu.drata.com/public",
            Region::Apac => "https://public-api.apac.drata.com/public",
        }
    }
}

/// Parses and checks a base URL: `https://` anywhere, `http://` only to loopback.
pub(crate) fn parse_base_url(text: &str) -> Result<Url, ConfigError> {
    // The URL is shown without credentials or query, which could hold a secret.
    let shown = match Url::parse(text.trim()) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => "(unparsable)".to_owned(),
    };
    let err = |why| ConfigError::BaseUrl(shown.clone(), why);
    let mut url = Url::parse(text.trim()).map_err(|_| err("not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err("credentials in the URL are not allowed"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err("a query or fragment is not allowed"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        "http" => return Err(err("plain http is only allowed to a loopback address")),
        _ => return Err(err("the scheme must be https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(err("no host"));
    }
    // Joining paths later needs exactly one trailing slash.
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{path}/"));
    Ok(url)
}

/// Parses `--delimiter`: one ASCII character, or `\t` / `tab`.
pub(crate) fn parse_delimiter(text: &str) -> Result<u8, ConfigError> {
    match text {
        "\\t" | "tab" | "\t" => Ok(b'\t'),
        _ if text.len() == 1 && text.is_ascii() && !matches!(text, "\"" | "\n" | "\r") => {
            Ok(text.as_bytes()[0])
        }
        _ => Err(ConfigError::Delimiter(text.to_owned())),
    }
}

/// Parses `--concurrency`: `auto`, or a number from 1 to [`MAX_CONCURRENCY`].
pub(crate) fn parse_concurrency(text: &str) -> Result<ConcurrencyMode, ConfigError> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("auto") {
        return Ok(ConcurrencyMode::Auto);
    }
    match trimmed.parse::<NonZeroUsize>() {
        Ok(n) if n.get() <= MAX_CONCURRENCY => Ok(ConcurrencyMode::Fixed(n)),
        _ => Err(ConfigError::Concurrency(text.to_owned())),
    }
}

/// Parses `--timeout`: seconds within [`TIMEOUT_RANGE_SECS`].
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, ConfigError> {
    match text.trim().parse::<f64>() {
        Ok(secs) if TIMEOUT_RANGE_SECS.contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        _ => Err(ConfigError::Timeout(text.to_owned())),
    }
}

/// Parses `--progress-interval`: seconds above zero, at most a day.
pub(crate) fn parse_interval(text: &str) -> Result<Duration, ConfigError> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => {
            Ok(Duration::from_secs_f64(secs.min(86_400.0)))
        }
        _ => Err(ConfigError::Interval(text.to_owned())),
    }
}

/// Parses a share from 0 to 1 (the simulator's fault rates).
#[cfg(feature = "simulator")]
pub(crate) fn parse_share(text: &str) -> Result<f64, ConfigError> {
    match text.trim().parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(ConfigError::Share(text.to_owned())),
    }
}

/// Where the API key comes from; read only when a run needs it.
#[derive(Debug)]
pub(crate) enum KeySource {
    /// `DRATA_API_KEY`, already wrapped so it cannot print, or why it cannot be used.
    Env(Result<ApiKey, KeyError>),
    File(PathBuf),
}

/// Which server a run talks to.
#[derive(Debug)]
pub(crate) enum Target {
    Remote {
        region: Region,
        /// Set by `--base-url` or `DRATA_BASE_URL`; otherwise the region's.
        base_url: Option<Url>,
        key: KeySource,
    },
    /// An in-process simulator on an ephemeral loopback port.
    #[cfg(feature = "simulator")]
    Simulated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Apply,
    Plan,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Apply => "apply",
            Mode::Plan => "plan",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Output controls shared by every subcommand.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutputOptions {
    pub quiet: bool,
    pub verbose: u8,
    pub log_format: LogFormat,
    /// Time between progress log lines when stderr is not a terminal.
    pub progress_interval: Duration,
}

impl OutputOptions {
    /// The console that writes what a person reads, as these options ask.
    pub(crate) fn console(&self) -> Console {
        Console::new(self.log_format == LogFormat::Json, self.quiet)
    }
}

// What `apply` and `plan` take besides the input and the connection, held as clap parses
// it: an option that needs no check against another is defined once, here, with its help,
// and the commands read it as it is.

/// What only `plan` does.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub(crate) struct PlanOptions {
    /// Print the plan as one JSON document on standard output (every change, with the
    /// state before and after), instead of the text diff
    #[arg(long)]
    pub json: bool,

    /// Exit 4 when rows would change (0 only when there is nothing to do), for scripts
    #[arg(long)]
    pub detailed_exitcode: bool,
}

/// What only `apply` does; `plan` holds the defaults.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ApplyOptions {
    /// Accepted for older scripts; changes nothing: apply always reads the current state
    /// first and sends only what differs, as plan shows
    #[arg(long)]
    pub reconcile: bool,

    /// Send every valid row, even those Drata already holds in the desired state
    #[arg(long)]
    pub resend: bool,

    /// Skip reading the state again after the run to check every row sent
    #[arg(long)]
    pub no_verify: bool,

    /// Write a CSV in the input format that restores the previous state
    #[arg(long, value_name = "PATH")]
    pub undo: Option<PathBuf>,

    /// A report of an earlier run of this input: rows it shows as done are skipped
    #[arg(long, value_name = "PATH")]
    pub resume_from: Option<PathBuf>,
}

/// What `apply` and `plan` both do.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunOptions {
    /// Where the per-row report goes [default: <input stem>.report.<UTC timestamp>.csv]
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,

    /// Allow replacing existing report, summary, undo and evidence files
    #[arg(long)]
    pub force: bool,

    /// Requests in flight at most: a number from 1 to 1024, or auto (enough for --rate at
    /// the measured latency, 4 to 64, lowered down to 1 on timeouts, 5xx and 429s and
    /// toward 4 when answers slow with the load)
    #[arg(long, short = 'j', visible_aliases = ["jobs", "parallel"], value_name = "N|auto",
          default_value = DEFAULT_CONCURRENCY, value_parser = parse_concurrency)]
    pub concurrency: ConcurrencyMode,

    /// Abort past this many failed rows: N, P% (applies once 20 rows finished) or none
    #[arg(long, value_name = "N|P%", default_value = DEFAULT_MAX_FAILURES)]
    pub max_failures: MaxFailures,

    /// Send the valid rows even if some rows are invalid
    #[arg(long)]
    pub skip_invalid: bool,

    /// Send edited rows even where Drata changed since the export (conflicts)
    #[arg(long)]
    pub overwrite_drift: bool,

    /// Refuse (exit 3, nothing sent) when more than N rows would be updated
    #[arg(long, value_name = "N")]
    pub max_changes: Option<u64>,

    /// Write a machine-readable summary of the run (JSON)
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,

    /// Write a record of the run for auditors: a workbook when PATH ends in .xlsx (sheets
    /// Summary, Changes, Report), Markdown otherwise (.md)
    #[arg(long, value_name = "PATH")]
    pub evidence: Option<PathBuf>,
}

/// How a command reaches Drata and at what pace: one group, built once from the command
/// line, for every command that talks to Drata (`plan`, `apply`, `export`).
#[derive(Debug)]
pub(crate) struct Connect {
    pub target: Target,
    pub kind: IdentityKind,
    pub rate: Rate,
    pub burst: NonZeroU32,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// `--ca-cert`: a PEM bundle of CAs trusted besides the system store.
    pub ca_cert: Option<PathBuf>,
}

impl Connect {
    /// True when the command talks to the in-process simulator of `--simulate`.
    pub(crate) fn is_simulated(&self) -> bool {
        match self.target {
            #[cfg(feature = "simulator")]
            Target::Simulated => true,
            Target::Remote { .. } => false,
        }
    }
}

/// Everything `apply` and `plan` need, checked.
#[derive(Debug)]
pub(crate) struct RunConfig {
    pub mode: Mode,
    pub input: InputOptions,
    pub connect: Connect,
    pub options: RunOptions,
    pub apply: ApplyOptions,
    pub plan: PlanOptions,
    pub output: OutputOptions,
    /// The command that resumes this run, less what only its end knows.
    pub resume: ResumeCommand,
}

/// What `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    Csv,
    Xlsx,
}

/// `--only`: which identities `export` keeps by their flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Only {
    /// Not marked as service accounts.
    Unmarked,
    /// Marked as service accounts.
    Marked,
}

/// Which identities `export` writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ExportFilter {
    /// A client type, compared ignoring case.
    pub client_type: Option<String>,
    /// A connection alias (ignoring case) or id.
    pub connection: Option<String>,
    pub only: Option<Only>,
}

/// Everything `export` needs, checked.
#[derive(Debug)]
pub(crate) struct ExportConfig {
    pub connect: Connect,
    /// `None`: standard output.
    pub output: Option<PathBuf>,
    pub force: bool,
    pub format: ExportFormat,
    /// UTF-8 with a BOM and CRLF (CSV only).
    pub excel: bool,
    pub filter: ExportFilter,
    /// `--rules`: the rules file whose decisions the `rule` column shows.
    pub rules: Option<PathBuf>,
    pub log: OutputOptions,
}

/// A parsed, checked command.
#[derive(Debug)]
pub(crate) enum Command {
    Validate {
        input: InputOptions,
        output: OutputOptions,
    },
    Run(Box<RunConfig>),
    Export(Box<ExportConfig>),
    UploadEvidence(Box<UploadConfig>),
    #[cfg(feature = "simulator")]
    Simulate {
        config: SimulatorConfig,
        output: OutputOptions,
    },
    /// The command line's own definition comes along: the layers below never name `cli`.
    Completions {
        shell: clap_complete::Shell,
        definition: Box<clap::Command>,
    },
    /// `page` names a subcommand (clap checked it); `out` is the directory to write into.
    Man {
        definition: Box<clap::Command>,
        page: Option<String>,
        out: Option<PathBuf>,
    },
}

/// The name of a per-run file for the run that resumes this one: `undo.csv` becomes
/// `undo.resumed.csv`, then `undo.resumed-2.csv`, and so on.
pub(crate) fn resumed_name(path: &Path) -> PathBuf {
    // Standard output stays standard output.
    if path.as_os_str() == "-" {
        return path.to_owned();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let next = match stem.rsplit_once(".resumed") {
        Some((base, "")) => format!("{base}.resumed-2"),
        Some((base, count)) => match count
            .strip_prefix('-')
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(|n| n.checked_add(1))
        {
            Some(n) => format!("{base}.resumed-{n}"),
            None => format!("{stem}.resumed"),
        },
        None => format!("{stem}.resumed"),
    };
    let name = match path.extension() {
        Some(extension) => format!("{next}.{}", extension.to_string_lossy()),
        None => next,
    };
    path.with_file_name(name)
}

/// One word of a resume command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResumeWord {
    /// As the user gave it.
    Kept(String),
    /// `OPTION=PATH` of a per-run file: the resumed run writes its own, `.resumed` inserted.
    Renamed { option: String, path: PathBuf },
    /// `OPTION=`: the report this run wrote, `.resumed` inserted (it may differ from the
    /// name asked for: a resumed run's next free name).
    Report { option: String },
}

/// The command that finishes a run: the program, the subcommand and every option the user
/// set (on the command line or through the environment), as given, then
/// `--resume-from REPORT`. Built by `cli` from the parsed command line, so that an option
/// is carried without being named here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResumeCommand {
    pub words: Vec<ResumeWord>,
}

impl ResumeCommand {
    /// The words of the command that resumes from `report`, unquoted.
    pub(crate) fn words(&self, report: &Path) -> Vec<String> {
        let mut words: Vec<String> = self
            .words
            .iter()
            .map(|word| match word {
                ResumeWord::Kept(word) => word.clone(),
                ResumeWord::Renamed { option, path } => {
                    format!("{option}={}", resumed_name(path).display())
                }
                ResumeWord::Report { option } => {
                    format!("{option}={}", resumed_name(report).display())
                }
            })
            .collect();
        words.extend(["--resume-from".to_owned(), report.display().to_string()]);
        words
    }
}

impl RunConfig {
    /// `--resend` (apply): send every valid row, even those Drata already holds.
    pub(crate) fn resend(&self) -> bool {
        self.mode == Mode::Apply && self.apply.resend
    }

    /// True when the run reads the state again after the run and checks every row sent
    /// (apply, unless `--no-verify`).
    pub(crate) fn verify(&self) -> bool {
        self.mode == Mode::Apply && !self.apply.no_verify
    }

    /// True when the run talks to the in-process simulator of `--simulate`.
    pub(crate) fn is_simulated(&self) -> bool {
        self.connect.is_simulated()
    }

    /// The command that finishes this run, as one shell line: the same options, with new
    /// names for the per-run files (report, summary, evidence), the same undo file
    /// (appended to), plus `--resume-from REPORT`.
    pub(crate) fn resume_command(&self, report: &Path) -> String {
        self.resume
            .words(report)
            .iter()
            .map(|word| shell_quote(word))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_failures_parse_and_apply() {
        let count: MaxFailures = "3".parse().unwrap();
        assert!(!count.exceeded(3, 3));
        assert!(count.exceeded(4, 4));
        let share: MaxFailures = "50%".parse().unwrap();
        assert!(
            !share.exceeded(19, 19),
            "percentages wait for 20 finished rows"
        );
        assert!(!share.exceeded(10, 20));
        assert!(share.exceeded(11, 20));
        assert!(!"none".parse::<MaxFailures>().unwrap().exceeded(1000, 1000));
        assert!("150%".parse::<MaxFailures>().is_err());
        assert!("x".parse::<MaxFailures>().is_err());
        for text in ["3", "50%", "12.5%", "none"] {
            assert_eq!(text.parse::<MaxFailures>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn base_urls_require_https_off_loopback() {
        assert_eq!(
            parse_base_url("https://example.com/public")
                .unwrap()
                .as_str(),
            "https://example.com/public/"
        );
        assert!(parse_base_url("http://127.0.0.1:8080/public").is_ok());
        assert!(parse_base_url("http://127.8.9.1/").is_ok());
        assert!(parse_base_url("http://[::1]:80/").is_ok());
        assert!(parse_base_url("http://localhost:9/").is_ok());
        assert!(parse_base_url("http://example.com/").is_err());
        assert!(parse_base_url("http://10.0.0.1/").is_err());
        assert!(parse_base_url("ftp://example.com/").is_err());
        assert!(parse_base_url("https://user:pw@example.com/").is_err());
        assert!(parse_base_url("not a url").is_err());
        let error = parse_base_url("http://user:s3cret@example.com/?token=s3cret").unwrap_err();
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }

    #[test]
    fn delimiters_parse() {
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert_eq!(parse_delimiter("\\t"), Ok(b'\t'));
        assert!(parse_delimiter(";;").is_err());
        assert!(parse_delimiter("\"").is_err());
        assert!(parse_delimiter("\n").is_err());
    }

    #[test]
    fn concurrency_is_auto_or_a_bounded_number() {
        assert_eq!(parse_concurrency("auto"), Ok(ConcurrencyMode::Auto));
        assert_eq!(parse_concurrency(" AUTO "), Ok(ConcurrencyMode::Auto));
        let eight = parse_concurrency("8").unwrap();
        assert_eq!(eight.to_string(), "8");
        assert!(parse_concurrency("1024").is_ok());
        for bad in ["0", "1025", "-1", "x", ""] {
            assert_eq!(
                parse_concurrency(bad),
                Err(ConfigError::Concurrency(bad.to_owned())),
                "{bad}"
            );
        }
        assert_eq!(
            parse_concurrency(DEFAULT_CONCURRENCY).map(|m| m.to_string()),
            Ok(DEFAULT_CONCURRENCY.to_owned())
        );
    }

    #[test]
    fn timeouts_have_one_range() {
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("0.1"), Ok(Duration::from_millis(100)));
        for bad in ["0", "0.0001", "1e300", "-1", "inf", "NaN", "x", "3601"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resumed_names_count_up() {
        let name = |p: &str| resumed_name(Path::new(p)).display().to_string();
        assert_eq!(name("out/undo.csv"), "out/undo.resumed.csv");
        assert_eq!(name("undo.resumed.csv"), "undo.resumed-2.csv");
        assert_eq!(name("undo.resumed-2.csv"), "undo.resumed-3.csv");
        assert_eq!(name("evidence"), "evidence.resumed");
    }
}
