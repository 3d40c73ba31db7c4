//! The run's journal: an append-only JSON-lines file beside the report
//! (`NAME.journal.jsonl`), one line written and handed to the operating system before each
//! request is sent (its intent: the identity, the field, Drata's value before and the value
//! sent) and one when its answer comes (applied, refused or uncertain), so that a run
//! killed at any point has lost at most what was in flight. Workers append to it; nothing
//! here prints.

use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::{json, Value};

use super::files::create_private_file;
use crate::field::ACCESS;
use crate::model::{Answer, FieldName, Link, Previous, Write};

/// The journal of a run's report at `report`: `r.csv` → `r.journal.jsonl`.
pub(crate) fn journal_path(report: &Path) -> PathBuf {
    report.with_extension("journal.jsonl")
}

pub(crate) struct Journal {
    file: Mutex<File>,
}

impl Journal {
    /// Creates the journal, private, as every output is (`force` replaces an earlier one).
    pub(crate) fn create(path: &Path, force: bool) -> io::Result<Self> {
        Ok(Self {
            file: Mutex::new(create_private_file(path, force)?),
        })
    }

    /// Records that a request is about to be sent: before it is.
    pub(crate) fn intent(
        &self,
        (line, id): (u64, u64),
        field: FieldName,
        before: Option<&Previous>,
        write: &Write<'_>,
    ) -> io::Result<()> {
        self.append(&json!({
            "event": "intent",
            "at": now(),
            "line": line,
            "id": id,
            "field": field_name(field),
            "from": before.map(|before| value_before(field, before)),
            "to": value_sent(write),
        }))
    }

    /// Records what the request's attempts proved; `None` when it was never sent.
    pub(crate) fn answer(
        &self,
        (line, id): (u64, u64),
        field: FieldName,
        answer: Option<Answer>,
        status: Option<u16>,
    ) -> io::Result<()> {
        let answer = match answer {
            Some(Answer::Applied) => "applied",
            Some(Answer::Refused) => "refused",
            Some(Answer::Uncertain) => "uncertain",
            None => "not_sent",
        };
        self.append(&json!({
            "event": "answer",
            "at": now(),
            "line": line,
            "id": id,
            "field": field_name(field),
            "answer": answer,
            "http_status": status,
        }))
    }

    /// One line, written whole in one call and handed to the operating system at once.
    fn append(&self, event: &Value) -> io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .map_err(|_| io::Error::other("the journal's lock was poisoned"))?;
        file.write_all(&line)
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The field's name as its input column says it.
fn field_name(field: FieldName) -> &'static str {
    match field {
        FieldName::ServiceAccount => "serviceAccount",
        FieldName::Link => "linkedUser",
        FieldName::Access(access) => ACCESS[access.index()].column,
    }
}

/// The field's value in Drata before the run.
fn value_before(field: FieldName, before: &Previous) -> Value {
    match field {
        FieldName::ServiceAccount => json!({
            "serviceAccount": before.marked,
            "serviceAccountReason": before.reason.as_deref().filter(|_| before.marked),
        }),
        FieldName::Link => json!({ "linkedUser": before.link.as_ref().map(Link::cell) }),
        FieldName::Access(access) => json!({ "toggle": before.access.get(access) }),
    }
}

/// The value a request sends.
fn value_sent(write: &Write<'_>) -> Value {
    match write {
        Write::ServiceAccount { flag, reason } => {
            json!({ "serviceAccount": flag, "serviceAccountReason": reason })
        }
        Write::Connect(user) => json!({ "userId": user }),
        Write::Toggle { toggle_field, on } => json!({ "toggleField": toggle_field, "toggle": on }),
    }
}
