//! The console: what a person reads on standard output and standard error is written
//! here and nowhere else (standard output through the [`Stdout`] writer it hands out), so
//! that `--log-format json`, `-q` and a closed pipe are decided once. Log events reach standard error through the `tracing` subscriber set up here too.

use std::fmt::Display;
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, SystemTime};

use super::plan::{print_plan, write_changes_json, PlanView};
use super::progress::ProgressMode;
use super::stdout::Stdout;
use super::summary::Summary;
use crate::exit;

/// How the command line asked to be spoken to: log lines as JSON, and `-q`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Console {
    json: bool,
    quiet: bool,
}

/// An input's invalid rows, as shown before a run.
pub(crate) struct InvalidRows<'a> {
    pub input: &'a str,
    pub invalid_rows: u64,
    pub rows: u64,
    /// Nothing will be sent because of them (no `--skip-invalid`).
    pub blocked: bool,
    /// The first problems found, in line order.
    pub first: Vec<RowProblem<'a>>,
    /// Every problem found, the first ones included.
    pub problem_count: u64,
}

/// One problem of one row.
pub(crate) struct RowProblem<'a> {
    pub line: u64,
    pub column: &'a str,
    pub message: &'a str,
}

impl Console {
    /// `json`: every line on standard error is one JSON object; `quiet`: only what needs
    /// attention.
    pub fn new(json: bool, quiet: bool) -> Self {
        Self { json, quiet }
    }

    /// Standard output, for what was asked for there: CSV, JSON, the problem list,
    /// generated scripts and pages.
    pub(crate) fn stdout(&self) -> Stdout {
        Stdout
    }

    /// Sends log events to standard error: text (colored only on a terminal without
    /// `NO_COLOR`) or JSON, at the level `-q` and `-v` ask for.
    pub(crate) fn init_logging(&self, verbose: u8) {
        let level = match (self.quiet, verbose) {
            (true, _) => "warn",
            (false, 0) => "info",
            (false, 1) => "debug",
            (false, _) => "trace",
        };
        // Our crate at the chosen level; dependencies stay at warn unless -vv.
        let filter = if verbose >= 2 {
            level.to_owned()
        } else {
            format!("warn,drata_svcacct={level}")
        };
        let builder = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(io::stderr)
            .with_target(false);
        let _ = if self.json {
            builder.json().flatten_event(true).try_init()
        } else {
            let color = io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(color).try_init()
        };
    }

    /// Progress: nothing under `-q`, a bar on a terminal that takes text, else a log line
    /// `every` so often.
    pub(crate) fn progress_mode(&self, every: Duration) -> ProgressMode {
        if self.quiet {
            ProgressMode::Quiet
        } else if !self.json && io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Log { every }
        }
    }

    /// The plan on standard output: the JSON document, or the diff (which `-q` silences;
    /// the document was asked for by name).
    pub(crate) fn plan(&self, as_json: bool, view: &PlanView<'_>) {
        if self.quiet && !as_json {
            return;
        }
        let mut out = self.stdout();
        let written = if as_json {
            write_changes_json(&mut out, view)
        } else {
            print_plan(&mut out, view)
        };
        if let Err(e) = written.and_then(|()| out.flush()) {
            tracing::warn!("cannot write the plan to standard output: {e}");
        }
    }

    /// An input's invalid rows: one event each under JSON, so that a log pipeline can
    /// count and route them; else a count and the first problems, shown even under `-q`.
    pub(crate) fn invalid_rows(&self, invalid: &InvalidRows<'_>) {
        if self.json {
            tracing::warn!(
                input = invalid.input,
                invalid_rows = invalid.invalid_rows,
                rows = invalid.rows,
                blocked = invalid.blocked,
                "invalid rows"
            );
            for problem in &invalid.first {
                tracing::warn!(
                    line = problem.line,
                    column = problem.column,
                    problem = problem.message,
                    "invalid row"
                );
            }
            return;
        }
        let mut text = format!(
            "{}: {} of {} rows are invalid{}:\n",
            invalid.input,
            invalid.invalid_rows,
            invalid.rows,
            if invalid.blocked {
                "; nothing will be sent (fix them or pass --skip-invalid)"
            } else {
                " and will be skipped"
            }
        );
        for problem in &invalid.first {
            text.push_str(&format!(
                "  line {}, column {}: {}\n",
                problem.line, problem.column, problem.message
            ));
        }
        let shown = invalid.first.len() as u64;
        if invalid.problem_count > shown {
            text.push_str(&format!(
                "  … and {} more problems\n",
                invalid.problem_count - shown
            ));
        }
        to_stderr(&text);
    }

    /// A run's summary on standard error: one JSON event or several lines; under `-q`
    /// only when the run needs attention.
    pub(crate) fn summary(&self, summary: &Summary) {
        if self.quiet && summary.exit_code == exit::SUCCESS {
            return;
        }
        if !self.json {
            to_stderr(&summary.to_text());
            return;
        }
        // One JSON object on one line, like every other event.
        match serde_json::to_string(&summary.as_event()) {
            Ok(json) => to_stderr(&format!("{json}\n")),
            Err(e) => tracing::error!("cannot encode the summary: {e}"),
        }
    }

    /// The error that stopped a command, on standard error.
    pub fn error(&self, error: &dyn Display) {
        to_stderr(&self.error_line(&error.to_string(), None));
    }

    /// What clap said of the command line: help and version on standard output as clap
    /// prints them, a usage error on standard error (one JSON object under JSON, its kind
    /// as the message and clap's text as the detail).
    pub fn usage(&self, refused: &clap::Error) {
        if self.json && refused.use_stderr() {
            let detail = refused.to_string();
            to_stderr(&self.error_line(&refused.kind().to_string(), Some(detail.trim())));
        } else {
            // A closed standard output or error leaves nobody to tell.
            let _ = refused.print();
        }
    }

    /// An error as one line: `drata-svcacct: error: …`, or a JSON object shaped like
    /// every log event.
    fn error_line(&self, message: &str, detail: Option<&str>) -> String {
        if !self.json {
            return format!("drata-svcacct: error: {message}\n");
        }
        let mut event = serde_json::json!({
            "timestamp": humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
            "level": "ERROR",
            "message": message,
        });
        if let (Some(fields), Some(detail)) = (event.as_object_mut(), detail) {
            fields.insert("detail".to_owned(), detail.into());
        }
        format!("{event}\n")
    }
}

/// Text for a person on standard error. A closed standard error leaves nobody to tell,
/// so its failure is not one more thing to report.
fn to_stderr(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> serde_json::Value {
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "{line}"
        );
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn an_error_is_one_line_of_text_or_one_json_object() {
        let text = Console::new(false, false).error_line("no such file", None);
        assert_eq!(text, "drata-svcacct: error: no such file\n");
        let json = event(&Console::new(true, true).error_line("no such file", Some("at x")));
        assert_eq!(json["level"], "ERROR");
        assert_eq!(json["message"], "no such file");
        assert_eq!(json["detail"], "at x");
        assert!(json["timestamp"].as_str().unwrap().ends_with('Z'));
        let plain = event(&Console::new(true, false).error_line("m", None));
        assert!(plain.get("detail").is_none(), "{plain}");
    }

    #[test]
    fn quiet_and_json_decide_the_progress() {
        let every = Duration::from_secs(7);
        assert_eq!(
            Console::new(false, true).progress_mode(every),
            ProgressMode::Quiet
        );
        assert_eq!(
            Console::new(true, true).progress_mode(every),
            ProgressMode::Quiet
        );
        // Under JSON a bar would break the one-object-per-line promise, terminal or not.
        assert_eq!(
            Console::new(true, false).progress_mode(every),
            ProgressMode::Log { every }
        );
    }
}
