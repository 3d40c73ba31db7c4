//! One builder for every run of the binary a test makes:
//!
//! ```ignore
//! let sim = simulator(|_| {});
//! let done = Apply::on(&sim).input("id,flag,reason\n1,true,a\n").args(["--reconcile"]).run();
//! assert_eq!(done.code, 0, "{}", done.stderr);
//! assert_eq!(done.rows[0]["outcome"], "updated");
//! ```
//!
//! `Apply`, `Plan` and `Export` run `on` the simulator, a scripted server, the TLS server or
//! any base URL, with that target's key; `offline()` runs with no target (usage errors,
//! `--simulate`), and `Validate::offline()` needs none. A run happens in a fresh directory
//! unless `within` names one; `apply` and `plan` write `report.csv` unless the arguments
//! name a report, and the finished run carries the parsed rows.

use std::collections::HashMap;
use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::{command, feed, finish, read_report, RunningSimulator, TestServer, TlsServer, Workdir};
use super::{Run, SIM_TOKEN};

/// Where a run connects: a base URL, the key it presents, and options a test against it
/// wants unless it says otherwise.
pub struct Endpoint {
    url: String,
    key: String,
    defaults: &'static [&'static str],
}

/// The key the scripted and TLS servers expect (any key does on loopback).
pub const TEST_KEY: &str = "test-key";

impl Endpoint {
    /// Any base URL, with the test key and fast retries.
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key: TEST_KEY.to_owned(),
            defaults: &["--retry-base-ms", "10"],
        }
    }
}

impl From<&RunningSimulator> for Endpoint {
    /// The simulator with its token, no client-side rate limit and fast retries.
    fn from(sim: &RunningSimulator) -> Self {
        Self {
            url: sim.base_url(),
            key: SIM_TOKEN.to_owned(),
            defaults: &["--rate", "unlimited", "--retry-base-ms", "10"],
        }
    }
}

impl From<&TestServer> for Endpoint {
    fn from(server: &TestServer) -> Self {
        Self::url(server.url.clone())
    }
}

impl From<&TlsServer> for Endpoint {
    /// The TLS server by the name its certificates are usually made for.
    fn from(server: &TlsServer) -> Self {
        Self::url(format!("https://localhost:{}/public", server.port))
    }
}

impl From<&str> for Endpoint {
    fn from(url: &str) -> Self {
        Self::url(url)
    }
}

impl From<&String> for Endpoint {
    fn from(url: &String) -> Self {
        Self::url(url.as_str())
    }
}

macro_rules! subcommand {
    ($(#[$doc:meta])* $name:ident, $word:literal) => {
        $(#[$doc])*
        pub struct $name;

        impl $name {
            /// Against `target`, with its key.
            // Made for every subcommand by this one macro; `Validate::on` has no caller (validate
            // needs no target).
            #[allow(dead_code)]
            pub fn on<'w>(target: impl Into<Endpoint>) -> Invocation<'w> {
                Invocation::new([$word], Some(target.into()))
            }

            /// With no target and no key.
            // `Export::offline` has no caller (an export needs a target); see `on`.
            #[allow(dead_code)]
            pub fn offline<'w>() -> Invocation<'w> {
                Invocation::new([$word], None)
            }
        }
    };
}

subcommand!(
    /// `drata-svcacct apply`.
    Apply,
    "apply"
);
subcommand!(
    /// `drata-svcacct plan`.
    Plan,
    "plan"
);
subcommand!(
    /// `drata-svcacct export`.
    Export,
    "export"
);
subcommand!(
    /// `drata-svcacct validate`.
    Validate,
    "validate"
);

/// The directory a run happens in: its own, or one the test keeps for several runs.
pub enum Work<'w> {
    Owned(Workdir),
    Borrowed(&'w Workdir),
}

impl Deref for Work<'_> {
    type Target = Workdir;

    fn deref(&self) -> &Workdir {
        match self {
            Work::Owned(work) => work,
            Work::Borrowed(work) => work,
        }
    }
}

/// Whether `apply`/`plan` get a report the test reads back.
enum Report {
    Default,
    Named(String),
    Omitted,
}

/// A run of the binary being put together; see the module's example.
pub struct Invocation<'w> {
    words: Vec<String>,
    endpoint: Option<Endpoint>,
    work: Option<&'w Workdir>,
    input: Option<String>,
    files: Vec<(String, Vec<u8>)>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    key: Option<String>,
    stdin: Option<String>,
    report: Report,
}

impl<'w> Invocation<'w> {
    /// `words` first on the command line (the subcommand, or a whole command line such as
    /// a printed resume command).
    pub fn new<S: AsRef<str>>(
        words: impl IntoIterator<Item = S>,
        endpoint: Option<Endpoint>,
    ) -> Self {
        Self {
            words: words.into_iter().map(|w| w.as_ref().to_owned()).collect(),
            key: endpoint.as_ref().map(|e| e.key.clone()),
            endpoint,
            work: None,
            input: None,
            files: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            report: Report::Default,
        }
    }

    /// Runs in `work` (kept by the test) instead of a fresh directory.
    pub fn within(mut self, work: &'w Workdir) -> Self {
        self.work = Some(work);
        self
    }

    /// Writes `contents` to `input.csv` and reads it as the input.
    pub fn input(self, contents: impl AsRef<[u8]>) -> Self {
        self.with_file("input.csv", contents).file("input.csv")
    }

    /// Reads the input from `path` (relative to the directory), written by the test.
    pub fn file(mut self, path: &str) -> Self {
        self.input = Some(path.to_owned());
        self
    }

    /// Reads the input from standard input, fed `text`.
    pub fn stdin(mut self, text: impl Into<String>) -> Self {
        self.stdin = Some(text.into());
        self.file("-")
    }

    /// Writes another file into the directory before the run.
    pub fn with_file(mut self, name: &str, contents: impl AsRef<[u8]>) -> Self {
        self.files
            .push((name.to_owned(), contents.as_ref().to_vec()));
        self
    }

    /// More arguments, after the input.
    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// An environment variable for the run.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The API key the run presents, instead of the target's.
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    /// No API key in the environment at all.
    pub fn no_key(mut self) -> Self {
        self.key = None;
        self
    }

    /// The report goes to `name` (read back into the finished run's rows).
    pub fn report(mut self, name: &str) -> Self {
        self.report = Report::Named(name.to_owned());
        self
    }

    /// No `--report` option: the binary names the report itself.
    pub fn no_report(mut self) -> Self {
        self.report = Report::Omitted;
        self
    }

    /// Adds `--summary-json summary.json` (read by `Finished::summary`).
    pub fn summary(self) -> Self {
        self.args(["--summary-json", "summary.json"])
    }

    fn has(&self, option: &str) -> bool {
        self.args.iter().any(|a| a == option)
    }

    /// The value after `option` among the arguments.
    fn value_of(args: &[String], option: &str) -> Option<String> {
        args.iter()
            .position(|a| a == option)
            .and_then(|i| args.get(i + 1).cloned())
    }

    /// The whole command line, in its order: words, input, arguments, then the target's
    /// options and a report where the arguments do not give them.
    fn argv(&self) -> Vec<String> {
        let mut argv = self.words.clone();
        argv.extend(self.input.clone());
        argv.extend(self.args.iter().cloned());
        if let Some(endpoint) = &self.endpoint {
            if !self.has("--base-url") {
                argv.extend(["--base-url".to_owned(), endpoint.url.clone()]);
            }
            for pair in endpoint.defaults.chunks(2) {
                if !self.has(pair[0]) {
                    argv.extend(pair.iter().map(|s| (*s).to_owned()));
                }
            }
        }
        let reports = matches!(
            self.words.first().map(String::as_str),
            Some("apply" | "plan")
        ) && self.words.len() == 1;
        if reports && !self.has("--report") {
            match &self.report {
                Report::Default => argv.extend(["--report".into(), "report.csv".into()]),
                Report::Named(name) => argv.extend(["--report".into(), name.clone()]),
                Report::Omitted => {}
            }
        }
        argv
    }

    /// The command, its directory and its arguments, ready to start.
    fn prepare(self) -> (Command, Work<'w>, Vec<String>) {
        let work = match self.work {
            Some(work) => Work::Borrowed(work),
            None => Work::Owned(Workdir::new()),
        };
        for (name, contents) in &self.files {
            work.write_bytes(name, contents);
        }
        let argv = self.argv();
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut command = command(work.dir.path(), &words);
        if let Some(key) = &self.key {
            command.env("DRATA_API_KEY", key);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        if self.stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        (command, work, argv)
    }

    /// Runs the binary to its end.
    pub fn run(self) -> Finished<'w> {
        let stdin = self.stdin.clone();
        let (mut command, work, argv) = self.prepare();
        let mut child = command.spawn().expect("spawn");
        if let Some(text) = stdin {
            feed(&mut child, &text);
        }
        Started { child, work, argv }.finish()
    }

    /// Starts the binary and returns at once, `adjust`ing the command first (limits, pipes).
    pub fn spawn_with(self, adjust: impl FnOnce(&mut Command)) -> Started<'w> {
        let (mut command, work, argv) = self.prepare();
        adjust(&mut command);
        let child = command.spawn().expect("spawn");
        Started { child, work, argv }
    }

    /// Starts the binary and returns at once.
    pub fn spawn(self) -> Started<'w> {
        self.spawn_with(|_| {})
    }
}

/// A run under way.
pub struct Started<'w> {
    pub child: Child,
    work: Work<'w>,
    argv: Vec<String>,
}

impl<'w> Started<'w> {
    /// Waits for the end, and reads the report.
    pub fn finish(self) -> Finished<'w> {
        let run = finish(self.child);
        let report = Invocation::value_of(&self.argv, "--report").map(|p| self.work.path(&p));
        let input = self.argv.get(1).map(|p| self.work.path(p));
        // Only a regular file this run could have written: not a link, device or FIFO a
        // test put in the way, nor the input named as the report.
        let written = |path: &PathBuf| {
            std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
                && Some(path) != input.as_ref()
        };
        let rows = match report {
            Some(path) if written(&path) => read_report(&path),
            _ => Vec::new(),
        };
        Finished {
            run,
            rows,
            work: self.work,
            argv: self.argv,
        }
    }
}

/// A finished run: exit code, stdout and stderr (through `Deref`), the report's rows (none
/// if no report was written), and the directory it ran in.
pub struct Finished<'w> {
    pub run: Run,
    pub rows: Vec<HashMap<String, String>>,
    pub work: Work<'w>,
    argv: Vec<String>,
}

impl Deref for Finished<'_> {
    type Target = Run;

    fn deref(&self) -> &Run {
        &self.run
    }
}

impl Finished<'_> {
    /// A path in the run's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work.path(name)
    }

    /// The `--summary-json` document: from standard output for `-`, else from its file.
    pub fn summary(&self) -> serde_json::Value {
        let path = Invocation::value_of(&self.argv, "--summary-json").expect("--summary-json");
        let text = if path == "-" {
            self.stdout.clone()
        } else {
            std::fs::read_to_string(self.path(&path))
                .unwrap_or_else(|e| panic!("no summary ({e}): {}", self.stderr))
        };
        serde_json::from_str(&text).expect("summary JSON")
    }
}
