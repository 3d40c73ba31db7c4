//! Reading and validating the input: a CSV file, or a spreadsheet read as one.
//!
//! The input is read more than once, never held whole: [`scan`] validates every row and
//! indexes ids (memory grows with distinct ids, never with reasons); `plan` and `apply`
//! alike read it once more through a [`RowReader`], against the state read from Drata, to
//! count the changes and find the rows invalid only against that state before anything is
//! sent; a last [`RowReader`] streams it for the run. `validate` reads it twice: the scan,
//! then its list of problems. `plan` and `apply` read a private copy, so that every read
//! sees the same bytes; standard input is always copied, so that it can be re-read.

mod bounds;
pub(crate) mod encoding;
mod evidence;
pub(crate) mod records;
mod resume;
mod rows;
pub(crate) mod rules;
mod scan;
mod sheet;
mod sniff;
mod source;

pub(crate) use encoding::Encoding;
pub(crate) use evidence::evidence_summary;
pub(crate) use resume::{load_done_rows, DoneRows, DoneRuleRow, ResumeError, ResumeTarget};
pub(crate) use rows::RowReader;
pub(crate) use scan::{check_bytes, conflict_message, scan, InputScan, RowStatus};
pub(crate) use source::{lock, Access, InputFile, InputLock, SnapshotReader, DEFAULT_MAX_COPY_MIB};

use std::fmt;
use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::model::Row;

/// The id table is sized up front for at most this many ids; beyond, it grows.
const MAX_PRESIZED_IDS: u64 = 16 * 1024 * 1024;
/// How many problems `apply` and `plan` print before the count.
pub(crate) const PROBLEMS_SHOWN: usize = 20;
/// Raw cells of invalid rows are echoed into the report up to this many characters.
const ECHO_LIMIT: usize = 200;

/// Where the input comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InputSource {
    Stdin,
    File(PathBuf),
    /// No input file: `--rules` decides alone. Read as a header and no rows.
    None,
}

impl InputSource {
    /// `-` is standard input; anything else a path, whatever bytes it holds.
    pub(crate) fn from_arg(arg: PathBuf) -> Self {
        if arg.as_os_str() == "-" {
            InputSource::Stdin
        } else {
            InputSource::File(arg)
        }
    }

    /// Used to name the default report: the file stem, or `stdin`.
    pub(crate) fn stem(&self) -> String {
        match self {
            InputSource::Stdin => "stdin".to_owned(),
            InputSource::None => "rules".to_owned(),
            InputSource::File(path) => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "input".to_owned()),
        }
    }

    /// As the user typed it, for messages.
    pub(crate) fn display(&self) -> String {
        match self {
            InputSource::Stdin => "-".to_owned(),
            InputSource::None => "(no input: rules only)".to_owned(),
            InputSource::File(path) => path.display().to_string(),
        }
    }
}

/// How the input is read and validated.
#[derive(Debug, Clone)]
pub(crate) struct InputOptions {
    pub source: InputSource,
    /// `--delimiter`; without it, read from the header.
    pub delimiter: Option<u8>,
    pub id_column: Option<String>,
    pub flag_column: Option<String>,
    pub reason_column: Option<String>,
    /// `--link-column`: the column of the Drata user each identity belongs to.
    pub link_column: Option<String>,
    pub default_reason: Option<String>,
    /// `--reason-if-true` / `--reason-if-false`: the default for blank cells of rows
    /// with that flag, before `--reason`.
    pub reason_if_true: Option<String>,
    pub reason_if_false: Option<String>,
    /// A `false` row may leave its reason blank: the run reads the current state, and
    /// such a row is fine when its identity already is not a service account (an
    /// unedited export); it is invalid only if it would have to be sent.
    pub blank_false_reasons: bool,
    /// The largest input copied, in MiB.
    pub max_copy_mib: u64,
    /// `--encoding`; without it, UTF-8 or UTF-16 by its byte-order mark.
    pub encoding: Option<Encoding>,
    /// `--sheet`: the sheet of a spreadsheet input, any case [default: the active
    /// sheet when visible, else the first visible one].
    pub sheet: Option<String>,
    /// `--header-row`: the header's line (1-based) [default: searched for].
    pub header_row: Option<u64>,
    /// `--rules`: the rules file that decides identities beside (or instead of) the
    /// input; read and checked by the command, before anything is sent.
    pub rules: Option<PathBuf>,
}

impl InputOptions {
    /// Default column names, no default reason.
    pub(crate) fn new(source: InputSource, delimiter: u8) -> Self {
        Self {
            source,
            delimiter: Some(delimiter),
            id_column: None,
            flag_column: None,
            reason_column: None,
            link_column: None,
            default_reason: None,
            reason_if_true: None,
            reason_if_false: None,
            blank_false_reasons: false,
            max_copy_mib: DEFAULT_MAX_COPY_MIB,
            encoding: None,
            sheet: None,
            header_row: None,
            rules: None,
        }
    }
}

/// A failure to read the input at all: nothing can be sent (exit 2).
#[derive(Debug, Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(
        "{path}: the column {column} records {words} of {column_kind} identities, but this run addresses {kind} identities; nothing was sent (pass --kind {column_kind}, or delete the column)"
    )]
    AccessOfOtherKind {
        path: String,
        column: &'static str,
        words: &'static str,
        column_kind: &'static str,
        kind: &'static str,
    },
    #[error(
        "{path} is being applied by another drata-svcacct run (it holds a lock on the file); nothing was sent: wait for that run to finish, or stop it"
    )]
    InUse { path: String },
    #[error(
        "cannot read {path}: {why}; the private copy in {dir} was removed and nothing was sent (split the input, or raise --max-input-mib)"
    )]
    CopyRefused {
        path: String,
        why: String,
        dir: String,
    },
    #[error("{path}: {}", not_text_message(*.line, .encoding, *.declared))]
    NotText {
        path: String,
        line: u64,
        encoding: &'static str,
        declared: bool,
    },
    #[error("{path}: {source}")]
    Delimiter {
        path: String,
        source: sniff::Ambiguous,
    },
    #[error("{path}: {source}")]
    Sheet {
        path: String,
        source: sheet::SheetError,
    },
    #[error("{path}: the input is empty (a header row is required)")]
    Empty { path: String },
    #[error("{path}: the header is larger than 1 MiB (an unclosed quote?)")]
    HeaderTooLarge { path: String },
    #[error("{path}: the header is not valid UTF-8")]
    HeaderEncoding { path: String },
    #[error("{path}: {missing}; the header has {found}")]
    MissingColumns {
        path: String,
        missing: String,
        found: String,
    },
    #[error(
        "{path}: row {row} is empty, so it cannot be the header (--header-row counts the file's rows from 1)"
    )]
    HeaderRowEmpty { path: String, row: u64 },
    #[error(
        "{path}: this file is UTF-8 already (and not plain ASCII), so it is not decoded as Windows-1252, which would turn \"é\" into \"Ã©\" in Drata; drop --encoding windows-1252. Nothing was sent"
    )]
    AlreadyUtf8 { path: String },
    #[error("{path}: the {wanted} column matches several headers: {found}")]
    AmbiguousColumn {
        path: String,
        wanted: &'static str,
        found: String,
    },
}

/// What to say of bytes that are not text in the input's encoding, and how to fix it.
fn not_text_message(line: u64, encoding: &str, declared: bool) -> String {
    if declared {
        format!("line {line} is not valid {encoding}; nothing was sent")
    } else {
        format!(
            "line {line} is not UTF-8, so nothing was sent (Excel's \"CSV\" saves Windows-1252): save the sheet as \"CSV UTF-8\", or pass --encoding windows-1252"
        )
    }
}

/// One thing wrong with one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) line: u64,
    pub(crate) column: String,
    pub(crate) message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// A row that cannot be sent, with its cells as read (shortened) for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidRow {
    pub(crate) line: u64,
    pub(crate) id_cell: String,
    /// The identity the row names, when its id (or username, email) could be read: the
    /// row still keeps a rule off it.
    pub(crate) named: Option<u64>,
    pub(crate) flag: Option<bool>,
    pub(crate) reason_cell: String,
    pub(crate) problems: Vec<Problem>,
}

impl InvalidRow {
    /// The problems as one line, for the report's `error` cell.
    pub(crate) fn message(&self) -> String {
        self.problems
            .iter()
            .map(|p| format!("column {}: {}", p.column, p.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    Valid(Row),
    Invalid(InvalidRow),
}

#[cfg(test)]
impl Record {
    pub(crate) fn line(&self) -> u64 {
        match self {
            Record::Valid(row) => row.line,
            Record::Invalid(row) => row.line,
        }
    }
}
