//! The checked configuration of a run. The CLI is parsed into these types before any
//! I/O; the core never sees clap types.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;
use thiserror::Error;

use crate::retry::RetryPolicy;

#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    #[error("invalid rate {0:?}: expected N/s, N/min, N/h (N at least 1) or unlimited")]
    Rate(String),
    #[error("invalid --max-failures {0:?}: expected a count, a percentage like 10%, or none")]
    MaxFailures(String),
    #[error("invalid base URL {0:?}: {1}")]
    BaseUrl(String, &'static str),
    #[error("invalid delimiter {0:?}: expected one ASCII character (or \\t)")]
    Delimiter(String),
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("{0} only apply to apply (plan always compares with the current state)")]
    ApplyOnly(&'static str),
    #[error("{0} must be at most {1}")]
    TooMany(&'static str, u64),
    #[error("{0} must be a share from 0 to 1")]
    Share(&'static str),
}

/// A request rate: `count` requests every `per`, or no limit at all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    Limited { count: NonZeroU32, per: Duration },
    Unlimited,
}

impl Rate {
    /// Requests per minute, for display; `None` when unlimited.
    pub fn per_minute(&self) -> Option<f64> {
        match self {
            Rate::Limited { count, per } => Some(count.get() as f64 * 60.0 / per.as_secs_f64()),
            Rate::Unlimited => None,
        }
    }

    /// The time between two requests at this rate.
    pub fn interval(&self) -> Option<Duration> {
        match self {
            Rate::Limited { count, per } => Some(*per / count.get()),
            Rate::Unlimited => None,
        }
    }
}

impl FromStr for Rate {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || ConfigError::Rate(text.to_owned());
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("unlimited") {
            return Ok(Rate::Unlimited);
        }
        let (count, unit) = trimmed.split_once('/').ok_or_else(err)?;
        let count: u32 = count.trim().parse().map_err(|_| err())?;
        let count = NonZeroU32::new(count).ok_or_else(err)?;
        let per = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(err()),
        };
        Ok(Rate::Limited { count, per })
    }
}

/// When to give up on a run because too many rows failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxFailures {
    Count(u64),
    /// A share in percent; it applies once [`MaxFailures::PERCENT_MIN_FINISHED`] rows finished.
    Percent(f64),
    Disabled,
}

impl MaxFailures {
    pub const PERCENT_MIN_FINISHED: u64 = 20;

    /// True when `failed` rows out of `finished` is past the threshold.
    pub fn exceeded(&self, failed: u64, finished: u64) -> bool {
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

/// Drata regions and their public API base URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Us,
    Eu,
    Apac,
}

impl Region {
    pub fn base_url(self) -> &'static str {
        match self {
            Region::Us => "https://public-api.drata.com/public",
            Region::Eu => "https://public-api.eu.drata.com/public",
            Region::Apac => "https://public-api.apac.drata.com/public",
        }
    }
}

/// Which kind of identity the run addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    Infrastructure,
    VersionControl,
}

impl IdentityKind {
    pub fn path_segment(self) -> &'static str {
        match self {
            IdentityKind::Infrastructure => "infrastructure",
            IdentityKind::VersionControl => "version-control",
        }
    }
}

/// Parses and checks a base URL: `https://` anywhere, `http://` only to loopback.
pub fn parse_base_url(text: &str) -> Result<Url, ConfigError> {
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

/// True for 127.0.0.0/8, ::1 and `localhost`.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parses `--delimiter`: one ASCII character, or `\t` / `tab`.
pub fn parse_delimiter(text: &str) -> Result<u8, ConfigError> {
    match text {
        "\\t" | "tab" | "\t" => Ok(b'\t'),
        _ if text.len() == 1 && text.is_ascii() && !matches!(text, "\"" | "\n" | "\r") => {
            Ok(text.as_bytes()[0])
        }
        _ => Err(ConfigError::Delimiter(text.to_owned())),
    }
}

/// Where the input comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSource {
    Stdin,
    File(PathBuf),
}

impl InputSource {
    pub fn from_arg(arg: &str) -> Self {
        if arg == "-" {
            InputSource::Stdin
        } else {
            InputSource::File(PathBuf::from(arg))
        }
    }

    /// Used to name the default report: the file stem, or `stdin`.
    pub fn stem(&self) -> String {
        match self {
            InputSource::Stdin => "stdin".to_owned(),
            InputSource::File(path) => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "input".to_owned()),
        }
    }

    pub fn display(&self) -> String {
        match self {
            InputSource::Stdin => "-".to_owned(),
            InputSource::File(path) => path.display().to_string(),
        }
    }
}

/// How the input is read and validated.
#[derive(Debug, Clone)]
pub struct InputOptions {
    pub source: InputSource,
    pub delimiter: u8,
    pub id_column: Option<String>,
    pub flag_column: Option<String>,
    pub reason_column: Option<String>,
    pub default_reason: Option<String>,
}

impl InputOptions {
    /// Default column names, no default reason.
    pub fn new(source: InputSource, delimiter: u8) -> Self {
        Self {
            source,
            delimiter,
            id_column: None,
            flag_column: None,
            reason_column: None,
            default_reason: None,
        }
    }
}

/// Where the API key comes from; read only when a run needs it.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// The value of `DRATA_API_KEY`, already wrapped so it cannot print, or why not.
    Env(Result<crate::secret::ApiKey, String>),
    File(PathBuf),
}

/// Which server a run talks to.
#[derive(Debug, Clone)]
pub enum Target {
    Remote {
        base_url: Url,
        key: KeySource,
    },
    /// An in-process simulator on an ephemeral loopback port.
    Simulated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    Plan,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Apply => "apply",
            Mode::Plan => "plan",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Output controls shared by every subcommand.
#[derive(Debug, Clone, Copy)]
pub struct OutputOptions {
    pub quiet: bool,
    pub verbose: u8,
    pub log_format: LogFormat,
    /// Seconds between progress log lines when stderr is not a terminal.
    pub progress_interval: Duration,
}

/// Everything `apply` and `plan` need, checked.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub mode: Mode,
    pub input: InputOptions,
    pub target: Target,
    pub kind: IdentityKind,
    pub report: Option<PathBuf>,
    pub force: bool,
    pub rate: Rate,
    pub burst: NonZeroU32,
    pub concurrency: usize,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub max_failures: MaxFailures,
    pub skip_invalid: bool,
    /// Fetch the current state first (always true for plan).
    pub reconcile: bool,
    pub max_changes: Option<u64>,
    pub undo: Option<PathBuf>,
    pub resume_from: Option<PathBuf>,
    pub summary_json: Option<PathBuf>,
    pub evidence: Option<PathBuf>,
    pub output: OutputOptions,
    /// The command line as typed, used to print the command that resumes a run.
    pub argv: Vec<String>,
}

/// The simulator's settings.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    pub listen: std::net::SocketAddr,
    pub identities: u64,
    pub token: String,
    pub rate_limit: Rate,
    /// How many requests the leaky bucket holds before it answers 429.
    pub bucket_capacity: u32,
    pub error_rate: f64,
    pub latency: Duration,
    /// Share of requests whose connection is closed without an answer.
    pub drop_rate: f64,
    /// Share of requests answered only after `slow_delay`.
    pub slow_rate: f64,
    pub slow_delay: Duration,
    pub seed: u64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            identities: 1000,
            token: "sim-token".to_owned(),
            rate_limit: Rate::Limited {
                count: NonZeroU32::new(500).unwrap_or(NonZeroU32::MIN),
                per: Duration::from_secs(60),
            },
            bucket_capacity: 5,
            error_rate: 0.0,
            latency: Duration::ZERO,
            drop_rate: 0.0,
            slow_rate: 0.0,
            slow_delay: Duration::from_secs(35),
            seed: 1,
        }
    }
}

/// A parsed, checked command.
#[derive(Debug, Clone)]
pub enum Command {
    Validate {
        input: InputOptions,
        output: OutputOptions,
    },
    Run(Box<RunConfig>),
    Simulate {
        config: SimulatorConfig,
        output: OutputOptions,
    },
    Completions(clap_complete::Shell),
    Man,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!("450/min".parse::<Rate>().unwrap().per_minute(), Some(450.0));
        assert_eq!("8/s".parse::<Rate>().unwrap().per_minute(), Some(480.0));
        assert_eq!("60/h".parse::<Rate>().unwrap().per_minute(), Some(1.0));
        assert_eq!("Unlimited".parse::<Rate>().unwrap(), Rate::Unlimited);
        for bad in ["0/s", "abc", "5", "5/day", "-1/s", ""] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

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
}
