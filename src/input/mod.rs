//! Reading and validating the input CSV.
//!
//! The input is read twice: [`scan`] validates every row and indexes ids (memory grows
//! with distinct ids, never with reasons), then [`RowReader`] streams it again for the
//! run. Standard input is spooled to an anonymous temporary file so it can be re-read.

mod records;
mod source;

pub use records::{MAX_FIELDS, MAX_RECORD_BYTES};
pub use source::{InputFile, SnapshotReader};

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read};
use std::sync::Arc;

use thiserror::Error;

use crate::config::InputOptions;
#[cfg(test)]
use crate::config::InputSource;
use records::{Fields, RecordKind, RecordReader};

/// The longest reason the API accepts, in UTF-16 code units.
pub const MAX_REASON_UNITS: usize = 30_000;
/// The largest id JavaScript represents exactly (2^53 - 1).
pub const MAX_ID: u64 = 9_007_199_254_740_991;
/// The id table is sized up front for at most this many ids; beyond, it grows.
const MAX_PRESIZED_IDS: u64 = 16 * 1024 * 1024;
/// How many problems `apply` and `plan` print before the count.
pub const PROBLEMS_SHOWN: usize = 20;
/// Raw cells of invalid rows are echoed into the report up to this many characters.
const ECHO_LIMIT: usize = 200;

/// A failure to read the input at all: nothing can be sent (exit 2).
#[derive(Debug, Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: the input is empty (a header row is required)")]
    Empty { path: String },
    #[error("{path}: line 1: the header is larger than 1 MiB (an unclosed quote?)")]
    HeaderTooLarge { path: String },
    #[error("{path}: line 1: the header is not valid UTF-8")]
    HeaderEncoding { path: String },
    #[error("{path}: line 1: no {wanted} column (looked for {tried}; the header has {found})")]
    MissingColumn {
        path: String,
        wanted: &'static str,
        tried: String,
        found: String,
    },
    #[error("{path}: line 1: the {wanted} column matches several headers: {found}")]
    AmbiguousColumn {
        path: String,
        wanted: &'static str,
        found: String,
    },
}

/// One thing wrong with one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub column: String,
    pub message: String,
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

/// A valid row: what to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    pub id: u64,
    pub flag: bool,
    pub reason: String,
}

/// A row that cannot be sent, with its cells as read (shortened) for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRow {
    pub line: u64,
    pub id_cell: String,
    pub flag_cell: String,
    pub reason_cell: String,
    pub problems: Vec<Problem>,
}

impl InvalidRow {
    /// The problems as one line, for the report's `error` cell.
    pub fn message(&self) -> String {
        self.problems
            .iter()
            .map(|p| format!("column {}: {}", p.column, p.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Valid(Row),
    Invalid(InvalidRow),
}

impl Record {
    pub fn line(&self) -> u64 {
        match self {
            Record::Valid(row) => row.line,
            Record::Invalid(row) => row.line,
        }
    }
}

/// Header names compare ignoring case, spaces, `_` and `-`.
pub fn normalize_header(name: &str) -> String {
    name.trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// How a row names its identity, when it has no id: resolved through Drata's listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LookupKey {
    pub username: Option<String>,
    pub email: Option<String>,
    /// A connection's client type, alias or id, to tell identities of one name apart.
    pub connection: Option<String>,
}

impl fmt::Display for LookupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(username) = &self.username {
            parts.push(format!("username {username:?}"));
        }
        if let Some(email) = &self.email {
            parts.push(format!("email {email:?}"));
        }
        if let Some(connection) = &self.connection {
            parts.push(format!("connection {connection:?}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// Resolves a [`LookupKey`] to an id, or says why not (no match, several matches).
pub trait Lookup: Send + Sync {
    fn resolve(&self, key: &LookupKey) -> Result<u64, String>;
}

/// The id of a row named by username or email before resolution (`validate`, offline).
pub const UNRESOLVED_ID: u64 = 0;

/// The columns that name the identity.
#[derive(Debug, Clone)]
enum IdentityColumns {
    Id((usize, String)),
    Lookup {
        username: Option<(usize, String)>,
        email: Option<(usize, String)>,
        connection: Option<(usize, String)>,
    },
}

/// Where the needed columns are, and their names as written in the header.
#[derive(Debug, Clone)]
struct Columns {
    identity: IdentityColumns,
    flag: (usize, String),
    reason: Option<(usize, String)>,
    headers: Vec<String>,
}

fn find_column(
    headers: &[String],
    path: &str,
    wanted: &'static str,
    names: &[String],
) -> Result<Option<(usize, String)>, InputError> {
    let normalized: Vec<String> = headers.iter().map(|h| normalize_header(h)).collect();
    for name in names {
        let hits: Vec<usize> = (0..headers.len())
            .filter(|&i| normalized[i] == *name)
            .collect();
        match hits.as_slice() {
            [] => continue,
            [only] => return Ok(Some((*only, headers[*only].trim().to_owned()))),
            _ => {
                return Err(InputError::AmbiguousColumn {
                    path: path.to_owned(),
                    wanted,
                    found: hits
                        .iter()
                        .map(|&i| format!("{:?}", headers[i]))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }
    Ok(None)
}

fn column_names(custom: &Option<String>, defaults: &[&str]) -> Vec<String> {
    match custom {
        Some(name) => vec![normalize_header(name)],
        None => defaults.iter().map(|d| normalize_header(d)).collect(),
    }
}

fn resolve_columns(
    headers: &[String],
    options: &InputOptions,
    path: &str,
) -> Result<Columns, InputError> {
    let missing = |wanted: &'static str, names: &[String]| InputError::MissingColumn {
        path: path.to_owned(),
        wanted,
        tried: names.join(" or "),
        found: if headers.is_empty() {
            "no columns".to_owned()
        } else {
            headers
                .iter()
                .map(|h| format!("{h:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
    };
    let id_names = column_names(&options.id_column, &["id"]);
    let flag_names = column_names(&options.flag_column, &["serviceAccount", "flag"]);
    let reason_names = column_names(&options.reason_column, &["serviceAccountReason", "reason"]);
    let id = find_column(headers, path, "id", &id_names)?;
    let identity = match id {
        Some(id) => IdentityColumns::Id(id),
        None if options.id_column.is_some() => return Err(missing("id", &id_names)),
        None => {
            let username = find_column(headers, path, "username", &["username".to_owned()])?;
            let email = find_column(headers, path, "email", &["email".to_owned()])?;
            let connection = find_column(
                headers,
                path,
                "connection",
                &["connection".to_owned(), "clienttype".to_owned()],
            )?;
            if username.is_none() && email.is_none() {
                return Err(missing("id", &["id (or username, or email)".to_owned()]));
            }
            IdentityColumns::Lookup {
                username,
                email,
                connection,
            }
        }
    };
    let flag = find_column(headers, path, "service-account flag", &flag_names)?
        .ok_or_else(|| missing("service-account flag", &flag_names))?;
    let reason = find_column(headers, path, "reason", &reason_names)?;
    // Without a reason column every row needs --reason; a named column must exist.
    if reason.is_none() && (options.default_reason.is_none() || options.reason_column.is_some()) {
        return Err(missing("reason", &reason_names));
    }
    Ok(Columns {
        identity,
        flag,
        reason,
        headers: headers.iter().map(|h| h.trim().to_owned()).collect(),
    })
}

/// Streams records, each validated on its own (duplicates need [`InputScan`]).
pub struct RowReader<R: Read> {
    records: RecordReader<R>,
    columns: Columns,
    default_reason: Option<String>,
    path: String,
    record: Fields,
    lookup: Option<Arc<dyn Lookup>>,
}

impl<R: Read> RowReader<R> {
    pub fn new(input: R, options: &InputOptions, path: &str) -> Result<Self, InputError> {
        let mut records = RecordReader::new(input, options.delimiter);
        let mut header = Fields::default();
        let start = records.read(&mut header).map_err(|source| InputError::Io {
            path: path.to_owned(),
            source,
        })?;
        match start.map(|s| s.kind) {
            None => {
                return Err(InputError::Empty {
                    path: path.to_owned(),
                })
            }
            Some(RecordKind::TooLarge { .. }) => {
                return Err(InputError::HeaderTooLarge {
                    path: path.to_owned(),
                })
            }
            Some(RecordKind::Complete) => {}
        }
        if header.is_empty() || (header.len() == 1 && header.get(0) == Some(&b""[..])) {
            return Err(InputError::Empty {
                path: path.to_owned(),
            });
        }
        let headers = header
            .iter()
            .map(|h| std::str::from_utf8(h).map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| InputError::HeaderEncoding {
                path: path.to_owned(),
            })?;
        let columns = resolve_columns(&headers, options, path)?;
        Ok(Self {
            records,
            columns,
            default_reason: options.default_reason.as_ref().map(|r| r.trim().to_owned()),
            path: path.to_owned(),
            record: Fields::default(),
            lookup: None,
        })
    }

    /// The name of the column that names identities, as written in the header.
    pub fn id_column(&self) -> &str {
        match &self.columns.identity {
            IdentityColumns::Id((_, name)) => name,
            IdentityColumns::Lookup {
                username, email, ..
            } => username
                .as_ref()
                .or(email.as_ref())
                .map_or("id", |(_, name)| name),
        }
    }

    /// True when rows name identities by username or email instead of id.
    pub fn needs_lookup(&self) -> bool {
        matches!(self.columns.identity, IdentityColumns::Lookup { .. })
    }

    /// A trimmed, non-empty UTF-8 cell.
    fn text(&self, column: &Option<(usize, String)>) -> Option<String> {
        let (index, _) = column.as_ref()?;
        match self.cell(*index)? {
            Ok(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
            _ => None,
        }
    }

    /// The row's id: parsed from the id column, or resolved from username/email.
    fn identity(&self, problem: &mut impl FnMut(&str, String)) -> (Option<u64>, String) {
        match &self.columns.identity {
            IdentityColumns::Id((index, name)) => {
                let id = match self.cell(*index) {
                    None => None,
                    Some(Err(())) => {
                        problem(name, "not valid UTF-8".to_owned());
                        None
                    }
                    Some(Ok(text)) => parse_id(text).map_err(|m| problem(name, m)).ok(),
                };
                (id, self.echo(*index))
            }
            IdentityColumns::Lookup {
                username,
                email,
                connection,
            } => {
                let key = LookupKey {
                    username: self.text(username),
                    email: self.text(email),
                    connection: self.text(connection),
                };
                let column = self.id_column().to_owned();
                if key.username.is_none() && key.email.is_none() {
                    problem(
                        &column,
                        "empty: name the identity by username or email".to_owned(),
                    );
                    return (None, String::new());
                }
                match &self.lookup {
                    None => (Some(UNRESOLVED_ID), String::new()),
                    Some(lookup) => match lookup.resolve(&key) {
                        Ok(id) => (Some(id), id.to_string()),
                        Err(message) => {
                            problem(&column, message);
                            (None, String::new())
                        }
                    },
                }
            }
        }
    }

    /// The next non-blank record, or `None` at the end.
    pub fn next_record(&mut self) -> Option<Result<Record, InputError>> {
        loop {
            let start = match self.records.read(&mut self.record) {
                Ok(None) => return None,
                Ok(Some(start)) => start,
                Err(source) => {
                    return Some(Err(InputError::Io {
                        path: self.path.clone(),
                        source,
                    }))
                }
            };
            let line = start.line;
            if let RecordKind::TooLarge { field } = start.kind {
                return Some(Ok(self.too_large(line, field)));
            }
            // A line of spaces is blank; a line of delimiters (",,,") is a row, and an
            // invalid one, so that every row of the file has its line in the report.
            if self.record.len() == 1 && self.record.iter().all(|f| f.trim_ascii().is_empty()) {
                continue;
            }
            return Some(Ok(self.validate(line)));
        }
    }

    /// A record past the size limits: invalid, named by the column being read.
    fn too_large(&self, line: u64, field: usize) -> Record {
        let column = self
            .columns
            .headers
            .get(field)
            .cloned()
            .unwrap_or_else(|| format!("{} (no header)", field + 1));
        Record::Invalid(InvalidRow {
            line,
            id_cell: String::new(),
            flag_cell: String::new(),
            reason_cell: String::new(),
            problems: vec![Problem {
                line,
                column,
                message: format!(
                    "the row is larger than {} MiB or has more than {MAX_FIELDS} fields (an unclosed quote?); it was skipped",
                    MAX_RECORD_BYTES / (1024 * 1024)
                ),
            }],
        })
    }

    fn cell(&self, index: usize) -> Option<Result<&str, ()>> {
        self.record
            .get(index)
            .map(|bytes| std::str::from_utf8(bytes).map_err(|_| ()))
    }

    fn echo(&self, index: usize) -> String {
        let raw = String::from_utf8_lossy(self.record.get(index).unwrap_or_default());
        shorten(raw.trim(), ECHO_LIMIT)
    }

    fn validate(&self, line: u64) -> Record {
        let mut problems = Vec::new();
        let mut problem = |column: &str, message: String| {
            problems.push(Problem {
                line,
                column: column.to_owned(),
                message,
            })
        };
        let width = self.record.len();
        let expected = self.columns.headers.len();
        if width < expected {
            // Name the first column the row lacks; cells past the end are not reported again.
            problem(
                &self.columns.headers[width],
                format!("missing: the row has {width} fields, the header has {expected}"),
            );
        } else if width > expected {
            problem(
                &format!("{} (no header)", expected + 1),
                format!(
                    "the row has {width} fields, the header has {expected} (quote fields that contain the delimiter)"
                ),
            );
        }

        let (id, id_cell) = self.identity(&mut problem);

        let (flag_index, flag_name) = &self.columns.flag;
        let flag = match self.cell(*flag_index) {
            None => None,
            Some(Err(())) => {
                problem(flag_name, "not valid UTF-8".to_owned());
                None
            }
            Some(Ok(text)) => match parse_flag(text) {
                Ok(flag) => Some(flag),
                Err(message) => {
                    problem(flag_name, message);
                    None
                }
            },
        };

        let reason = self.reason(&mut problem);

        match (id, flag, reason, problems.is_empty()) {
            (Some(id), Some(flag), Some(reason), true) => Record::Valid(Row {
                line,
                id,
                flag,
                reason,
            }),
            (_, flag, _, _) => Record::Invalid(InvalidRow {
                line,
                id_cell,
                // The report's service_account is true/false or empty; the bad cell
                // itself is quoted in the problem.
                flag_cell: flag.map(|flag| flag.to_string()).unwrap_or_default(),
                reason_cell: self
                    .columns
                    .reason
                    .as_ref()
                    .map(|(index, _)| self.echo(*index))
                    .filter(|r| !r.is_empty())
                    .or_else(|| self.default_reason.clone())
                    .unwrap_or_default(),
                problems,
            }),
        }
    }

    fn reason(&self, problem: &mut impl FnMut(&str, String)) -> Option<String> {
        let column_name = self
            .columns
            .reason
            .as_ref()
            .map_or("reason", |(_, name)| name.as_str());
        let cell = match &self.columns.reason {
            None => None,
            Some((index, name)) => match self.cell(*index) {
                // A short row, already reported as such.
                None if self.default_reason.is_none() => return None,
                None => None,
                Some(Err(())) => {
                    problem(name, "not valid UTF-8".to_owned());
                    return None;
                }
                Some(Ok(text)) => Some(text.trim()).filter(|t| !t.is_empty()),
            },
        };
        let Some(reason) = cell.or(self.default_reason.as_deref()) else {
            problem(
                column_name,
                "a reason is required (fill the cell or pass --reason)".to_owned(),
            );
            return None;
        };
        let units = utf16_len(reason);
        if units > MAX_REASON_UNITS {
            problem(
                column_name,
                format!("the reason is {units} UTF-16 code units long, the API accepts at most {MAX_REASON_UNITS}"),
            );
            return None;
        }
        Some(reason.to_owned())
    }
}

/// Length as JavaScript counts it: UTF-16 code units.
pub fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

fn shorten(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// Parses an id: a decimal integer from 1 to 2^53 - 1, surrounding spaces allowed.
pub fn parse_id(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("the id is empty".to_owned());
    }
    if !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{:?} is not a decimal integer",
            shorten(trimmed, 40)
        ));
    }
    match trimmed.parse::<u64>() {
        Ok(id) if (1..=MAX_ID).contains(&id) => Ok(id),
        _ => Err(format!(
            "{} is out of range (1 to {MAX_ID})",
            shorten(trimmed, 40)
        )),
    }
}

/// Parses a flag: true/false, yes/no, y/n, 1/0, any case, surrounding spaces allowed.
pub fn parse_flag(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Ok(true),
        "false" | "no" | "n" | "0" => Ok(false),
        "" => Err("the flag is empty (expected true/false, yes/no, y/n or 1/0)".to_owned()),
        _ => Err(format!(
            "{:?} is not a flag (expected true/false, yes/no, y/n or 1/0)",
            shorten(text.trim(), 40)
        )),
    }
}

/// What pass two does with a valid row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowStatus<'a> {
    /// The first row of its id: send it.
    Send,
    /// Same id, flag and reason as an earlier row.
    Duplicate { first_line: u64 },
    /// Same id as other rows with a different flag or reason: every such row is invalid.
    Conflict { lines: &'a [u64] },
}

#[derive(Debug, Clone, Copy)]
struct IdEntry {
    first_line: u64,
    /// A 63-bit digest of (flag, reason) in the high bits; bit 0 set on a conflict.
    /// Packed so an entry is 24 bytes with its key: memory is per distinct id.
    digest_and_conflict: u64,
}

impl IdEntry {
    fn conflict(&self) -> bool {
        self.digest_and_conflict & 1 == 1
    }
}

/// What pass one learned: counts, the first problems, and enough about every id to
/// tell duplicates from conflicts.
#[derive(Debug, Default)]
pub struct InputScan {
    pub rows: u64,
    pub invalid_rows: u64,
    pub problem_count: u64,
    /// The first [`PROBLEMS_SHOWN`] problems in line order, conflicts included.
    pub first_problems: Vec<Problem>,
    /// The id column's name as written in the header, for conflict problems.
    pub id_column: String,
    ids: HashMap<u64, IdEntry>,
    /// Lines of every id seen more than once; after the scan, only conflicting ids.
    repeated_lines: HashMap<u64, Vec<u64>>,
    hasher: RandomState,
}

impl InputScan {
    pub fn valid_rows(&self) -> u64 {
        self.rows - self.invalid_rows
    }

    fn digest(&self, row: &Row) -> u64 {
        self.hasher.hash_one((row.flag, row.reason.as_str()))
    }

    fn add_valid(&mut self, row: &Row) {
        if row.id == UNRESOLVED_ID {
            return;
        }
        let digest = self.digest(row) & !1;
        match self.ids.get_mut(&row.id) {
            None => {
                self.ids.insert(
                    row.id,
                    IdEntry {
                        first_line: row.line,
                        digest_and_conflict: digest,
                    },
                );
            }
            Some(entry) => {
                if entry.digest_and_conflict & !1 != digest {
                    entry.digest_and_conflict |= 1;
                }
                let first_line = entry.first_line;
                self.repeated_lines
                    .entry(row.id)
                    .or_insert_with(|| vec![first_line])
                    .push(row.line);
            }
        }
    }

    fn finish(&mut self, mut row_problems: Vec<Problem>) {
        let ids = &self.ids;
        self.repeated_lines
            .retain(|id, _| ids.get(id).is_some_and(IdEntry::conflict));
        let mut conflict_problems = Vec::new();
        for (id, lines) in &self.repeated_lines {
            self.invalid_rows += lines.len() as u64;
            self.problem_count += lines.len() as u64;
            for &line in lines.iter().take(PROBLEMS_SHOWN) {
                conflict_problems.push(Problem {
                    line,
                    column: self.id_column.clone(),
                    message: conflict_message(*id, lines),
                });
            }
        }
        row_problems.append(&mut conflict_problems);
        row_problems.sort_by_key(|p| p.line);
        row_problems.truncate(PROBLEMS_SHOWN);
        self.first_problems = row_problems;
    }

    /// Where a valid row stands among the rows of its id.
    pub fn status(&self, row: &Row) -> RowStatus<'_> {
        if let Some(lines) = self.repeated_lines.get(&row.id) {
            return RowStatus::Conflict { lines };
        }
        match self.ids.get(&row.id) {
            Some(entry) if entry.first_line != row.line => RowStatus::Duplicate {
                first_line: entry.first_line,
            },
            _ => RowStatus::Send,
        }
    }

    /// Rows that will be sent: one per distinct, non-conflicting id.
    pub fn sendable_ids(&self) -> u64 {
        self.ids.values().filter(|e| !e.conflict()).count() as u64
    }
}

/// The message of a conflicting row: the id and every line that names it.
pub fn conflict_message(id: u64, lines: &[u64]) -> String {
    let shown: Vec<String> = lines.iter().take(10).map(u64::to_string).collect();
    let more = if lines.len() > 10 {
        format!(" and {} more", lines.len() - 10)
    } else {
        String::new()
    };
    format!(
        "id {id} appears on lines {}{more} with different service-account flags or reasons",
        shown.join(", ")
    )
}

/// Both passes over raw bytes, as `apply` makes them: every record's line and whether
/// it can be sent (a first occurrence of a valid, non-conflicting id). For property
/// tests and fuzzing; `Err` only when the input cannot be read as CSV with a header.
pub fn check_bytes(
    data: &[u8],
    options: &InputOptions,
) -> Result<(InputScan, Vec<(u64, bool)>), InputError> {
    let input =
        InputFile::from_reader(&mut &data[..], "fuzz").map_err(|source| InputError::Io {
            path: "fuzz".to_owned(),
            source,
        })?;
    let scan = scan(&input, options, None)?;
    let mut reader = input.reader(options, None)?;
    let mut outcomes = Vec::new();
    while let Some(record) = reader.next_record() {
        let sendable = match record? {
            Record::Valid(row) => scan.status(&row) == RowStatus::Send,
            Record::Invalid(_) => false,
        };
        outcomes.push((outcomes.len() as u64, sendable));
    }
    Ok((scan, outcomes))
}

/// Pass one: validates every row and indexes ids.
pub fn scan(
    input: &InputFile,
    options: &InputOptions,
    lookup: Option<Arc<dyn Lookup>>,
) -> Result<InputScan, InputError> {
    let mut reader = input.reader(options, lookup)?;
    // Sized once from the line count (an upper bound on ids), so the table never
    // doubles while holding its old copy; untouched capacity costs no memory.
    let mut result = InputScan {
        id_column: reader.id_column().to_owned(),
        ids: HashMap::with_capacity(input.line_count().min(MAX_PRESIZED_IDS) as usize),
        ..InputScan::default()
    };
    let mut row_problems = Vec::new();
    while let Some(record) = reader.next_record() {
        result.rows += 1;
        match record? {
            Record::Valid(row) => result.add_valid(&row),
            Record::Invalid(invalid) => {
                result.invalid_rows += 1;
                result.problem_count += invalid.problems.len() as u64;
                let room = PROBLEMS_SHOWN.saturating_sub(row_problems.len());
                row_problems.extend(invalid.problems.into_iter().take(room));
            }
        }
    }
    result.finish(row_problems);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(data: &str) -> Vec<u64> {
        let options = InputOptions::new(InputSource::Stdin, b',');
        let mut reader = RowReader::new(data.as_bytes(), &options, "-").unwrap();
        std::iter::from_fn(|| reader.next_record())
            .map(|r| r.unwrap().line())
            .collect()
    }

    #[test]
    fn lines_are_physical_lines_where_records_start() {
        assert_eq!(lines_of("id,flag,reason\n1,y,a\n2,y,b"), vec![2, 3]);
        assert_eq!(
            lines_of("\u{feff}id,flag,reason\r\n1,y,a\r\n2,y,\"q\r\nq\"\r\n3,y,c\r\n"),
            vec![2, 3, 5]
        );
        assert_eq!(
            lines_of("id,flag,reason\n\n1,y,a\n\n\n2,y,b\n,,\n4,y,c\n"),
            vec![3, 6, 7, 8]
        );
        assert_eq!(
            lines_of("id,flag,reason\n1,y,\"x\n\ny\"\n\n2,y,z"),
            vec![2, 6]
        );
        assert_eq!(
            lines_of("id,flag,reason\r\r\n1,y,a"),
            vec![3],
            "a lone CR ends a line"
        );
    }

    #[test]
    fn ids_parse_within_range() {
        assert_eq!(parse_id(" 42 "), Ok(42));
        assert_eq!(parse_id("9007199254740991"), Ok(MAX_ID));
        assert!(parse_id("9007199254740992").is_err());
        assert!(parse_id("0").is_err());
        assert!(parse_id("-3").is_err());
        assert!(parse_id("1e3").is_err());
        assert!(parse_id("").is_err());
        assert!(parse_id("99999999999999999999999").is_err());
    }

    #[test]
    fn flags_parse_in_any_case() {
        for yes in ["true", "YES", " y ", "1", "True"] {
            assert_eq!(parse_flag(yes), Ok(true), "{yes}");
        }
        for no in ["false", "No", "n", "0 "] {
            assert_eq!(parse_flag(no), Ok(false), "{no}");
        }
        assert!(parse_flag("maybe").is_err());
        assert!(parse_flag("").is_err());
    }

    #[test]
    fn headers_normalize() {
        assert_eq!(
            normalize_header("Service Account_Reason"),
            "serviceaccountreason"
        );
        assert_eq!(normalize_header("\u{feff}ID"), "id");
        assert_eq!(normalize_header("service-account"), "serviceaccount");
    }

    #[test]
    fn utf16_length_counts_surrogate_pairs() {
        assert_eq!(utf16_len("abc"), 3);
        assert_eq!(utf16_len("é"), 1);
        assert_eq!(utf16_len("😀"), 2);
        assert_eq!(utf16_len(&"😀".repeat(15_001)), 30_002);
    }
}

#[cfg(test)]
mod hostile_input {
    use super::*;
    use proptest::prelude::*;

    fn options(delimiter: u8) -> InputOptions {
        InputOptions::new(InputSource::Stdin, delimiter)
    }

    /// Every record of pass two has exactly one outcome, and pass one counted the same
    /// records; lines only go forward.
    fn check(data: &[u8], delimiter: u8) {
        let options = options(delimiter);
        let Ok((scan, outcomes)) = check_bytes(data, &options) else {
            return;
        };
        assert_eq!(scan.rows, outcomes.len() as u64);
        assert!(scan.invalid_rows <= scan.rows);
        let mut reader = InputFile::from_reader(&mut &data[..], "t")
            .unwrap()
            .reader(&options, None)
            .unwrap();
        let mut last = 1;
        while let Some(Ok(record)) = reader.next_record() {
            assert!(record.line() > last, "line {} after {last}", record.line());
            last = record.line();
        }
    }

    fn csv_like() -> impl Strategy<Value = Vec<u8>> {
        let cell = prop_oneof![
            Just(b"1".to_vec()),
            Just(b"true".to_vec()),
            Just(b"\"".to_vec()),
            Just(b"\"a,\"\"b\"\"\"".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b",".to_vec()),
            Just(vec![0xff, 0xfe]),
            Just("😀".as_bytes().to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
            "[0-9]{1,20}".prop_map(|s| s.into_bytes()),
        ];
        proptest::collection::vec(cell, 0..200).prop_map(|cells| {
            let mut data = b"id,serviceAccount,reason\n".to_vec();
            cells.into_iter().for_each(|c| data.extend(c));
            data
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            check(&data, b',');
        }

        #[test]
        fn csv_shaped_noise_never_panics(data in csv_like(), semicolon in any::<bool>()) {
            check(&data, if semicolon { b';' } else { b',' });
        }

        #[test]
        fn thousands_of_columns(columns in 1usize..5000, rows in 0usize..5) {
            let mut data = b"id,flag,reason".to_vec();
            for i in 3..columns {
                data.extend(format!(",extra{i}").as_bytes());
            }
            data.push(b'\n');
            for row in 0..rows {
                data.extend(format!("{},true,r", row + 1).as_bytes());
                data.extend(std::iter::repeat_n(b',', columns.saturating_sub(3)));
                data.push(b'\n');
            }
            let (scan, outcomes) = check_bytes(&data, &options(b',')).unwrap();
            prop_assert_eq!(outcomes.len(), rows);
            prop_assert_eq!(scan.invalid_rows, 0);
        }
    }

    #[test]
    fn huge_fields_and_unbalanced_quotes_are_invalid_rows() {
        let mut data = b"id,flag,reason\n1,true,ok\n2,true,".to_vec();
        data.extend(std::iter::repeat_n(b'x', 3 * MAX_RECORD_BYTES));
        // An unclosed quote runs to the end: one record, too large here.
        data.extend(b"\n3,true,\"never closed\n");
        data.extend(std::iter::repeat_n(b'y', 2 * MAX_RECORD_BYTES));
        data.extend(b"\n4,true,ok\n");
        let (scan, outcomes) = check_bytes(&data, &options(b',')).unwrap();
        assert_eq!(outcomes, vec![(0, true), (1, false), (2, false)]);
        assert_eq!(scan.first_problems[0].line, 3);
        assert!(scan.first_problems[0].message.contains("larger than 1 MiB"));
    }
}
