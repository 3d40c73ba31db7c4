//! `--evidence`: a Markdown record of the run for auditors. Changed identities are
//! spooled to an anonymous temporary file as the run goes, so memory stays flat.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};

use super::files::Sink;
use super::report::id_text;
use super::summary::Summary;
use crate::model::{source_text, Outcome, Previous, ReportRow};

/// Who ran the tool, where, and how: what the summary does not already say.
#[derive(Debug, Clone)]
pub(crate) struct RunContext {
    pub(crate) user: String,
    pub(crate) host: String,
    pub(crate) command_line: String,
    pub(crate) kind: &'static str,
    /// `--rules`: the rules file and its SHA-256.
    pub(crate) rules: Option<(String, Option<String>)>,
}

impl RunContext {
    /// The OS user and host name of this process.
    pub(crate) fn current(command_line: String, kind: &'static str) -> Self {
        let user = ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(uid_name);
        Self {
            user,
            host: host_name(),
            command_line,
            kind,
            rules: None,
        }
    }
}

#[cfg(unix)]
fn uid_name() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    format!("uid {}", unsafe { libc::getuid() })
}

#[cfg(not(unix))]
fn uid_name() -> String {
    "unknown".to_owned()
}

#[cfg(unix)]
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if status != 0 {
        return "unknown".to_owned();
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

#[cfg(not(unix))]
fn host_name() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "unknown".to_owned())
}

/// Escapes text for one Markdown table cell.
pub(crate) fn cell(text: &str) -> String {
    let flat = crate::text::one_line(text);
    let mut escaped = String::with_capacity(flat.len());
    for c in flat.chars() {
        if matches!(c, '|' | '\\' | '`' | '*' | '_' | '<' | '>' | '[' | ']') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// "service account (reason)" or "not a service account".
pub(crate) fn describe_previous(previous: &Previous) -> String {
    match (previous.marked, &previous.reason) {
        (true, Some(reason)) => format!("service account ({reason:?})"),
        (true, None) => "service account".to_owned(),
        (false, _) => "not a service account".to_owned(),
    }
}

fn state_text(flag: bool) -> &'static str {
    if flag {
        "service account"
    } else {
        "not a service account"
    }
}

/// Collects the identities changed during the run.
pub(crate) struct EvidenceRecorder {
    spool: File,
    changed: u64,
    /// True when the state before the run was read (`--reconcile`).
    state_read: bool,
}

impl EvidenceRecorder {
    /// `state_read`: the state before the run was fetched (`--reconcile`).
    pub(crate) fn new(state_read: bool) -> io::Result<Self> {
        Ok(Self {
            spool: tempfile::tempfile()?,
            changed: 0,
            state_read,
        })
    }

    /// Notes an updated row as one table line.
    pub(crate) fn record(&mut self, row: &ReportRow) -> io::Result<()> {
        if row.outcome != Outcome::Updated {
            return Ok(());
        }
        let previous = match (&row.previous, self.state_read) {
            (Some(previous), _) => describe_previous(previous),
            (None, true) => "unknown".to_owned(),
            (None, false) => "not read (run without --reconcile)".to_owned(),
        };
        let new = state_text(row.flag == Some(true));
        writeln!(
            self.spool,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&id_text(&row.id)),
            cell(row.identity.username.as_deref().unwrap_or("")),
            cell(row.identity.email.as_deref().unwrap_or("")),
            cell(&previous),
            new,
            cell(&row.reason),
            cell(&source_text(row.rule.as_deref())),
        )?;
        self.changed += 1;
        Ok(())
    }

    /// Writes the whole record to `out`.
    pub(crate) fn finish(
        mut self,
        out: Sink,
        summary: &Summary,
        context: &RunContext,
    ) -> io::Result<()> {
        let mut out = io::BufWriter::new(out);
        let text = header(summary, context);
        out.write_all(text.as_bytes())?;
        writeln!(out, "## Identities changed\n")?;
        if self.changed == 0 {
            writeln!(out, "No identity was changed by this run.")?;
        } else {
            writeln!(
                out,
                "{} identities were updated and confirmed by Drata (a 2xx answer).\n",
                self.changed
            )?;
            writeln!(
                out,
                "| id | username | email | previous state | new state | reason | decided by |"
            )?;
            writeln!(out, "|---:|---|---|---|---|---|---|")?;
            self.spool.seek(SeekFrom::Start(0))?;
            for line in BufReader::new(&self.spool).lines() {
                writeln!(out, "{}", line?)?;
            }
        }
        if summary.unrecorded_rows > 0 {
            writeln!(
                out,
                "\n**{} {} NOT in the report named above**: it could not be written (a full disk?). Each was logged on standard error with its outcome; a resumed run sends them again. The report's SHA-256 lets a reviewer check that it is the file this record describes.",
                summary.unrecorded_rows,
                if summary.unrecorded_rows == 1 { "row is" } else { "rows are" }
            )?;
        } else {
            writeln!(
                out,
                "\nEvery input row, whatever its outcome, is in the report named above; its SHA-256 lets a reviewer check that it is the file this record describes."
            )?;
        }
        out.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .finish()
    }
}

fn header(summary: &Summary, context: &RunContext) -> String {
    let mut text = String::new();
    let mut add = |line: String| {
        text.push_str(&line);
        text.push('\n');
    };
    add(format!(
        "# Drata service-account changes: {} run {}\n",
        summary.command, summary.run_id
    ));
    add("| | |".to_owned());
    add("|---|---|".to_owned());
    add(format!(
        "| Ran by | {} on {} |",
        cell(&context.user),
        cell(&context.host)
    ));
    add(format!("| Started | {} |", summary.started_at));
    add(format!(
        "| Finished | {} ({:.1} s) |",
        summary.finished_at, summary.elapsed_seconds
    ));
    add(format!("| Tool | {} {} |", summary.tool, summary.version));
    add(format!(
        "| Command | `{}` |",
        context.command_line.replace('`', "'")
    ));
    add(format!(
        "| Drata API | {} ({} identities) |",
        cell(&summary.base_url),
        context.kind
    ));
    let digest = |d: &Option<String>| d.clone().unwrap_or_else(|| "unavailable".to_owned());
    add(format!(
        "| Input | {} (SHA-256 `{}`) |",
        cell(&summary.input.path),
        digest(&summary.input.sha256)
    ));
    if let Some((path, sha256)) = &context.rules {
        add(format!(
            "| Rules | {} (SHA-256 `{}`) |",
            cell(path),
            digest(sha256)
        ));
    }
    add(format!(
        "| Report | {} (SHA-256 `{}`) |",
        cell(&summary.report.path),
        digest(&summary.report.sha256)
    ));
    add(format!(
        "| Result | exit code {}{} |",
        summary.exit_code,
        summary
            .stopped
            .as_ref()
            .map(|why| format!(": {}", cell(why)))
            .unwrap_or_default()
    ));
    add(String::new());
    add("## Counts\n".to_owned());
    add("| outcome | rows |".to_owned());
    add("|---|---:|".to_owned());
    for (outcome, count) in &summary.counts {
        if *count > 0 {
            add(format!("| {} | {count} |", cell(outcome)));
        }
    }
    add(format!("| **total** | **{}** |", summary.rows));
    add(String::new());
    add(format!(
        "Requests: {} (retries {}, 429 answers {}), effective rate {:.0}/min.\n",
        summary.requests, summary.retries, summary.rate_limited, summary.effective_rate_per_minute
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_escaped_for_markdown_tables() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        assert_eq!(cell("<script>"), "\\<script\\>");
        assert_eq!(cell("plain text"), "plain text");
    }
}
