//! The end-of-run summary: text on standard error, JSON for machines, and the command
//! that resumes an unfinished run.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::report::{Outcome, Tally};

/// The summary of one `apply` or `plan` run. Field names are the JSON schema.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub tool: &'static str,
    pub version: &'static str,
    pub run_id: String,
    pub command: &'static str,
    pub input: FileDigest,
    pub report: FileDigest,
    pub base_url: String,
    pub started_at: String,
    pub finished_at: String,
    pub elapsed_seconds: f64,
    pub rows: u64,
    pub counts: BTreeMap<&'static str, u64>,
    pub requests: u64,
    pub retries: u64,
    pub rate_limited: u64,
    /// How many times 429 storms halved the request rate.
    pub rate_reductions: u64,
    pub effective_rate_per_minute: f64,
    pub stopped: Option<String>,
    pub resume_command: Option<String>,
    pub exit_code: u8,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileDigest {
    pub path: String,
    pub sha256: Option<String>,
}

/// Every outcome with its count, zeros included, so the JSON schema is stable.
pub fn counts(tally: &Tally) -> BTreeMap<&'static str, u64> {
    Outcome::ALL
        .into_iter()
        .map(|o| (o.as_str(), tally.get(o)))
        .collect()
}

/// SHA-256 of a file, hex; `None` when it cannot be read.
pub fn sha256_file(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    sha256_reader(&mut file)
}

pub fn sha256_reader(reader: &mut impl Read) -> Option<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(_) => return None,
        }
    }
    Some(
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// Quotes an argument for a POSIX shell when it needs it.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The command line as typed, shell-quoted (it never holds the key).
pub fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| shell_quote(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Options the resumed run drops: it gets a report of its own, resumed from this one.
const DROPPED_FILES: [&str; 2] = ["--report", "--resume-from"];
/// Options whose file belongs to one run: the resumed run writes a sibling file.
const RENAMED_FILES: [&str; 3] = ["--summary-json", "--evidence", "--undo"];

/// The name of a per-run file for the run that resumes this one: `undo.csv` becomes
/// `undo.resumed.csv`, then `undo.resumed-2.csv`, and so on.
pub fn resumed_name(path: &str) -> String {
    let path = Path::new(path);
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
    path.with_file_name(name).display().to_string()
}

/// The command line that finishes a run: the same arguments, without `--report`, with
/// new names for the per-run files (`--summary-json`, `--evidence`, `--undo`), plus
/// `--resume-from REPORT`.
pub fn resume_command(argv: &[String], report: &Path) -> String {
    let mut kept = Vec::new();
    let mut args = argv.iter();
    while let Some(arg) = args.next() {
        let (option, inline) = match arg.split_once('=') {
            Some((option, value)) if option.starts_with("--") => (option, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        if DROPPED_FILES.contains(&option) {
            if inline.is_none() {
                args.next();
            }
            continue;
        }
        if RENAMED_FILES.contains(&option) {
            let value = inline.or_else(|| args.next().cloned()).unwrap_or_default();
            // One word, so that a name starting with '-' is not read as an option.
            kept.push(shell_quote(&format!("{option}={}", resumed_name(&value))));
            continue;
        }
        kept.push(shell_quote(arg));
    }
    kept.push("--resume-from".to_owned());
    kept.push(shell_quote(&report.display().to_string()));
    kept.join(" ")
}

impl Summary {
    /// The summary as a log event: `{"level":"INFO","message":"summary",...fields}`.
    pub fn as_event(&self) -> serde_json::Value {
        let mut event = serde_json::json!({
            "timestamp": self.finished_at,
            "level": "INFO",
            "message": "summary",
        });
        if let (Some(event), Ok(serde_json::Value::Object(fields))) =
            (event.as_object_mut(), serde_json::to_value(self))
        {
            event.extend(fields);
        }
        event
    }

    /// The human summary, several lines.
    pub fn to_text(&self) -> String {
        let counts: Vec<String> = self
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        let mut text = format!(
            "{} finished: {} rows in {:.1} s\n  {}\n  requests {}, retries {}, 429s {}, effective rate {:.0}/min\n  report: {}\n",
            self.command,
            self.rows,
            self.elapsed_seconds,
            if counts.is_empty() { "no rows".to_owned() } else { counts.join(", ") },
            self.requests,
            self.retries,
            self.rate_limited,
            self.effective_rate_per_minute,
            self.report.path,
        );
        if self.rate_reductions > 0 {
            text.push_str(&format!(
                "  the server's rate limit lowered the pace {} time(s): consider a lower --rate\n",
                self.rate_reductions
            ));
        }
        if let Some(why) = &self.stopped {
            text.push_str(&format!("  stopped: {why}\n"));
        }
        if let Some(command) = &self.resume_command {
            text.push_str(&format!(
                "  to finish the remaining rows, run:\n    {command}\n"
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_command_replaces_report_options() {
        let argv: Vec<String> = [
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
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            resume_command(&argv, Path::new("new report.csv")),
            "drata-svcacct apply 'my file.csv' --summary-json=s.resumed.json --rate 8/s --resume-from 'new report.csv'"
        );
    }

    #[test]
    fn resumed_names_count_up() {
        assert_eq!(resumed_name("out/undo.csv"), "out/undo.resumed.csv");
        assert_eq!(resumed_name("undo.resumed.csv"), "undo.resumed-2.csv");
        assert_eq!(resumed_name("undo.resumed-2.csv"), "undo.resumed-3.csv");
        assert_eq!(resumed_name("evidence"), "evidence.resumed");
    }

    #[test]
    fn shell_quoting_handles_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a/b.csv"), "a/b.csv");
    }

    #[test]
    fn sha256_of_known_bytes() {
        assert_eq!(
            sha256_reader(&mut &b"abc"[..]).as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
    }
}
