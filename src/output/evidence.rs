//! `--evidence`: the record of a run for auditors. The facts are gathered once
//! ([`Facts`]: who ran it, where, against what, the counts, the verification, and every
//! identity changed, sorted by id), then rendered as Markdown or as a workbook
//! (`Summary`, `Changes`, `Report`) when the path ends in `.xlsx`.

mod markdown;
mod workbook;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::files::Sink;
use super::summary::{FileDigest, Summary};
use crate::model::{source_text, Access, FieldName, Fields, Link, Outcome, Previous, ReportRow};

pub(crate) use markdown::describe_previous;

/// Who ran the tool, where, and how: what the summary does not already say.
#[derive(Debug, Clone)]
pub(crate) struct RunContext {
    /// The login name of the account the process runs as, from the system's user
    /// database (never `$USER`, which anyone can set); `uid N` when it has none.
    pub(crate) account: String,
    pub(crate) host: String,
    pub(crate) command_line: String,
    pub(crate) kind: &'static str,
    /// `--rules`: the rules file and its SHA-256.
    pub(crate) rules: Option<FileDigest>,
}

impl RunContext {
    /// The account and host name of this process.
    pub(crate) fn current(command_line: String, kind: &'static str) -> Self {
        Self {
            account: account_name(),
            host: host_name(),
            command_line,
            kind,
            rules: None,
        }
    }
}

/// The login name of the process's real uid, read with `getpwuid_r`.
#[cfg(unix)]
pub(crate) fn account_name() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    login_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

#[cfg(unix)]
fn login_name(uid: libc::uid_t) -> Option<String> {
    // Big enough for any sane entry; ERANGE doubles it, up to 1 MiB.
    let mut buffer: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: zeroed is a valid passwd (null pointers, zero ids); getpwuid_r only
        // writes into it and into `buffer`, whose length it is given.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let status = unsafe {
            libc::getpwuid_r(
                uid,
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut found,
            )
        };
        if status == libc::ERANGE && buffer.len() < 1 << 20 {
            buffer.resize(buffer.len() * 2, 0);
            continue;
        }
        if status != 0 || found.is_null() || entry.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points to a NUL-terminated string inside `buffer`,
        // which is alive here.
        let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
        let name = name.to_string_lossy().into_owned();
        return Some(name).filter(|n| !n.is_empty());
    }
}

#[cfg(not(unix))]
pub(crate) fn account_name() -> String {
    std::env::var("USERNAME").unwrap_or_else(|_| "unknown".to_owned())
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

/// The two renderings of the same facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EvidenceFormat {
    Markdown,
    /// A workbook with the sheets `Summary`, `Changes` and `Report`.
    Workbook,
}

impl EvidenceFormat {
    /// A workbook when the path ends in `.xlsx` (any case), Markdown otherwise.
    pub(crate) fn for_path(path: &Path) -> Self {
        match path.extension() {
            Some(extension) if extension.eq_ignore_ascii_case("xlsx") => Self::Workbook,
            _ => Self::Markdown,
        }
    }
}

/// A service-account state: marked or not, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) marked: bool,
    pub(crate) reason: Option<String>,
}

/// What the record knows of an identity's state before the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Before {
    Known(State),
    /// The listing was read, but did not show this identity.
    Unknown,
    /// The state before the run was not read.
    NotRead,
}

/// One identity whose state the run changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChangedIdentity {
    pub(crate) id: u64,
    pub(crate) line: u64,
    pub(crate) username: String,
    pub(crate) email: String,
    /// Client type, alias and id of the connection it was discovered through.
    pub(crate) connection: String,
    pub(crate) before: Before,
    pub(crate) after: State,
    /// What decided it: `input` (a row of the file) or `rule:NAME`.
    pub(crate) source: String,
    /// Whether the state read again after the run holds the change; `None` when not
    /// checked.
    pub(crate) verified: Option<bool>,
    /// Who it was linked to before the run (`None`: unknown) and after, when the run
    /// decided its link.
    pub(crate) link: Option<(Option<Link>, Link)>,
    /// Each access toggle the row decided: before the run (`None`: unknown) and after.
    pub(crate) access: Vec<(Access, Option<bool>, bool)>,
}

/// One identity a failed row left partly changed: Drata answered 2xx to one of the row's
/// two requests (the flag, the link) and not to the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartlyAppliedIdentity {
    pub(crate) id: u64,
    pub(crate) line: u64,
    pub(crate) username: String,
    pub(crate) email: String,
    pub(crate) connection: String,
    pub(crate) before: Before,
    /// The flag and reason after the run (`None`: not known): what the check after the run
    /// read when `now_read`, else what is expected (the row's when that request was
    /// applied, else as before the run).
    pub(crate) now: Option<State>,
    /// Who it was linked to before the run and after it (`None`: not known), when the row
    /// decided its link; read or expected as `now`.
    pub(crate) link: Option<(Option<Link>, Option<Link>)>,
    /// Whether `now` is what the check after the run read of Drata, not a computation: a
    /// failed part may have been stored anyway (a 5xx after the commit) and an applied one
    /// reverted since.
    pub(crate) now_read: bool,
    pub(crate) source: String,
    /// The requests Drata answered 2xx for.
    pub(crate) applied: Fields,
    /// Why the rest was not applied: the report's error.
    pub(crate) error: String,
}

/// One identity Drata changed since the export, on a row the reviewer did not edit: the run
/// left it as Drata has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DriftedIdentity {
    pub(crate) id: u64,
    pub(crate) username: String,
    /// `None` when the row carried no baseline.
    pub(crate) at_export: Option<State>,
    /// `None` when the listing did not show it.
    pub(crate) now: Option<State>,
}

/// Whether the changes were checked against Drata after the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verification {
    NotChecked,
    Checked { verified: u64, not_verified: u64 },
}

/// Everything the record says, gathered once, rendered twice.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub(crate) command: &'static str,
    pub(crate) run_id: String,
    pub(crate) account: String,
    pub(crate) host: String,
    pub(crate) started_at: String,
    pub(crate) finished_at: String,
    pub(crate) elapsed_seconds: f64,
    pub(crate) tool: &'static str,
    pub(crate) version: &'static str,
    pub(crate) command_line: String,
    pub(crate) base_url: String,
    pub(crate) kind: &'static str,
    pub(crate) input: FileDigest,
    pub(crate) report: FileDigest,
    /// The rules file and its digest; `None` when no rules decided anything.
    pub(crate) rules: Option<FileDigest>,
    pub(crate) exit_code: u8,
    pub(crate) stopped: Option<String>,
    pub(crate) rows: u64,
    /// Every outcome with its count, zeros included.
    pub(crate) counts: Vec<(&'static str, u64)>,
    pub(crate) requests: u64,
    pub(crate) retries: u64,
    pub(crate) rate_limited: u64,
    pub(crate) effective_rate_per_minute: f64,
    pub(crate) verification: Verification,
    /// Rows Drata changed since the export, left as Drata has them.
    pub(crate) drifted: u64,
    /// Rows the reviewer and Drata both changed, differently; not sent.
    pub(crate) conflicts: u64,
    pub(crate) unrecorded_rows: u64,
    /// Outputs of the run that could not be written.
    pub(crate) unwritten_outputs: Vec<String>,
    /// Sorted by id.
    pub(crate) changes: Vec<ChangedIdentity>,
    /// The identities behind `drifted`, sorted by id.
    pub(crate) drift: Vec<DriftedIdentity>,
    /// Failed rows Drata holds part of, sorted by id; counted as `failed`.
    pub(crate) partly: Vec<PartlyAppliedIdentity>,
}

impl Facts {
    fn gather(summary: &Summary, context: &RunContext, recorded: EvidenceRecorder) -> Self {
        let EvidenceRecorder {
            mut changes,
            mut drift,
            mut partly,
            ..
        } = recorded;
        changes.sort_by_key(|change| (change.id, change.line));
        drift.sort_by_key(|drifted| drifted.id);
        partly.sort_by_key(|partly| (partly.id, partly.line));
        let count = |name: &str| summary.counts.get(name).copied().unwrap_or(0);
        // Checked when the state was read again for any row sent: a run whose only rows
        // sent were partly applied was checked too.
        let checked = changes.iter().any(|c| c.verified.is_some())
            || partly.iter().any(|partly| partly.now_read);
        let verification = match checked {
            false => Verification::NotChecked,
            true => Verification::Checked {
                verified: changes.iter().filter(|c| c.verified == Some(true)).count() as u64,
                not_verified: changes.iter().filter(|c| c.verified == Some(false)).count() as u64,
            },
        };
        Self {
            command: summary.command,
            run_id: summary.run_id.clone(),
            account: context.account.clone(),
            host: context.host.clone(),
            started_at: summary.started_at.clone(),
            finished_at: summary.finished_at.clone(),
            elapsed_seconds: summary.elapsed_seconds,
            tool: summary.tool,
            version: summary.version,
            command_line: context.command_line.clone(),
            base_url: summary.base_url.clone(),
            kind: context.kind,
            input: summary.input.clone(),
            report: summary.report.clone(),
            rules: context.rules.clone(),
            exit_code: summary.exit_code,
            stopped: summary.stopped.clone(),
            rows: summary.rows,
            counts: summary.counts.iter().map(|(k, v)| (*k, *v)).collect(),
            requests: summary.requests,
            retries: summary.retries,
            rate_limited: summary.rate_limited,
            effective_rate_per_minute: summary.effective_rate_per_minute,
            verification,
            drifted: count("drifted"),
            conflicts: count("conflict"),
            unrecorded_rows: summary.unrecorded_rows,
            unwritten_outputs: summary.unwritten_outputs.clone(),
            changes,
            drift,
            partly,
        }
    }
}

/// Collects the identities changed during the run.
pub(crate) struct EvidenceRecorder {
    changes: Vec<ChangedIdentity>,
    drift: Vec<DriftedIdentity>,
    partly: Vec<PartlyAppliedIdentity>,
    /// True when the state before the run was read.
    state_read: bool,
}

impl EvidenceRecorder {
    /// `state_read`: the state before the run was fetched.
    pub(crate) fn new(state_read: bool) -> io::Result<Self> {
        Ok(Self {
            changes: Vec::new(),
            drift: Vec::new(),
            partly: Vec::new(),
            state_read,
        })
    }

    /// Notes a row Drata changed since the export, kept as Drata has it.
    pub(crate) fn record_drift(&mut self, row: &ReportRow) -> io::Result<()> {
        let Some(id) = row.id() else {
            return Ok(());
        };
        self.drift.push(DriftedIdentity {
            id,
            username: row.identity.username.clone().unwrap_or_default(),
            at_export: row.baseline.as_ref().map(|b| State {
                marked: b.marked,
                reason: Some(b.reason.clone()).filter(|r| !r.is_empty()),
            }),
            now: row.previous.as_ref().map(state_of),
        });
        Ok(())
    }

    fn before(&self, row: &ReportRow) -> Before {
        match (&row.previous, self.state_read) {
            (Some(previous), _) => Before::Known(state_of(previous)),
            (None, true) => Before::Unknown,
            (None, false) => Before::NotRead,
        }
    }

    /// Notes a failed row Drata holds part of. What it holds after the run is what the
    /// check after the run read when it read the identity; otherwise only what is expected
    /// (the part applied, the rest as before the run), and marked so.
    pub(crate) fn record_partly(&mut self, row: &ReportRow) -> io::Result<()> {
        let (true, Some(id)) = (row.partly_applied(), row.id()) else {
            return Ok(());
        };
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let before_link = row.previous.as_ref().and_then(|p| p.link.clone());
        let (now, now_link) = match (&row.checked, row.verified) {
            (Some(read), _) => (Some(state_of(read)), read.link.clone()),
            // Checked, but the listing no longer showed it: nothing is known.
            (None, Some(_)) => (None, None),
            (None, None) => expected_after(row, before_link.clone()),
        };
        self.partly.push(PartlyAppliedIdentity {
            id,
            line: row.line,
            username: text(&row.identity.username),
            email: text(&row.identity.email),
            connection: text(&row.identity.connection),
            before: self.before(row),
            now,
            link: row.link.as_ref().map(|_| (before_link, now_link)),
            now_read: row.verified.is_some(),
            source: source_text(row.rule.as_deref()),
            applied: row.answers.applied(),
            error: row.error.clone(),
        });
        Ok(())
    }

    /// Notes an updated row.
    pub(crate) fn record(&mut self, row: &ReportRow) -> io::Result<()> {
        let (Outcome::Updated, Some(id)) = (row.outcome, row.id()) else {
            return Ok(());
        };
        let before = self.before(row);
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let marked = row.flag == Some(true);
        // A decision the row sent no request for (it drifted, unedited) stays as Drata held
        // it: the record says so, not what the sheet said.
        let kept = |field: FieldName| row.sent.any() && !row.sent.contains(field);
        let after = match (&row.previous, kept(FieldName::ServiceAccount)) {
            (Some(previous), true) => state_of(previous),
            _ => State {
                marked,
                reason: Some(row.reason.clone()).filter(|r| marked && !r.is_empty()),
            },
        };
        self.changes.push(ChangedIdentity {
            id,
            line: row.line,
            username: text(&row.identity.username),
            email: text(&row.identity.email),
            connection: text(&row.identity.connection),
            before,
            after,
            source: source_text(row.rule.as_deref()),
            verified: row.verified,
            link: row.link.as_ref().map(|wanted| {
                let before = row.previous.as_ref().and_then(|p| p.link.clone());
                let after = match &before {
                    Some(before) if kept(FieldName::Link) => before.clone(),
                    _ => wanted.link.clone(),
                };
                (before, after)
            }),
            // The toggles sent: one the row decided as Drata had it is no change.
            access: { row.access.iter() }
                .filter(|asked| row.sent.contains(FieldName::Access(asked.access)))
                .map(|asked| {
                    let field = FieldName::Access(asked.access);
                    let before = row
                        .previous
                        .as_ref()
                        .and_then(|p| p.access.get(asked.access));
                    let after = match before {
                        Some(before) if kept(field) => before,
                        _ => asked.on,
                    };
                    (asked.access, before, after)
                })
                .collect(),
        });
        Ok(())
    }

    /// Writes the whole record to `out`, as `format` says. The workbook's `Report`
    /// sheet is read from the report file, `report_path`, as it was written.
    pub(crate) fn finish(
        self,
        out: Sink,
        format: EvidenceFormat,
        summary: &Summary,
        context: &RunContext,
    ) -> io::Result<()> {
        let facts = Facts::gather(summary, context, self);
        let mut out = io::BufWriter::new(out);
        match format {
            EvidenceFormat::Markdown => out.write_all(markdown::render(&facts).as_bytes())?,
            EvidenceFormat::Workbook => {
                let report = PathBuf::from(&summary.report.path);
                out.write_all(&workbook::render(&facts, &report)?)?;
            }
        }
        out.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .finish()
    }
}

/// What a partly applied row is expected to have left in Drata when nobody read it after the
/// run: the parts answered 2xx as sent, the rest as before the run.
fn expected_after(row: &ReportRow, before_link: Option<Link>) -> (Option<State>, Option<Link>) {
    let marked = row.flag == Some(true);
    let applied = row.answers.applied();
    let now = if applied.contains(FieldName::ServiceAccount) {
        Some(State {
            marked,
            reason: Some(row.reason.clone()).filter(|r| marked && !r.is_empty()),
        })
    } else {
        row.previous.as_ref().map(state_of)
    };
    let link = match (&row.link, applied.contains(FieldName::Link)) {
        (Some(wanted), true) => Some(wanted.link.clone()),
        _ => before_link,
    };
    (now, link)
}

fn state_of(previous: &Previous) -> State {
    State {
        marked: previous.marked,
        reason: previous.reason.clone().filter(|_| previous.marked),
    }
}

/// Text from Drata or the input made safe for a file a person reads: control
/// characters and bidirectional overrides are shown escaped (`\u{1b}`), so nothing in a
/// cell can hide or reorder what is around it (the one rule of every file we write).
pub(crate) fn escaped(text: &str) -> String {
    crate::text::file_safe(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(escaped("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(escaped("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escaped("tab\tand\nline"), "tab\tand\nline");
    }

    #[test]
    #[cfg(unix)] // Windows names the account from %USERNAME% (contract, "Platforms").
    fn the_account_is_the_systems_name_of_the_uid() {
        // The test runs as some account; whatever $USER says, the name is the one the
        // user database gives for the uid.
        let uid = unsafe { libc::getuid() };
        let expected = login_name(uid).unwrap_or_else(|| format!("uid {uid}"));
        assert_eq!(account_name(), expected);
        assert!(!account_name().is_empty());
    }

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(
            EvidenceFormat::for_path(Path::new("q4.XLSX")),
            EvidenceFormat::Workbook
        );
        assert_eq!(
            EvidenceFormat::for_path(Path::new("q4.md")),
            EvidenceFormat::Markdown
        );
        assert_eq!(
            EvidenceFormat::for_path(Path::new("-")),
            EvidenceFormat::Markdown
        );
    }
}
