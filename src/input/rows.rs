//! Pass two's unit: one record read, its columns found, its cells validated.

use std::io::Read;
use std::sync::Arc;

use super::records::{Fields, RecordKind, RecordReader, Records, MAX_FIELDS, MAX_RECORD_BYTES};
use super::{InputError, InputOptions, InvalidRow, Problem, Record, ECHO_LIMIT};
use crate::model::{utf16_len, Baseline, Lookup, LookupKey, Row, RowId, MAX_ID, MAX_REASON_UNITS};
use crate::text::{csv_text, shorten};

/// Header names compare ignoring case, spaces and punctuation: `Service Account?` is
/// `serviceaccount`.
pub(crate) fn normalize_header(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A header that looks like an id but is none of the id column's names: its last word is
/// "id" (`Identity ID`, `identityId`, `user_id`; in Drata, `identityId` is the provider's
/// id, not the numeric one). Words end at punctuation, spaces and a lower-to-upper case
/// change, so `Paid` and `Valid` are no ids; a connection's id names a connection, not
/// an identity.
fn looks_like_an_id(header: &str) -> bool {
    let mut words: Vec<String> = Vec::new();
    let mut previous_lower = false;
    for c in header.chars() {
        if !c.is_alphanumeric() {
            previous_lower = false;
            words.push(String::new());
            continue;
        }
        if c.is_uppercase() && previous_lower {
            words.push(String::new());
        }
        previous_lower = c.is_lowercase();
        match words.last_mut() {
            Some(word) => word.extend(c.to_lowercase()),
            None => words.push(c.to_lowercase().collect()),
        }
    }
    words.retain(|w| !w.is_empty());
    let connection = words
        .first()
        .is_some_and(|w| matches!(w.as_str(), "connection" | "client"));
    words.len() > 1 && words.last().is_some_and(|w| w == "id") && !connection
}

/// The columns that name the identity.
#[derive(Debug, Clone)]
enum IdentityColumns {
    /// Drata's numeric id; a username or email beside it is checked against the listing.
    Id {
        id: (usize, String),
        username: Option<(usize, String)>,
        email: Option<(usize, String)>,
    },
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
    /// The state the export read (`drataServiceAccount`, `drataReason`, `exportedAt`).
    baseline: BaselineColumns,
    headers: Vec<String>,
}

/// The export's baseline columns, when the input has them.
#[derive(Debug, Clone, Default)]
struct BaselineColumns {
    flag: Option<(usize, String)>,
    reason: Option<(usize, String)>,
    exported_at: Option<(usize, String)>,
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
    let username = find_column(headers, path, "username", &["username".to_owned()])?;
    let email = find_column(headers, path, "email", &["email".to_owned()])?;
    let identity = match id {
        Some(id) => IdentityColumns::Id {
            id,
            username,
            email,
        },
        None if options.id_column.is_some() => return Err(missing("id", &id_names)),
        None => {
            // Never fall back to names while a column may hold the ids.
            if let Some(header) = headers.iter().find(|h| looks_like_an_id(h)) {
                return Err(InputError::IdLikeColumn {
                    path: path.to_owned(),
                    header: header.trim().to_owned(),
                });
            }
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
    let any_default = options.default_reason.is_some()
        || options.reason_if_true.is_some()
        || options.reason_if_false.is_some();
    if reason.is_none() && (!any_default || options.reason_column.is_some()) {
        return Err(missing("reason", &reason_names));
    }
    let named = |name: &str| vec![normalize_header(name)];
    let baseline = BaselineColumns {
        flag: find_column(
            headers,
            path,
            "baseline flag",
            &named("drataServiceAccount"),
        )?,
        reason: find_column(headers, path, "baseline reason", &named("drataReason"))?,
        exported_at: find_column(headers, path, "export time", &named("exportedAt"))?,
    };
    Ok(Columns {
        identity,
        flag,
        reason,
        baseline,
        headers: headers.iter().map(|h| h.trim().to_owned()).collect(),
    })
}

/// Why a record could not be read as a row.
#[derive(Debug, Clone, Copy)]
enum Skipped {
    TooLarge,
    Unclosed,
}

/// The reasons used where a reason cell is blank, trimmed.
#[derive(Debug, Clone, Default)]
struct ReasonDefaults {
    any: Option<String>,
    if_true: Option<String>,
    if_false: Option<String>,
    blank_false_ok: bool,
}

impl ReasonDefaults {
    fn of(options: &InputOptions) -> Self {
        let trimmed = |r: &Option<String>| {
            r.as_ref()
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty())
        };
        Self {
            any: trimmed(&options.default_reason),
            if_true: trimmed(&options.reason_if_true),
            if_false: trimmed(&options.reason_if_false),
            blank_false_ok: options.blank_false_reasons,
        }
    }

    /// The default for a row with this flag: the flag's own, else `--reason`.
    fn for_flag(&self, flag: Option<bool>) -> Option<&str> {
        let own = match flag {
            Some(true) => self.if_true.as_deref(),
            Some(false) => self.if_false.as_deref(),
            None => None,
        };
        own.or(self.any.as_deref())
    }
}

/// Streams records, each validated on its own (duplicates need [`InputScan`]).
pub(crate) struct RowReader<R: Read> {
    records: Records<R>,
    columns: Columns,
    defaults: ReasonDefaults,
    path: String,
    record: Fields,
    delimiter: u8,
    pub(super) lookup: Option<Arc<dyn Lookup>>,
    /// CSV cells lose the one `'` our writers add; a workbook's typed cells never do.
    csv: bool,
    /// The first `exportedAt` cell read.
    exported_at: Option<String>,
}

impl<R: Read> RowReader<R> {
    pub(crate) fn new(input: R, options: &InputOptions, path: &str) -> Result<Self, InputError> {
        let delimiter = options.delimiter.unwrap_or(b',');
        Self::from_records(
            Records::Csv(Box::new(RecordReader::new(input, delimiter))),
            options,
            path,
        )
    }

    /// Reads the header from `records`, then streams the rows.
    pub(crate) fn from_records(
        mut records: Records<R>,
        options: &InputOptions,
        path: &str,
    ) -> Result<Self, InputError> {
        let delimiter = options.delimiter.unwrap_or(b',');
        let mut header = Fields::default();
        let start = records.read(&mut header).map_err(|source| InputError::Io {
            path: path.to_owned(),
            source,
        })?;
        // Header messages name the line the header is on (a sheet's may be lower down).
        let at = format!("{path}: line {}", start.map_or(1, |s| s.line));
        match start.map(|s| s.kind) {
            None => {
                return Err(InputError::Empty {
                    path: path.to_owned(),
                })
            }
            Some(RecordKind::TooLarge { .. } | RecordKind::Unclosed { .. }) => {
                return Err(InputError::HeaderTooLarge { path: at })
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
            .map_err(|_| InputError::HeaderEncoding { path: at.clone() })?;
        let columns = resolve_columns(&headers, options, &at)?;
        let csv = matches!(records, Records::Csv(_));
        Ok(Self {
            csv,
            exported_at: None,
            records,
            columns,
            defaults: ReasonDefaults::of(options),
            path: path.to_owned(),
            record: Fields::default(),
            delimiter,
            lookup: None,
        })
    }

    /// The name of the column that names identities, as written in the header.
    pub(crate) fn id_column(&self) -> &str {
        match &self.columns.identity {
            IdentityColumns::Id { id: (_, name), .. } => name,
            IdentityColumns::Lookup {
                username, email, ..
            } => username
                .as_ref()
                .or(email.as_ref())
                .map_or("id", |(_, name)| name),
        }
    }

    /// True when the listing must be read before the rows can be checked: rows name
    /// identities by username or email, or name them beside the id.
    pub(crate) fn needs_lookup(&self) -> bool {
        match &self.columns.identity {
            IdentityColumns::Lookup { .. } => true,
            IdentityColumns::Id {
                username, email, ..
            } => username.is_some() || email.is_some(),
        }
    }

    /// The field delimiter in use.
    pub(crate) fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Which header each role was taken from, for the operator to check.
    pub(crate) fn column_mapping(&self) -> Vec<(&'static str, String)> {
        let name = |column: &Option<(usize, String)>| column.as_ref().map(|(_, n)| n.clone());
        let roles = match &self.columns.identity {
            IdentityColumns::Id {
                id,
                username,
                email,
            } => vec![
                ("id", Some(id.1.clone())),
                ("username (checked against the id)", name(username)),
                ("email (checked against the id)", name(email)),
            ],
            IdentityColumns::Lookup {
                username,
                email,
                connection,
            } => vec![
                ("username", name(username)),
                ("email", name(email)),
                ("connection", name(connection)),
            ],
        };
        roles
            .into_iter()
            .chain([
                ("flag", Some(self.columns.flag.1.clone())),
                ("reason", name(&self.columns.reason)),
            ])
            .filter_map(|(role, header)| Some((role, header?)))
            .collect()
    }

    /// A trimmed, non-empty UTF-8 cell, without the spreadsheet-safety prefix our own
    /// CSVs add (an export's `'=name` is the name `=name`).
    fn text(&self, column: &Option<(usize, String)>) -> Option<String> {
        let (index, _) = column.as_ref()?;
        match self.cell(*index)? {
            Ok(text) => Some(self.unquoted(text).to_owned()).filter(|t| !t.is_empty()),
            Err(()) => None,
        }
    }

    /// A text cell as the review reads it: trimmed; in CSV, without our writers' `'`.
    fn unquoted<'a>(&self, text: &'a str) -> &'a str {
        if self.csv {
            csv_text(text)
        } else {
            text.trim()
        }
    }

    /// When the file was exported, as its first `exportedAt` cell says.
    pub(crate) fn exported_at(&self) -> Option<&str> {
        self.exported_at.as_deref()
    }

    /// The row's baseline: `None` when the input has no baseline columns or the row's
    /// cells are empty (a row added by hand is compared two-way).
    fn baseline(&self, problem: &mut impl FnMut(&str, String)) -> Option<Baseline> {
        let (index, name) = self.columns.baseline.flag.as_ref()?;
        let cell = self.cell(*index)?.ok()?;
        if cell.trim().is_empty() {
            return None;
        }
        let marked = parse_flag(cell)
            .map_err(|e| {
                problem(
                    name,
                    format!("{e} (this column is Drata's state at export: do not edit it)"),
                )
            })
            .ok()?;
        let reason = self.text(&self.columns.baseline.reason).unwrap_or_default();
        Some(Baseline::new(marked, &reason))
    }

    /// The row's id: parsed from the id column, or resolved from username/email.
    fn identity(&self, problem: &mut impl FnMut(&str, String)) -> (Option<RowId>, String) {
        match &self.columns.identity {
            IdentityColumns::Id {
                id: (index, name),
                username,
                email,
            } => {
                let id = match self.cell(*index) {
                    None => None,
                    Some(Err(())) => {
                        problem(name, "not valid UTF-8".to_owned());
                        None
                    }
                    Some(Ok(text)) => parse_id(text)
                        .map_err(|e| problem(name, e.to_string()))
                        .ok(),
                };
                let key = LookupKey {
                    username: self.text(username),
                    email: self.text(email),
                    connection: None,
                };
                // A name beside the id must be that identity's: a typo in the id would
                // otherwise mark somebody else.
                let checked = match (id, &self.lookup) {
                    (Some(id), Some(lookup)) => lookup
                        .check(id, &key)
                        .map_err(|e| problem(name, e.to_string()))
                        .ok(),
                    _ => Some(()),
                };
                (
                    id.filter(|_| checked.is_some()).map(RowId::Id),
                    self.echo(*index),
                )
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
                    None => (Some(RowId::Unresolved), String::new()),
                    Some(lookup) => match lookup.resolve(&key) {
                        Ok(id) => (Some(RowId::Id(id)), id.to_string()),
                        Err(error) => {
                            problem(&column, error.to_string());
                            (None, String::new())
                        }
                    },
                }
            }
        }
    }

    /// The next non-blank record, or `None` at the end.
    pub(crate) fn next_record(&mut self) -> Option<Result<Record, InputError>> {
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
            match start.kind {
                RecordKind::TooLarge { field } => {
                    return Some(Ok(self.skipped(line, field, Skipped::TooLarge)))
                }
                RecordKind::Unclosed { field } => {
                    return Some(Ok(self.skipped(line, field, Skipped::Unclosed)))
                }
                RecordKind::Complete => {}
            }
            // A line of spaces is blank, and so is a row whose cells are all empty
            // (",,,": spreadsheets end their exports with such rows): neither is a row.
            if self.record.iter().all(|f| f.trim_ascii().is_empty()) {
                continue;
            }
            if self.exported_at.is_none() {
                self.exported_at = self.text(&self.columns.baseline.exported_at);
            }
            return Some(Ok(self.validate(line)));
        }
    }

    /// A record that cannot be read as a row, named by the column being read.
    fn skipped(&self, line: u64, field: usize, why: Skipped) -> Record {
        let column = self
            .columns
            .headers
            .get(field)
            .cloned()
            .unwrap_or_else(|| format!("{} (no header)", field + 1));
        Record::Invalid(InvalidRow {
            line,
            id_cell: String::new(),
            flag: None,
            reason_cell: String::new(),
            problems: vec![Problem {
                line,
                column,
                message: match why {
                    Skipped::TooLarge => format!(
                        "the row is larger than {} MiB or has more than {MAX_FIELDS} fields (an unclosed quote?); it was skipped",
                        MAX_RECORD_BYTES / (1024 * 1024)
                    ),
                    Skipped::Unclosed => "a quote opened in this row is never closed, so every line after it, to the end of the file, is inside this cell; close the quote".to_owned(),
                },
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
                Err(error) => {
                    problem(flag_name, error.to_string());
                    None
                }
            },
        };

        let reason = self.reason(flag, &mut problem);
        let baseline = self.baseline(&mut problem);

        match (id, flag, reason, problems.is_empty()) {
            (Some(id), Some(flag), Some(reason), true) => Record::Valid(Row {
                line,
                id,
                flag,
                reason,
                baseline,
            }),
            (_, flag, _, _) => Record::Invalid(InvalidRow {
                line,
                id_cell,
                // The report's service_account is true/false or empty; the bad cell
                // itself is quoted in the problem.
                flag,
                reason_cell: self
                    .columns
                    .reason
                    .as_ref()
                    .map(|(index, _)| self.echo(*index))
                    .filter(|r| !r.is_empty())
                    .or_else(|| self.defaults.for_flag(flag).map(str::to_owned))
                    .unwrap_or_default(),
                problems,
            }),
        }
    }

    fn reason(&self, flag: Option<bool>, problem: &mut impl FnMut(&str, String)) -> Option<String> {
        let column_name = self
            .columns
            .reason
            .as_ref()
            .map_or("reason", |(_, name)| name.as_str());
        let default = self.defaults.for_flag(flag);
        let cell = match &self.columns.reason {
            None => None,
            Some((index, name)) => match self.cell(*index) {
                // A short row, already reported as such.
                None if default.is_none() => return None,
                None => None,
                Some(Err(())) => {
                    problem(name, "not valid UTF-8".to_owned());
                    return None;
                }
                // The prefix our CSVs (export, undo) put before a reason a spreadsheet
                // would run as a formula is not part of the reason.
                Some(Ok(text)) => Some(self.unquoted(text)).filter(|t| !t.is_empty()),
            },
        };
        let Some(reason) = cell.or(default) else {
            if flag == Some(false) && self.defaults.blank_false_ok {
                // Decided against the current state: see `InputOptions::blank_false_reasons`.
                return Some(String::new());
            }
            problem(
                column_name,
                "a reason is required (fill the cell, or pass --reason, --reason-if-true or --reason-if-false)"
                    .to_owned(),
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

/// Why a cell does not hold what its column needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CellError {
    #[error("the id is empty")]
    EmptyId,
    #[error("{0:?} is not a decimal integer")]
    NotAnInteger(String),
    #[error("{0} is out of range (1 to {MAX_ID})")]
    IdOutOfRange(String),
    #[error("the flag is empty (expected true/false, yes/no, y/n or 1/0)")]
    EmptyFlag,
    #[error("{0:?} is not a flag (expected true/false, yes/no, y/n or 1/0)")]
    NotAFlag(String),
}

/// Cells are quoted in messages up to this many characters.
const QUOTED_CHARS: usize = 40;

/// Parses an id: a decimal integer from 1 to 2^53 - 1, surrounding spaces allowed.
pub(crate) fn parse_id(text: &str) -> Result<u64, CellError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(CellError::EmptyId);
    }
    if !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CellError::NotAnInteger(shorten(trimmed, QUOTED_CHARS)));
    }
    match trimmed.parse::<u64>() {
        Ok(id) if (1..=MAX_ID).contains(&id) => Ok(id),
        _ => Err(CellError::IdOutOfRange(shorten(trimmed, QUOTED_CHARS))),
    }
}

/// Parses a flag: true/false, yes/no, y/n, 1/0, any case, surrounding spaces allowed.
pub(crate) fn parse_flag(text: &str) -> Result<bool, CellError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Ok(true),
        "false" | "no" | "n" | "0" => Ok(false),
        "" => Err(CellError::EmptyFlag),
        _ => Err(CellError::NotAFlag(shorten(text.trim(), QUOTED_CHARS))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::InputSource;

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
            vec![3, 6, 8],
            "a row of empty cells is no row"
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
    fn a_reason_loses_the_spreadsheet_safety_prefix_our_files_add() {
        let options = InputOptions::new(InputSource::Stdin, b',');
        let data = "id,flag,reason\n1,y,'-- legacy CI\n2,y,'=x\n3,y,'quoted'\n4,y, '@ops \n";
        let mut reader = RowReader::new(data.as_bytes(), &options, "-").unwrap();
        let reasons: Vec<String> = std::iter::from_fn(|| reader.next_record())
            .map(|r| match r.unwrap() {
                Record::Valid(row) => row.reason,
                Record::Invalid(bad) => panic!("{bad:?}"),
            })
            .collect();
        assert_eq!(reasons, ["-- legacy CI", "=x", "'quoted'", "@ops"]);
    }

    #[test]
    fn id_like_headers_are_those_whose_last_word_is_id() {
        for id_like in [
            "Identity ID",
            "identityId",
            "user_id",
            "User-ID",
            "AWS Account Id",
        ] {
            assert!(looks_like_an_id(id_like), "{id_like}");
        }
        for other in [
            "Paid",
            "Valid",
            "connectionId",
            "Connection ID",
            "id",
            "ID",
            "Reason",
        ] {
            assert!(!looks_like_an_id(other), "{other}");
        }
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
}
