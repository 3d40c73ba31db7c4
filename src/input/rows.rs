//! One record of the input: its columns found (by header name, every field's among them),
//! its cells validated into a typed row or an invalid one naming the line and the column.

use std::io::Read;
use std::sync::Arc;

use super::records::{Fields, RecordKind, RecordReader, Records, MAX_FIELDS, MAX_RECORD_BYTES};
use super::sheet::{cell_name, Role};
use super::{InputError, InputOptions, InvalidRow, Problem, Record, ECHO_LIMIT};
use crate::field::{AccessField, ACCESS};
use crate::model::{
    utf16_len, AccessRequest, Baseline, Link, LinkRequest, Lookup, LookupKey, Row, RowId, MAX_ID,
    MAX_REASON_UNITS, UNDO_OF_COLUMN,
};
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
    let identity = words.len() == 1 && words[0] == "identity";
    identity || (words.len() > 1 && words.last().is_some_and(|w| w == "id") && !connection)
}

/// True when a row holds a column that names identities (id, username, email, or one
/// that looks like an id) and a flag column: the header the search looks for.
fn is_header(headers: &[String], options: &InputOptions) -> bool {
    let normalized: Vec<String> = headers.iter().map(|h| normalize_header(h)).collect();
    let has = |names: &[String]| normalized.iter().any(|h| names.contains(h));
    let identity = has(&column_names(&options.id_column, ID_NAMES))
        || has(&["username".to_owned(), "email".to_owned()])
        || headers.iter().any(|h| looks_like_an_id(h));
    identity && has(&column_names(&options.flag_column, FLAG_NAMES))
}

/// The default names of each column, as the header may write them.
const ID_NAMES: &[&str] = &["id"];
const FLAG_NAMES: &[&str] = &["serviceAccount", "flag"];
const REASON_NAMES: &[&str] = &[
    "serviceAccountReason",
    "reason",
    "justification",
    "rationale",
];
const LINK_NAMES: &[&str] = &["linkedUser"];
/// The export's baseline columns the link's review reads.
const LINK_BASELINE_NAME: &str = "drataLinkedUser";
/// The header is searched for among this many non-empty rows.
const HEADER_SEARCH_ROWS: usize = 20;

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
    link: LinkColumns,
    /// The access toggles' columns the header has (`adminAccess`…, `crate::field`).
    access: Vec<AccessColumns>,
    /// The input is an undo file (it has the `undoOf` column): its cells are exact text,
    /// and it restores states Drata held.
    undo_file: bool,
    headers: Vec<String>,
}

/// One access toggle's column and its baseline beside it.
#[derive(Debug, Clone)]
struct AccessColumns {
    field: &'static AccessField,
    column: (usize, String),
    /// `drataAdminAccess`…: the toggle at export.
    baseline: Option<(usize, String)>,
}

/// The link column (`linkedUser`) and its baseline beside it.
#[derive(Debug, Clone, Default)]
struct LinkColumns {
    link: Option<(usize, String)>,
    /// `drataLinkedUser`: the link at export.
    baseline: Option<(usize, String)>,
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

/// Says that no column plays `role`, with the names looked for and the option that names it.
fn lacks(missing: &mut Vec<String>, role: &str, names: &[String], option: &str) {
    missing.push(format!(
        "no {role} column (looked for {}; pass {option} NAME)",
        names.join(" or ")
    ));
}

fn resolve_columns(
    headers: &[String],
    options: &InputOptions,
    path: &str,
) -> Result<Columns, InputError> {
    let mut missing: Vec<String> = Vec::new();
    let identity = identity_columns(headers, options, path, &mut missing)?;
    let flag_names = column_names(&options.flag_column, FLAG_NAMES);
    let reason_names = column_names(&options.reason_column, REASON_NAMES);
    let flag = find_column(headers, path, "service-account flag", &flag_names)?;
    if flag.is_none() {
        lacks(
            &mut missing,
            "service-account flag",
            &flag_names,
            "--flag-column",
        );
    }
    let reason = find_column(headers, path, "reason", &reason_names)?;
    // Without a reason column every row needs --reason; a named column must exist.
    let any_default = options.default_reason.is_some()
        || options.reason_if_true.is_some()
        || options.reason_if_false.is_some();
    if reason.is_none() && (!any_default || options.reason_column.is_some()) {
        lacks(&mut missing, "reason", &reason_names, "--reason-column");
    }
    let baseline = baseline_columns(headers, path)?;
    let link_names = column_names(&options.link_column, LINK_NAMES);
    let link = LinkColumns {
        link: find_column(headers, path, "linked user", &link_names)?,
        baseline: find_column(
            headers,
            path,
            "linked user at export",
            &[normalize_header(LINK_BASELINE_NAME)],
        )?,
    };
    if link.link.is_none() && options.link_column.is_some() {
        lacks(&mut missing, "linked user", &link_names, "--link-column");
    }
    let access = access_columns(headers, path)?;
    match (identity, flag) {
        (Some(identity), Some(flag)) if missing.is_empty() => Ok(Columns {
            identity,
            flag,
            reason,
            baseline,
            link,
            access,
            undo_file: find_column(headers, path, "undo", &[normalize_header(UNDO_OF_COLUMN)])?
                .is_some(),
            headers: headers.iter().map(|h| h.trim().to_owned()).collect(),
        }),
        _ => Err(InputError::MissingColumns {
            path: path.to_owned(),
            missing: missing.join("; "),
            found: headers_seen(headers),
        }),
    }
}

/// The access toggles' columns the header has, each with its baseline column.
fn access_columns(headers: &[String], path: &str) -> Result<Vec<AccessColumns>, InputError> {
    let mut found = Vec::new();
    for field in &ACCESS {
        let named = |name: &str| vec![normalize_header(name)];
        let Some(column) = find_column(headers, path, field.words, &named(field.column))? else {
            continue;
        };
        let baseline = find_column(
            headers,
            path,
            field.baseline_column,
            &named(field.baseline_column),
        )?;
        found.push(AccessColumns {
            field,
            column,
            baseline,
        });
    }
    Ok(found)
}

/// The export's baseline columns (`drataServiceAccount`, `drataReason`, `exportedAt`),
/// those the header has.
fn baseline_columns(headers: &[String], path: &str) -> Result<BaselineColumns, InputError> {
    let named = |name: &str| vec![normalize_header(name)];
    Ok(BaselineColumns {
        flag: find_column(
            headers,
            path,
            "baseline flag",
            &named("drataServiceAccount"),
        )?,
        reason: find_column(headers, path, "baseline reason", &named("drataReason"))?,
        exported_at: find_column(headers, path, "export time", &named("exportedAt"))?,
    })
}

/// The headers as a message lists them.
fn headers_seen(headers: &[String]) -> String {
    if headers.is_empty() {
        return "no columns".to_owned();
    }
    headers
        .iter()
        .map(|h| format!("{h:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns that name the identity: the id, else username or email. `None` (with the
/// reason in `missing`) when none does.
fn identity_columns(
    headers: &[String],
    options: &InputOptions,
    path: &str,
    missing: &mut Vec<String>,
) -> Result<Option<IdentityColumns>, InputError> {
    let id_names = column_names(&options.id_column, ID_NAMES);
    let id = find_column(headers, path, "id", &id_names)?;
    let username = find_column(headers, path, "username", &["username".to_owned()])?;
    let email = find_column(headers, path, "email", &["email".to_owned()])?;
    Ok(match id {
        Some(id) => Some(IdentityColumns::Id {
            id,
            username,
            email,
        }),
        None if options.id_column.is_some() => {
            lacks(missing, "id", &id_names, "--id-column");
            None
        }
        // Never fall back to names while a column may hold the ids.
        None => match headers.iter().find(|h| looks_like_an_id(h)) {
            Some(header) => {
                let header = header.trim();
                missing.push(format!(
                    "no id column, and the header {header:?} looks like an id: Drata's numeric identity id is expected in a column named id (Drata's identityId is the provider's own id, not this one); if {header:?} holds Drata's numeric ids, pass --id-column {header:?}"
                ));
                None
            }
            None if username.is_none() && email.is_none() => {
                lacks(
                    missing,
                    "id",
                    &["id (or username, or email)".to_owned()],
                    "--id-column",
                );
                None
            }
            None => Some(IdentityColumns::Lookup {
                username,
                email,
                connection: find_column(
                    headers,
                    path,
                    "connection",
                    &["connection".to_owned(), "clienttype".to_owned()],
                )?,
            }),
        },
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
    /// The first `exportedAt` cell read.
    exported_at: Option<String>,
    header_line: u64,
    title_rows: Vec<u64>,
}

/// The header row found.
struct Header {
    line: u64,
    names: Vec<String>,
    /// True when no row looked like a header and the first one is used.
    searched: bool,
}

/// `review.csv: line 3`, or for a sheet `review.xlsx: line 3 of sheet "Notes" (the
/// workbook has "Notes", "Review")`: header messages name where they looked.
fn header_place<R>(records: &Records<R>, path: &str, line: u64) -> String {
    match records.sheet() {
        Some(sheet) => format!("{path}: line {line} of {}", sheet.described()),
        None => format!("{path}: line {line}"),
    }
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

    /// Finds the header in `records` (see [`Self::find_header`]), then streams the rows.
    pub(crate) fn from_records(
        mut records: Records<R>,
        options: &InputOptions,
        path: &str,
    ) -> Result<Self, InputError> {
        let delimiter = options.delimiter.unwrap_or(b',');
        let (header, title_rows) = Self::find_header(&mut records, options, path)?;
        let at = header_place(&records, path, header.line);
        let columns = resolve_columns(&header.names, options, &at).map_err(|error| {
            match (error, header.searched) {
                // The search found nothing: say where it looked.
                (InputError::MissingColumns { path, missing, found }, true) => {
                    InputError::MissingColumns {
                        path,
                        missing: format!(
                            "{missing} (no header among the first {HEADER_SEARCH_ROWS} non-empty rows: if it is lower down, pass --header-row N)"
                        ),
                        found,
                    }
                }
                (error, _) => error,
            }
        })?;
        Ok(Self {
            exported_at: None,
            records,
            columns,
            defaults: ReasonDefaults::of(options),
            path: path.to_owned(),
            record: Fields::default(),
            delimiter,
            lookup: None,
            header_line: header.line,
            title_rows,
        })
    }

    /// The header: row `--header-row`, else the first of the first
    /// [`HEADER_SEARCH_ROWS`] non-empty rows that names identities and holds a flag
    /// (title rows above it are skipped), else the first non-empty row (whose missing
    /// columns are then reported). Returns the lines of the title rows skipped.
    fn find_header(
        records: &mut Records<R>,
        options: &InputOptions,
        path: &str,
    ) -> Result<(Header, Vec<u64>), InputError> {
        let mut fields = Fields::default();
        let mut first: Option<Header> = None;
        let mut seen = Vec::new();
        loop {
            let start = records.read(&mut fields).map_err(|source| InputError::Io {
                path: path.to_owned(),
                source,
            })?;
            let Some(start) = start else { break };
            let at = || header_place(records, path, start.line);
            if !matches!(start.kind, RecordKind::Complete) {
                return Err(InputError::HeaderTooLarge { path: at() });
            }
            if fields.iter().all(|f| f.trim_ascii().is_empty()) {
                continue;
            }
            if let Some(row) = options.header_row {
                match start.line.cmp(&row) {
                    std::cmp::Ordering::Less => continue,
                    std::cmp::Ordering::Greater => break,
                    std::cmp::Ordering::Equal => {}
                }
            }
            let names = fields
                .iter()
                .map(|h| std::str::from_utf8(h).map(str::to_owned))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| InputError::HeaderEncoding { path: at() })?;
            let header = Header {
                line: start.line,
                names,
                searched: false,
            };
            if options.header_row.is_some() || is_header(&header.names, options) {
                return Ok((header, seen));
            }
            seen.push(start.line);
            first.get_or_insert(header);
            if seen.len() == HEADER_SEARCH_ROWS {
                break;
            }
        }
        match (options.header_row, first) {
            (Some(row), _) => Err(InputError::HeaderRowEmpty {
                path: path.to_owned(),
                row,
            }),
            (None, Some(first)) => Ok((
                Header {
                    searched: true,
                    ..first
                },
                Vec::new(),
            )),
            (None, None) => Err(InputError::Empty {
                path: path.to_owned(),
            }),
        }
    }

    /// The header's line, and the title rows above it that were skipped.
    pub(crate) fn header_place(&self) -> (u64, &[u64]) {
        (self.header_line, &self.title_rows)
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

    /// The access toggles the rows may decide (their columns are present).
    pub(crate) fn access_fields(&self) -> impl Iterator<Item = &'static AccessField> + '_ {
        self.columns.access.iter().map(|columns| columns.field)
    }

    /// True when the rows decide links: their emails are resolved through the users
    /// listing.
    pub(crate) fn needs_users(&self) -> bool {
        self.columns.link.link.is_some()
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
                ("linked user", name(&self.columns.link.link)),
            ])
            .chain(
                { self.columns.access.iter() }
                    .map(|columns| (columns.field.words, Some(columns.column.1.clone()))),
            )
            .filter_map(|(role, header)| Some((role, header?)))
            .collect()
    }

    /// A trimmed, non-empty UTF-8 cell, without the spreadsheet-safety prefix our own
    /// CSVs add (an export's `'=name` is the name `=name`); a workbook's cells are typed,
    /// and kept as they are.
    fn text(&self, column: &Option<(usize, String)>) -> Option<String> {
        let (index, _) = column.as_ref()?;
        match self.cell(*index)? {
            Ok(text) => Some(self.unquoted(text).to_owned()).filter(|t| !t.is_empty()),
            Err(()) => None,
        }
    }

    /// A text cell as the review reads it: trimmed; in CSV, without our writers' `'`; a
    /// workbook's cells are never stripped.
    fn unquoted<'a>(&self, text: &'a str) -> &'a str {
        match self.records.sheet() {
            Some(_) => text.trim(),
            // An undo file holds exact text: nothing was prefixed, nothing padded.
            None if self.columns.undo_file => text,
            None => csv_text(text),
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

    /// In a sheet, why the typed cell at `index` cannot be read for `role`, named by
    /// cell (`Review!A7 holds a date (2023-03-15), not an id...`).
    fn typed_problem(&self, index: usize, role: Role) -> Option<String> {
        let (sheet, row) = self.records.sheet_row()?;
        let problem = row.get(index)?.problem(role)?;
        let column = u32::try_from(index).unwrap_or(u32::MAX);
        Some(format!("{} {problem}", cell_name(sheet, column, row.line)))
    }

    /// The row's id: parsed from the id column, or resolved from username/email.
    fn identity(&self, problem: &mut impl FnMut(&str, String)) -> (Option<RowId>, String) {
        match &self.columns.identity {
            IdentityColumns::Id {
                id: (index, name),
                username,
                email,
            } => {
                let typed = self.typed_problem(*index, Role::Id);
                let id = match self.cell(*index) {
                    None => None,
                    Some(_) if typed.is_some() => {
                        problem(name, typed.unwrap_or_default());
                        None
                    }
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
            named: None,
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
        match self.record.get(index) {
            Some(bytes) => Some(std::str::from_utf8(bytes).map_err(|_| ())),
            // A sheet's row ends at its last cell: the cells after it are empty.
            None if self.records.sheet().is_some() => Some(Ok("")),
            None => None,
        }
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
        if self.records.sheet().is_some() {
            // A sheet has no short or long rows: a cell past the header is a note beside
            // the table, one before its end an empty cell.
        } else if width < expected {
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
        let typed = self.typed_problem(*flag_index, Role::Flag);
        let flag = match self.cell(*flag_index) {
            None => None,
            Some(_) if typed.is_some() => {
                problem(flag_name, typed.unwrap_or_default());
                None
            }
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
        let exported_marked = baseline.as_ref().map(|b| b.marked);
        let link = self.link(flag, exported_marked, &mut problem);
        let access = self.access(&mut problem);

        match (id, flag, reason, link, problems.is_empty()) {
            (Some(id), Some(flag), Some(reason), Some(link), true) => Record::Valid(Row {
                line,
                id,
                flag,
                reason,
                rule: None,
                baseline,
                link,
                access,
            }),
            (id, flag, _, _, _) => Record::Invalid(InvalidRow {
                line,
                id_cell,
                named: id.and_then(|id| id.id()),
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

    /// The row's link decision: `Some(None)` when the input has no link column; `None`
    /// when the cell is unusable (reported). An email is resolved when the run can (the
    /// users listing was read); a `true` row cannot name a person (Drata refuses to link
    /// an identity marked as a service account).
    /// A row exactly as exported (`exported_marked` is the flag at export) is Drata's own
    /// state, never invalid: the review leaves it alone.
    fn link(
        &self,
        flag: Option<bool>,
        exported_marked: Option<bool>,
        problem: &mut impl FnMut(&str, String),
    ) -> Option<Option<LinkRequest>> {
        let columns = &self.columns.link;
        let Some((index, name)) = &columns.link else {
            return Some(None);
        };
        let cell = match self.cell(*index) {
            Some(Err(())) => {
                problem(name, "not valid UTF-8".to_owned());
                return None;
            }
            Some(Ok(_)) if self.typed_problem(*index, Role::Reason).is_some() => {
                problem(
                    name,
                    self.typed_problem(*index, Role::Reason).unwrap_or_default(),
                );
                return None;
            }
            Some(Ok(text)) => self.unquoted(text).to_owned(),
            None => String::new(),
        };
        let link = Link::from_cell(&cell);
        let baseline = self.link_baseline();
        // A state Drata held (as exported, or as an undo file restores it) is never refused
        // by a rule meant for new decisions.
        let as_exported = exported_marked == Some(true) && baseline.as_ref() == Some(&link)
            || self.columns.undo_file;
        let user = match (&link, &self.lookup) {
            (Link::User(_), _) if flag == Some(true) && !as_exported => {
                problem(
                    name,
                    format!("the row marks a service account and links it to {cell}: Drata does not link a service account to a person (empty the cell, or set the flag to false)"),
                );
                return None;
            }
            (Link::User(_), _) if !cell.contains('@') => {
                problem(
                    name,
                    format!("{cell:?} is not an email: name the Drata user by email, or leave the cell empty for nobody"),
                );
                return None;
            }
            (Link::User(_), Some(lookup)) => match lookup.user(&cell) {
                Ok(user) => Some(user),
                Err(error) => {
                    problem(name, error.to_string());
                    return None;
                }
            },
            _ => None,
        };
        Some(Some(LinkRequest {
            link,
            user,
            baseline,
        }))
    }

    /// The row's access decisions: one per toggle column whose cell is not blank (a blank
    /// cell leaves the toggle alone), each with its baseline when the row carries it.
    fn access(&self, problem: &mut impl FnMut(&str, String)) -> Vec<AccessRequest> {
        let mut decided = Vec::new();
        for columns in &self.columns.access {
            let Some(on) = self.toggle_cell(&columns.column, "", problem) else {
                continue;
            };
            let baseline = columns.baseline.as_ref().and_then(|column| {
                let advice = " (this column is Drata's state at export: do not edit it)";
                self.toggle_cell(column, advice, problem)
            });
            decided.push(AccessRequest {
                access: columns.field.access,
                on,
                baseline,
            });
        }
        decided
    }

    /// A toggle's cell, read as a flag is (`true`/`false`, `WAHR`, a boolean cell…);
    /// `None` when blank, or unusable (reported, `advice` after the message).
    fn toggle_cell(
        &self,
        (index, name): &(usize, String),
        advice: &str,
        problem: &mut impl FnMut(&str, String),
    ) -> Option<bool> {
        if let Some(typed) = self.typed_problem(*index, Role::Flag) {
            problem(name, format!("{typed}{advice}"));
            return None;
        }
        let text = match self.cell(*index)? {
            Ok(text) => text,
            Err(()) => {
                problem(name, "not valid UTF-8".to_owned());
                return None;
            }
        };
        if text.trim().is_empty() {
            return None;
        }
        parse_flag(text)
            .map_err(|e| problem(name, format!("{e}{advice}")))
            .ok()
    }

    /// The link at export, on a row the export wrote (its flag baseline is not empty).
    fn link_baseline(&self) -> Option<Link> {
        let exported = match &self.columns.baseline.flag {
            Some((index, _)) => {
                matches!(self.cell(*index), Some(Ok(text)) if !text.trim().is_empty())
            }
            None => true,
        };
        let (index, _) = self.columns.link.baseline.as_ref().filter(|_| exported)?;
        match self.cell(*index)? {
            Ok(text) => Some(Link::from_cell(self.unquoted(text))),
            Err(()) => None,
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
                Some(Ok(_)) if self.typed_problem(*index, Role::Reason).is_some() => {
                    problem(
                        name,
                        self.typed_problem(*index, Role::Reason).unwrap_or_default(),
                    );
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
    #[error(
        "{0:?} is not a whole number, so it is no id (106, 106.0 and 1.06E+02 are read as 106)"
    )]
    NotWhole(String),
    #[error("{0} is out of range (1 to {MAX_ID})")]
    IdOutOfRange(String),
    #[error(
        "the flag is empty (expected true/false, yes/no, y/n or 1/0; a blank never means false)"
    )]
    EmptyFlag,
    #[error("{:?} is not a flag (expected true/false, yes/no, y/n or 1/0{})", .0, mark_hint(.0))]
    NotAFlag(String),
}

/// A mark that means "ticked" to a person, but not which way to the tool.
fn mark_hint(cell: &str) -> &'static str {
    match cell.to_lowercase().as_str() {
        "x" | "✓" | "✔" | "☑" | "✗" | "✘" | "-" => {
            "; a mark does not say true or false: write true or false"
        }
        _ => "",
    }
}

/// Cells are quoted in messages up to this many characters.
const QUOTED_CHARS: usize = 40;

/// Parses an id: a decimal integer from 1 to 2^53 - 1, surrounding spaces allowed; also
/// as spreadsheets and dataframes write integers (`'106`, `106.0`, `1.06E+02`), when
/// exactly an integer.
pub(crate) fn parse_id(text: &str) -> Result<u64, CellError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(CellError::EmptyId);
    }
    // A text-formatted number typed with its apostrophe.
    let digits = match trimmed.strip_prefix('\'') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => trimmed,
    };
    let integer = match decimal_integer(digits) {
        Some(Ok(integer)) => integer,
        Some(Err(())) => return Err(CellError::NotWhole(shorten(trimmed, QUOTED_CHARS))),
        None => return Err(CellError::NotAnInteger(shorten(trimmed, QUOTED_CHARS))),
    };
    let significant = integer.trim_start_matches('0');
    match significant.parse::<u64>() {
        Ok(id) if significant.len() <= 16 && (1..=MAX_ID).contains(&id) => Ok(id),
        _ => Err(CellError::IdOutOfRange(shorten(trimmed, QUOTED_CHARS))),
    }
}

/// The integer digits of a number written `123`, `123.00` or `1.23E+02`: `None` when it
/// is no number, `Some(Err)` when it is one but not whole. Exact: no floating point.
fn decimal_integer(text: &str) -> Option<Result<String, ()>> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => {
            let exponent = text[at + 1..].strip_prefix('+').unwrap_or(&text[at + 1..]);
            let plain = exponent.strip_prefix('-').unwrap_or(exponent);
            if plain.is_empty() || plain.len() > 4 || !plain.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (&text[..at], exponent.parse::<i64>().ok()?)
        }
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let point = whole.len() as i64 + exponent;
    if point <= 0 {
        return Some(match digits.bytes().all(|b| b == b'0') {
            true => Ok("0".to_owned()),
            false => Err(()),
        });
    }
    let point = usize::try_from(point).ok()?;
    if point >= digits.len() {
        // Beyond any id anyway: keep the digits short.
        let zeros = (point - digits.len()).min(32);
        return Some(Ok(format!("{digits}{}", "0".repeat(zeros))));
    }
    Some(match digits[point..].bytes().all(|b| b == b'0') {
        true => Ok(digits[..point].to_owned()),
        false => Err(()),
    })
}

/// The words spreadsheets write for TRUE and FALSE in other languages (German, French,
/// Spanish, Italian, Dutch, Portuguese, Swedish, Danish and Norwegian, Polish).
const LOCAL_TRUE: [&str; 9] = [
    "wahr",
    "vrai",
    "verdadero",
    "vero",
    "waar",
    "verdadeiro",
    "sant",
    "sand",
    "prawda",
];
const LOCAL_FALSE: [&str; 7] = [
    "falsch", "faux", "falso", "onwaar", "falskt", "falsk", "fałsz",
];

/// Parses a flag: true/false, yes/no, y/n, 1/0, any case, surrounding spaces allowed,
/// and TRUE/FALSE as spreadsheets in other languages write them.
pub(crate) fn parse_flag(text: &str) -> Result<bool, CellError> {
    let word = text.trim().to_lowercase();
    match word.as_str() {
        "true" | "yes" | "y" | "1" => Ok(true),
        "false" | "no" | "n" | "0" => Ok(false),
        "" => Err(CellError::EmptyFlag),
        local if LOCAL_TRUE.contains(&local) => Ok(true),
        local if LOCAL_FALSE.contains(&local) => Ok(false),
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
        // Exactly one ' before ' = + - @ tab CR is the prefix; anything else stays.
        let data = "id,flag,reason\n1,y,''quoted\n2,y,'''x\n3,y,'+1\n4,y,'a\n";
        let mut reader = RowReader::new(data.as_bytes(), &options, "-").unwrap();
        let reasons: Vec<String> = std::iter::from_fn(|| reader.next_record())
            .filter_map(|r| match r.unwrap() {
                Record::Valid(row) => Some(row.reason),
                Record::Invalid(_) => None,
            })
            .collect();
        assert_eq!(reasons, ["'quoted", "''x", "+1", "'a"]);
    }

    fn error_of(data: &str, options: &InputOptions) -> String {
        match RowReader::new(data.as_bytes(), options, "-") {
            Ok(_) => panic!("{data:?} was read"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn every_missing_column_is_named_at_once_with_its_option() {
        let options = InputOptions::new(InputSource::Stdin, b',');
        let error = error_of("Identity,Service account?,Notes\n1,y,a\n", &options);
        assert!(error.contains("\"Identity\" looks like an id"), "{error}");
        assert!(error.contains("pass --id-column \"Identity\""), "{error}");
        assert!(error.contains("no reason column (looked for serviceaccountreason or reason or justification or rationale; pass --reason-column NAME)"), "{error}");
        let error = error_of("name,Notes\n1,a\n", &options);
        for option in ["--id-column", "--flag-column", "--reason-column"] {
            assert!(error.contains(option), "{error}");
        }
        assert!(
            error.contains("no header among the first 20 non-empty rows"),
            "{error}"
        );
        for reason in ["Justification", "rationale"] {
            let data = format!("id,flag,{reason}\n1,y,a\n");
            assert!(
                RowReader::new(data.as_bytes(), &options, "-").is_ok(),
                "{reason}"
            );
        }
    }

    #[test]
    fn the_header_is_found_below_title_rows() {
        let options = InputOptions::new(InputSource::Stdin, b',');
        let data = "Q4 2026 access review - owners: platform\n\n,,\nid,flag,reason\n1,y,a\n";
        let mut reader = RowReader::new(data.as_bytes(), &options, "-").unwrap();
        assert_eq!(reader.header_place(), (4, &[1u64][..]));
        assert_eq!(reader.next_record().unwrap().unwrap().line(), 5);
        let mut fixed = options.clone();
        fixed.header_row = Some(4);
        let reader = RowReader::new(data.as_bytes(), &fixed, "-").unwrap();
        assert_eq!(reader.header_place().0, 4);
        fixed.header_row = Some(2);
        assert!(error_of(data, &fixed).contains("row 2 is empty"));
        fixed.header_row = Some(1);
        assert!(error_of(data, &fixed).contains("line 1: no id column"));
    }

    #[test]
    fn id_like_headers_are_those_whose_last_word_is_id() {
        for id_like in [
            "Identity",
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
        assert_eq!(parse_id("1e3"), Ok(1000));
        for written in ["1.0", "1.00E+00", "'1", " 0001 ", "1.000"] {
            assert_eq!(parse_id(written), Ok(1), "{written}");
        }
        assert_eq!(parse_id("1.06E+02"), Ok(106));
        assert_eq!(parse_id("'44"), Ok(44));
        for fraction in ["106.5", "1.065E+02", "1E-1"] {
            let error = parse_id(fraction).unwrap_err();
            assert!(
                matches!(error, CellError::NotWhole(_)),
                "{fraction}: {error}"
            );
            assert!(error.to_string().contains("not a whole number"), "{error}");
        }
        assert!(
            parse_id("9.007199254740992E+15").is_err(),
            "2^53 is out of range"
        );
        assert_eq!(parse_id("9.007199254740991E+15"), Ok(MAX_ID));
        assert!(parse_id("1E+9999").is_err());
        assert!(parse_id("1.2.3").is_err());
        assert!(parse_id("E5").is_err());
        assert!(parse_id("'=1").is_err());
        assert!(parse_id("").is_err());
        assert!(parse_id("99999999999999999999999").is_err());
        assert_eq!(parse_id("1.06E+0002"), Ok(106), "four exponent digits");
        assert_eq!(parse_id("1E+1000").map_err(kind), Err("out of range"));
        // No number: the error says so, not that it is out of range or a fraction.
        for no_number in ["1E+10000", "1.2.3", "E5", "-3", ".5", "1e", "1ex", "'=1"] {
            assert_eq!(
                parse_id(no_number).map_err(kind),
                Err("not an integer"),
                "{no_number}"
            );
        }
    }

    fn kind(error: CellError) -> &'static str {
        match error {
            CellError::NotAnInteger(_) => "not an integer",
            CellError::NotWhole(_) => "not whole",
            CellError::IdOutOfRange(_) => "out of range",
            _ => "other",
        }
    }

    /// The header names identities by an id column, a username or email column, or a
    /// column that looks like an id, each enough alone; a title row holds none of them.
    #[test]
    fn a_header_names_identities_by_any_one_kind_of_column() {
        let options = InputOptions::new(InputSource::Stdin, b',');
        let headers =
            |names: &str| -> Vec<String> { names.split(',').map(str::to_owned).collect() };
        for header in [
            "id,serviceAccount",
            "username,serviceAccount",
            "Email,flag",
            "Identity ID,serviceAccount",
        ] {
            assert!(is_header(&headers(header), &options), "{header}");
        }
        for other in ["Owner,serviceAccount", "username,reason", "Q4 review,,"] {
            assert!(!is_header(&headers(other), &options), "{other}");
        }
    }

    #[test]
    fn a_row_with_ids_but_no_flag_is_no_header() {
        let options = InputOptions::new(InputSource::Stdin, b',');
        let data = "user_id,notes\nid,flag,reason\n1,y,a\n";
        let reader = RowReader::new(data.as_bytes(), &options, "-").unwrap();
        assert_eq!(reader.header_place(), (2, &[1u64][..]));
    }

    #[test]
    fn flags_parse_in_any_case() {
        for yes in ["true", "YES", " y ", "1", "True"] {
            assert_eq!(parse_flag(yes), Ok(true), "{yes}");
        }
        for no in ["false", "No", "n", "0 "] {
            assert_eq!(parse_flag(no), Ok(false), "{no}");
        }
        for (word, flag) in [
            ("WAHR", true),
            ("FALSCH", false),
            ("vrai", true),
            ("FAUX", false),
            ("VERDADERO", true),
            ("VERO", true),
            ("FALSO", false),
            ("WAAR", true),
            ("ONWAAR", false),
            ("VERDADEIRO", true),
            ("SANT", true),
            ("FALSKT", false),
            ("SAND", true),
            ("FALSK", false),
            ("PRAWDA", true),
            ("FAŁSZ", false),
        ] {
            assert_eq!(parse_flag(word), Ok(flag), "{word}");
        }
        for mark in ["x", "✓"] {
            let error = parse_flag(mark).unwrap_err();
            assert!(error.to_string().contains("a mark does not say"), "{error}");
        }
        assert!(parse_flag("")
            .unwrap_err()
            .to_string()
            .contains("never means false"));
        assert_eq!(
            parse_flag(" maybe ").unwrap_err().to_string(),
            "\"maybe\" is not a flag (expected true/false, yes/no, y/n or 1/0)"
        );
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

    /// Resolves two users' emails, any case.
    struct TwoUsers;

    impl Lookup for TwoUsers {
        fn resolve(&self, key: &LookupKey) -> Result<u64, crate::model::LookupError> {
            Err(crate::model::LookupError::NoMatch(key.clone()))
        }
        fn check(&self, _: u64, _: &LookupKey) -> Result<(), crate::model::LookupError> {
            Ok(())
        }
        fn user(&self, email: &str) -> Result<u64, crate::model::LookupError> {
            match email.to_lowercase().as_str() {
                "ann@example.com" => Ok(1),
                "bob@example.com" => Ok(2),
                _ => Err(crate::model::LookupError::NoUser(email.to_owned())),
            }
        }
    }

    fn link_records(
        data: &str,
        link_column: Option<&str>,
    ) -> Vec<Result<Option<LinkRequest>, String>> {
        let mut options = InputOptions::new(InputSource::Stdin, b',');
        options.link_column = link_column.map(str::to_owned);
        let mut reader = RowReader::new(data.as_bytes(), &options, "-").unwrap();
        reader.lookup = Some(Arc::new(TwoUsers));
        std::iter::from_fn(|| reader.next_record())
            .map(|r| match r.unwrap() {
                Record::Valid(row) => Ok(row.link),
                Record::Invalid(bad) => Err(bad.message()),
            })
            .collect()
    }

    #[test]
    fn a_link_cell_is_nobody_or_a_resolved_email_and_a_service_account_names_nobody() {
        let user = |email: &str, id| {
            Ok(Some(LinkRequest {
                link: Link::User(email.to_owned()),
                user: Some(id),
                baseline: Some(Link::Nobody),
            }))
        };
        let records = link_records(
            "id,flag,reason,linkedUser,drataLinkedUser\n\
             1,false,a,,\n\
             2,false,a, Bob@Example.com ,\n\
             3,true,a,,\n\
             4,true,a,ann@example.com,\n\
             5,false,a,carol@example.com,\n\
             6,false,a,carol,\n",
            None,
        );
        assert_eq!(
            records[0],
            Ok(Some(LinkRequest {
                link: Link::Nobody,
                user: None,
                baseline: Some(Link::Nobody)
            }))
        );
        assert_eq!(records[1], user("bob@example.com", 2));
        assert_eq!(
            records[2].as_ref().map(|l| l.as_ref().map(|l| &l.link)),
            Ok(Some(&Link::Nobody))
        );
        let problem = |index: usize| records[index].clone().unwrap_err();
        assert!(
            problem(3).contains("does not link a service account"),
            "{}",
            problem(3)
        );
        assert!(
            problem(4).contains("\"carol@example.com\""),
            "{}",
            problem(4)
        );
        assert!(problem(5).contains("not an email"), "{}", problem(5));
    }

    #[test]
    fn without_the_column_links_are_untouched_and_a_named_column_must_exist() {
        assert_eq!(
            link_records("id,flag,reason\n1,false,a\n", None),
            [Ok(None)]
        );
        assert_eq!(
            link_records(
                "id,flag,reason,Owner\n1,false,a,ann@example.com\n",
                Some("owner")
            )[0]
            .as_ref()
            .map(|l| l.as_ref().and_then(|l| l.user)),
            Ok(Some(1))
        );
        let options = InputOptions {
            link_column: Some("owner".to_owned()),
            ..InputOptions::new(InputSource::Stdin, b',')
        };
        let missing = RowReader::new("id,flag,reason\n1,false,a\n".as_bytes(), &options, "-");
        assert!(
            matches!(&missing, Err(InputError::MissingColumns { missing, .. }) if missing.contains("--link-column")),
            "{:?}",
            missing.err()
        );
    }
}
