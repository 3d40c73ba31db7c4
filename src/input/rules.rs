//! Rules files (`--rules FILE`): TOML `[[rule]]` tables that decide identities from
//! Drata's listing, checked whole before anything is sent, and the pure decision of one
//! identity ([`decide`]): the first rule whose every condition holds.
//!
//! Everything wrong with a file is found at once and named by line and column (from the
//! TOML spans), with the fix. What cannot be known before an identity is seen (a reason
//! that renders blank, or too long, for that identity) is a [`ReasonProblem`] of the
//! decision: that identity is invalid, the others go on.

use std::collections::hash_map::{Entry, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::Path;

use regex_automata::meta::Regex;
use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

use crate::model::{utf16_len, Access, Subject, MAX_REASON_UNITS};

/// The keys of `[rule.match]`, for messages.
const CONDITIONS: &str = "username, email, email_absent, linked_user, client_type, connection, marked, admin_access, db_access, write_access, push_production_code_access";
/// The placeholders of `reason`, for messages.
const PLACEHOLDERS: &str = "{id} {username} {email} {connection} {rule} {date}";
/// `{date}` renders as `YYYY-MM-DD`.
const DATE_UNITS: usize = 10;
/// The largest rules file read: 4 MiB. A nightly job's file holds tens of rules (a few kB);
/// 4 MiB is some 25,000 rules of the usual shape, checked in well under a second, and keeps
/// a file named by mistake (a log, a dump, `/dev/zero`) from being read whole.
pub(crate) const MAX_RULES_BYTES: u64 = 4 * 1024 * 1024;

/// A checked rules file: every rule compiled, in the file's order.
#[derive(Debug)]
pub(crate) struct RuleSet {
    rules: Vec<Rule>,
}

/// One checked rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub name: String,
    pub service_account: bool,
    /// The access toggles the rule turns on or off.
    pub access: Vec<(Access, bool)>,
    reason: Vec<Piece>,
    when: Conditions,
}

/// Every condition given must hold; an absent one does not count.
#[derive(Debug, Default)]
struct Conditions {
    username: Option<Regex>,
    email: Option<Regex>,
    email_absent: Option<bool>,
    linked_user: Option<bool>,
    /// Client types, compared ignoring case.
    client_type: Option<Vec<String>>,
    connection: Option<ConnectionRef>,
    marked: Option<bool>,
    /// Access toggles as the listing shows them (off when it does not).
    access: Vec<(Access, bool)>,
}

/// `connection = "aws-prod"` (an alias, any case) or `connection = 3` / `"3"` / `"#3"`
/// (an id).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ConnectionRef {
    alias: String,
    id: Option<u64>,
}

/// A piece of a reason template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Id,
    Username,
    Email,
    Connection,
    Rule,
    Date,
}

/// What a rule decided for one identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision<'r> {
    /// The rule's name (the report's `rule:NAME`).
    pub rule: &'r str,
    /// The rule's place in the file, from 0.
    pub index: usize,
    pub service_account: bool,
    /// The access toggles the rule sets.
    pub access: &'r [(Access, bool)],
    /// The rendered, trimmed reason, or why it cannot be sent.
    pub reason: Result<String, ReasonProblem>,
}

/// Why a rendered reason cannot be sent: the identity is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum ReasonProblem {
    #[error("rule {rule}: the reason renders blank for this identity (a placeholder it lacks?)")]
    Blank { rule: String },
    #[error(
        "rule {rule}: the reason renders {units} UTF-16 units for this identity; at most 30000"
    )]
    TooLong { rule: String, units: usize },
}

/// Where something is in the file, 1-based; the column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl Position {
    fn of(text: &str, offset: usize) -> Self {
        Lines::new(text).positions(&[offset])[0]
    }
}

/// Where each line of a text starts, found once: placing a problem is then a binary search
/// for its line and a count of characters from the previous problem on that line, so that
/// placing every problem of a file is linear in its size. (Counting from the file's start
/// for each rule made 20,000 rules take 15 s.)
struct Lines<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1))
            .collect();
        Self { text, starts }
    }

    /// The 1-based line of a byte offset (a newline ends its line).
    fn line(&self, offset: usize) -> u64 {
        self.starts.partition_point(|&start| start <= offset) as u64
    }

    /// The positions of byte offsets, in their order: placed in increasing order, each
    /// column counted on from the one before on the same line.
    fn positions(&self, offsets: &[usize]) -> Vec<Position> {
        let mut order: Vec<usize> = (0..offsets.len()).collect();
        order.sort_by_key(|&i| offsets[i]);
        let mut placed = vec![Position { line: 1, column: 1 }; offsets.len()];
        // The last offset placed, and its line and column.
        let mut last: Option<(usize, Position)> = None;
        for i in order {
            let offset = char_boundary(self.text, offsets[i]);
            let line = self.line(offset);
            let line_start = self.starts[(line - 1) as usize];
            let (from, column) = match last {
                Some((at, position)) if position.line == line => (at, position.column),
                _ => (line_start, 1),
            };
            let column = column + self.text[from..offset].chars().count() as u64;
            placed[i] = Position { line, column };
            last = Some((offset, placed[i]));
        }
        placed
    }
}

/// `offset` within `text`, moved back to the start of the character it falls in.
fn char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One thing wrong with a rules file, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    pub at: Position,
    pub kind: ProblemKind,
}

/// The classes of problems a rules file can have, each with its fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProblemKind {
    #[error("{0}")]
    Toml(String),
    #[error("unknown key {key:?}; the keys of a rule are name, service_account, reason, the access toggles (admin_access, db_access, write_access, push_production_code_access) and [rule.match] ({CONDITIONS}): remove it or correct its spelling")]
    UnknownKey { key: String },
    #[error("{key}: the regular expression does not compile: {error}; fix it (Rust regex syntax, https://docs.rs/regex)")]
    BadRegex { key: &'static str, error: String },
    #[error(
        "rule name {name:?} is already used on line {first_line}: give every rule its own name"
    )]
    DuplicateName { name: String, first_line: u64 },
    #[error("rule {name:?} has no condition and would match every identity: add a [rule.match] table with at least one of {CONDITIONS}")]
    NoCondition { name: String },
    #[error("rule {name:?}: the reason is blank: write why these identities are (or are not) service accounts")]
    BlankReason { name: String },
    #[error("rule {name:?}: the reason is {units} UTF-16 units or more; Drata takes at most 30000: shorten it")]
    LongReason { name: String, units: usize },
    #[error("rule {name:?}: the reason has {placeholder:?}, which is not a placeholder; use {PLACEHOLDERS}, or {{{{ and }}}} for braces")]
    BadPlaceholder { name: String, placeholder: String },
    #[error(
        "rule {name:?}: client_type lists no client type: name one or several, or remove the key"
    )]
    NoClientType { name: String },
    #[error("the file has no [[rule]]: add one, or leave --rules out")]
    NoRules,
}

/// Why a rules file cannot be used.
#[derive(Debug, Error)]
pub enum RulesError {
    #[error("cannot read the rules file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the rules file {path} is larger than {} MiB, the most a rules file may hold: is it the right file? (a nightly job's rules take a few kB)", MAX_RULES_BYTES / (1024 * 1024))]
    TooLarge { path: String },
    #[error("{}", problems_text(.path, .problems))]
    Invalid {
        path: String,
        problems: Vec<RuleProblem>,
    },
    #[error("rule {rule:?} unmarks every service account: pass --max-changes N to say how many identities this run may change")]
    MassUnmarking { rule: String },
}

fn problems_text(path: &str, problems: &[RuleProblem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{path}:{}: {}", p.at, p.kind))
        .collect();
    format!(
        "the rules file {path} cannot be used ({} {}):\n{}",
        problems.len(),
        if problems.len() == 1 {
            "problem"
        } else {
            "problems"
        },
        lines.join("\n")
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    service_account: bool,
    reason: Spanned<String>,
    admin_access: Option<bool>,
    db_access: Option<bool>,
    write_access: Option<bool>,
    push_production_code_access: Option<bool>,
    #[serde(rename = "match")]
    when: Option<Spanned<RawMatch>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    username: Option<Spanned<String>>,
    email: Option<Spanned<String>>,
    email_absent: Option<bool>,
    linked_user: Option<bool>,
    client_type: Option<Spanned<OneOrMany>>,
    connection: Option<RawConnection>,
    marked: Option<bool>,
    admin_access: Option<bool>,
    db_access: Option<bool>,
    write_access: Option<bool>,
    push_production_code_access: Option<bool>,
}

/// The access toggles given, as a rule's decision or condition (one key per toggle:
/// `admin_access`, `db_access`, `write_access`, `push_production_code_access`), in
/// [`Access`] order.
fn access_given(toggles: [Option<bool>; 4]) -> Vec<(Access, bool)> {
    [
        Access::Admin,
        Access::Db,
        Access::Write,
        Access::PushProductionCode,
    ]
    .into_iter()
    .zip(toggles)
    .filter_map(|(access, on)| Some((access, on?)))
    .collect()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawConnection {
    Id(u64),
    Name(String),
}

impl RuleSet {
    /// Reads and checks a rules file; one over [`MAX_RULES_BYTES`] is refused, having
    /// read no more than one byte past the cap.
    pub(crate) fn load(path: &Path) -> Result<Self, RulesError> {
        use std::io::Read;
        let shown = path.display().to_string();
        let read = |source| RulesError::Read {
            path: shown.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read)?;
        let mut bytes = Vec::new();
        file.take(MAX_RULES_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > MAX_RULES_BYTES {
            return Err(RulesError::TooLarge { path: shown });
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                e.utf8_error(),
            ))
        })?;
        Self::parse(&text).map_err(|problems| RulesError::Invalid {
            path: shown,
            problems,
        })
    }

    /// Checks the text of a rules file: every problem, in the file's order.
    pub(crate) fn parse(text: &str) -> Result<Self, Vec<RuleProblem>> {
        let raw: RawFile = toml::from_str(text).map_err(|e| vec![toml_problem(text, &e)])?;
        if raw.rule.is_empty() {
            return Err(vec![RuleProblem {
                at: Position { line: 1, column: 1 },
                kind: ProblemKind::NoRules,
            }]);
        }
        let lines = Lines::new(text);
        // Problems by byte offset, placed once at the end (see `Lines`).
        let mut problems: Found = Vec::new();
        let mut rules: Vec<Rule> = Vec::new();
        // Every name seen, valid rule or not, and its line: one lookup per rule.
        let mut names: HashMap<String, u64> = HashMap::new();
        for raw_rule in raw.rule {
            let span = raw_rule.name.span();
            let name = raw_rule.name.get_ref().clone();
            match names.entry(name) {
                Entry::Occupied(first) => problems.push((
                    span,
                    ProblemKind::DuplicateName {
                        name: first.key().clone(),
                        first_line: *first.get(),
                    },
                )),
                Entry::Vacant(new) => {
                    new.insert(lines.line(span.start));
                }
            }
            if let Some(rule) = check_rule(raw_rule, &mut problems) {
                rules.push(rule);
            }
        }
        if problems.is_empty() {
            return Ok(Self { rules });
        }
        let offsets: Vec<usize> = problems.iter().map(|(span, _)| span.start).collect();
        let mut problems: Vec<RuleProblem> = lines
            .positions(&offsets)
            .into_iter()
            .zip(problems)
            .map(|(at, (_, kind))| RuleProblem { at, kind })
            .collect();
        problems.sort_by_key(|p| (p.at.line, p.at.column));
        Err(problems)
    }

    /// The access toggles any rule sets.
    pub(crate) fn access_decided(&self) -> impl Iterator<Item = Access> + '_ {
        let mut decided: Vec<Access> = { self.rules.iter() }
            .flat_map(|rule| rule.access.iter().map(|(access, _)| *access))
            .collect();
        decided.sort_unstable();
        decided.dedup();
        decided.into_iter()
    }

    pub(crate) fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// A rule that unmarks every service account (`marked = true` its only condition,
    /// `service_account = false`): its name. Such a file needs an explicit
    /// `--max-changes`.
    pub(crate) fn mass_unmarking(&self) -> Option<&str> {
        self.rules
            .iter()
            .find(|rule| !rule.service_account && rule.when.is_only_marked())
            .map(|rule| rule.name.as_str())
    }
}

fn toml_problem(text: &str, error: &toml::de::Error) -> RuleProblem {
    let at = Position::of(text, error.span().map_or(0, |span| span.start));
    let message = error.message().trim().to_owned();
    let kind = match unknown_key(&message) {
        Some(key) => ProblemKind::UnknownKey { key },
        None => ProblemKind::Toml(message),
    };
    RuleProblem { at, kind }
}

/// serde's "unknown field `x`, expected ..." message: the key.
fn unknown_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// Checks one rule; its problems go to `problems`, and the rule comes back when it has
/// none.
fn check_rule(raw: RawRule, problems: &mut Found) -> Option<Rule> {
    let name_span = raw.name.span();
    let name = raw.name.into_inner();
    let mut problem = |span: Range<usize>, kind| problems.push((span, kind));
    let when = match raw.when {
        None => {
            problem(name_span, ProblemKind::NoCondition { name: name.clone() });
            None
        }
        Some(when) => {
            let span = when.span();
            let (conditions, found) = check_conditions(&name, when.into_inner());
            for (span, kind) in found {
                problem(span, kind);
            }
            match conditions {
                Some(c) if c.is_empty() => {
                    problem(span, ProblemKind::NoCondition { name: name.clone() });
                    None
                }
                other => other,
            }
        }
    };
    let reason_span = raw.reason.span();
    let reason = match check_reason(&name, raw.reason.get_ref()) {
        Ok(reason) => Some(reason),
        Err(kind) => {
            problem(reason_span, kind);
            None
        }
    };
    Some(Rule {
        name,
        service_account: raw.service_account,
        access: access_given([
            raw.admin_access,
            raw.db_access,
            raw.write_access,
            raw.push_production_code_access,
        ]),
        reason: reason?,
        when: when?,
    })
}

type Found = Vec<(Range<usize>, ProblemKind)>;

/// Compiles the conditions of one rule; `None` when a pattern does not compile. Every
/// problem is in the list, and a file with any problem is refused whole.
fn check_conditions(name: &str, raw: RawMatch) -> (Option<Conditions>, Found) {
    let mut found = Found::new();
    let mut regex = |key: &'static str, value: Option<Spanned<String>>| {
        let value = value?;
        match compile(value.get_ref()) {
            Ok(regex) => Some(Ok(regex)),
            Err(e) => {
                let error = e.lines().last().unwrap_or_default().trim().to_owned();
                found.push((value.span(), ProblemKind::BadRegex { key, error }));
                Some(Err(()))
            }
        }
    };
    let username = regex("username", raw.username).transpose();
    let email = regex("email", raw.email).transpose();
    let client_type = raw.client_type.map(|spanned| {
        let span = spanned.span();
        let types = match spanned.into_inner() {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        };
        if types.is_empty() {
            found.push((
                span,
                ProblemKind::NoClientType {
                    name: name.to_owned(),
                },
            ));
        }
        types
    });
    let connection = raw.connection.map(|raw| match raw {
        RawConnection::Id(id) => ConnectionRef {
            alias: id.to_string(),
            id: Some(id),
        },
        RawConnection::Name(name) => ConnectionRef {
            id: name.trim().trim_start_matches('#').parse().ok(),
            alias: name.trim().to_owned(),
        },
    });
    let conditions = match (username, email) {
        (Ok(username), Ok(email)) => Some(Conditions {
            username,
            email,
            email_absent: raw.email_absent,
            linked_user: raw.linked_user,
            client_type,
            connection,
            marked: raw.marked,
            access: access_given([
                raw.admin_access,
                raw.db_access,
                raw.write_access,
                raw.push_production_code_access,
            ]),
        }),
        _ => None,
    };
    (conditions, found)
}

/// A rule's pattern, compiled as `regex::Regex::new` compiles it (the same syntax, limits
/// and matches) but without a full DFA. tracing-subscriber's env-filter turns on
/// regex-automata's `dfa-build` in this build, and the engine then determinizes a whole DFA
/// for every small pattern: about 100 µs each, 2 of the 2.5 s that checking 20,000 rules
/// took, and most of its memory. The lazy DFA it falls back on matches as fast once warm.
/// The error is `regex`'s own message, the one its documentation explains.
fn compile(pattern: &str) -> Result<Regex, String> {
    let config = Regex::config()
        .match_kind(regex_automata::MatchKind::LeftmostFirst)
        .utf8_empty(true)
        .nfa_size_limit(Some(10 * (1 << 20)))
        .hybrid_cache_capacity(2 * (1 << 20))
        .dfa(false);
    let syntax = regex_automata::util::syntax::Config::new().utf8(true);
    Regex::builder()
        .configure(config)
        .syntax(syntax)
        .build(pattern)
        .map_err(|e| match regex::Regex::new(pattern) {
            Err(regex_error) => regex_error.to_string(),
            Ok(_) => e.to_string(),
        })
}

/// Parses a reason template and checks what can be checked before any identity is seen.
fn check_reason(name: &str, template: &str) -> Result<Vec<Piece>, ProblemKind> {
    let pieces = parse_template(template).map_err(|placeholder| ProblemKind::BadPlaceholder {
        name: name.to_owned(),
        placeholder,
    })?;
    let has_field = pieces.iter().any(|p| matches!(p, Piece::Field(_)));
    if !has_field && template.trim().is_empty() {
        return Err(ProblemKind::BlankReason {
            name: name.to_owned(),
        });
    }
    // The least the reason can render: its text, and the placeholders that are never empty.
    let units: usize = pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(text) => utf16_len(text),
            Piece::Field(Field::Id) => 1,
            Piece::Field(Field::Rule) => utf16_len(name),
            Piece::Field(Field::Date) => DATE_UNITS,
            Piece::Field(Field::Username | Field::Email | Field::Connection) => 0,
        })
        .sum();
    if units > MAX_REASON_UNITS {
        return Err(ProblemKind::LongReason {
            name: name.to_owned(),
            units,
        });
    }
    Ok(pieces)
}

/// Splits a template into text and placeholders; `{{` and `}}` are braces. `Err` holds
/// the first thing in braces that is not a placeholder.
fn parse_template(template: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut inner = String::new();
                let closed = loop {
                    match chars.next() {
                        Some('}') => break true,
                        Some(c) => inner.push(c),
                        None => break false,
                    }
                };
                let field = closed.then(|| field(&inner)).flatten();
                let Some(field) = field else {
                    return Err(format!("{{{inner}{}", if closed { "}" } else { "" }));
                };
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Field(field));
            }
            '}' => return Err("}".to_owned()),
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn field(name: &str) -> Option<Field> {
    Some(match name {
        "id" => Field::Id,
        "username" => Field::Username,
        "email" => Field::Email,
        "connection" => Field::Connection,
        "rule" => Field::Rule,
        "date" => Field::Date,
        _ => return None,
    })
}

impl Conditions {
    fn is_empty(&self) -> bool {
        self.username.is_none()
            && self.email.is_none()
            && self.email_absent.is_none()
            && self.linked_user.is_none()
            && self.client_type.is_none()
            && self.connection.is_none()
            && self.marked.is_none()
            && self.access.is_empty()
    }

    fn is_only_marked(&self) -> bool {
        self.marked == Some(true)
            && self.username.is_none()
            && self.email.is_none()
            && self.email_absent.is_none()
            && self.linked_user.is_none()
            && self.client_type.is_none()
            && self.connection.is_none()
            && self.access.is_empty()
    }

    /// True when every condition given holds for the identity. A regular expression
    /// never matches a name the identity lacks.
    fn hold(&self, who: &Subject<'_>) -> bool {
        let text_matches = |regex: &Option<Regex>, value: Option<&str>| {
            regex
                .as_ref()
                .is_none_or(|regex| value.is_some_and(|value| regex.is_match(value)))
        };
        let is = |wanted: Option<bool>, actual: bool| wanted.is_none_or(|wanted| wanted == actual);
        let email_absent = who.email.is_none_or(|email| email.trim().is_empty());
        text_matches(&self.username, who.username)
            && text_matches(&self.email, who.email)
            && is(self.email_absent, email_absent)
            && is(self.linked_user, who.linked)
            && is(self.marked, who.marked)
            && { self.access.iter() }
                .all(|(access, on)| who.access.get(*access).unwrap_or(false) == *on)
            && self.client_type.as_ref().is_none_or(|types| {
                who.client_type
                    .is_some_and(|actual| types.iter().any(|t| t.eq_ignore_ascii_case(actual)))
            })
            && self.connection.as_ref().is_none_or(|wanted| {
                who.connection_alias
                    .is_some_and(|alias| alias.eq_ignore_ascii_case(&wanted.alias))
                    || (wanted.id.is_some() && wanted.id == who.connection_id)
            })
    }
}

impl Rule {
    /// The reason for one identity: rendered, trimmed, and checked as the input's are.
    fn reason_for(&self, who: &Subject<'_>, today: &str) -> Result<String, ReasonProblem> {
        let mut reason = String::new();
        for piece in &self.reason {
            match piece {
                Piece::Text(text) => reason.push_str(text),
                Piece::Field(Field::Id) => reason.push_str(&who.id.to_string()),
                Piece::Field(Field::Username) => reason.push_str(who.username.unwrap_or("")),
                Piece::Field(Field::Email) => reason.push_str(who.email.unwrap_or("")),
                Piece::Field(Field::Connection) => reason.push_str(&connection_text(who)),
                Piece::Field(Field::Rule) => reason.push_str(&self.name),
                Piece::Field(Field::Date) => reason.push_str(today),
            }
        }
        let reason = reason.trim();
        let units = utf16_len(reason);
        if units == 0 {
            Err(ReasonProblem::Blank {
                rule: self.name.clone(),
            })
        } else if units > MAX_REASON_UNITS {
            Err(ReasonProblem::TooLong {
                rule: self.name.clone(),
                units,
            })
        } else {
            Ok(reason.to_owned())
        }
    }
}

/// `{connection}`: client type and alias, as the export's connection cell shows them.
fn connection_text(who: &Subject<'_>) -> String {
    [who.client_type, who.connection_alias]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first rule whose every condition holds for the identity, and what it decides;
/// `None` when no rule matches (the identity is left as it is). `today` is the run's
/// UTC date, `YYYY-MM-DD`.
pub(crate) fn decide<'r>(
    rules: &'r RuleSet,
    who: &Subject<'_>,
    today: &str,
) -> Option<Decision<'r>> {
    let (index, rule) = rules
        .rules
        .iter()
        .enumerate()
        .find(|(_, rule)| rule.when.hold(who))?;
    Some(Decision {
        rule: &rule.name,
        index,
        service_account: rule.service_account,
        access: &rule.access,
        reason: rule.reason_for(who, today),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: &str = "2026-11-02";

    /// A fixed listing: every condition has identities on both sides.
    fn listing() -> Vec<Subject<'static>> {
        let who =
            |id, username, email, client_type, alias, connection_id, linked, marked| Subject {
                access: crate::model::Toggles::default(),
                id,
                username,
                email,
                client_type,
                connection_alias: alias,
                connection_id,
                linked,
                marked,
            };
        vec![
            who(
                1,
                Some("svc-deploy-12"),
                None,
                Some("AWS"),
                Some("aws-prod"),
                Some(1),
                false,
                false,
            ),
            who(
                2,
                Some("alice.nguyen"),
                Some("alice.nguyen@example.com"),
                Some("AWS"),
                Some("aws-prod"),
                Some(1),
                true,
                false,
            ),
            who(
                3,
                Some("github-actions"),
                Some(""),
                Some("GCP"),
                Some("gcp-main"),
                Some(2),
                false,
                true,
            ),
            who(
                4,
                Some("terraform-ci"),
                Some("infra@ops.example.org"),
                Some("AZURE"),
                Some("azure-corp"),
                Some(3),
                false,
                false,
            ),
            who(
                5,
                None,
                Some("backup-bot@example.com"),
                Some("gcp"),
                Some("gcp-main"),
                Some(2),
                false,
                true,
            ),
            who(
                6,
                Some("bruno.okafor"),
                Some("bruno.okafor@example.com"),
                None,
                None,
                None,
                true,
                true,
            ),
        ]
    }

    fn file(matching: &str) -> String {
        format!("[[rule]]\nname = \"r\"\nservice_account = true\nreason = \"x\"\n[rule.match]\n{matching}\n")
    }

    fn matched(rules: &RuleSet) -> Vec<u64> {
        listing()
            .iter()
            .filter(|who| decide(rules, who, TODAY).is_some())
            .map(|who| who.id)
            .collect()
    }

    #[test]
    fn an_access_toggle_is_a_condition_and_a_decision() {
        let mut listing = listing();
        // Ids 1 and 3 have admin access; 4 has database access; null is off.
        listing[0].access.set(Access::Admin, Some(true));
        listing[2].access.set(Access::Admin, Some(true));
        listing[3].access.set(Access::Db, Some(true));
        listing[4].access.set(Access::Admin, Some(false));
        let matched = |rules: &RuleSet| -> Vec<u64> {
            { listing.iter() }
                .filter(|who| decide(rules, who, TODAY).is_some())
                .map(|who| who.id)
                .collect()
        };
        let cases: &[(&str, &[u64])] = &[
            ("admin_access = true", &[1, 3]),
            ("admin_access = false", &[2, 4, 5, 6]),
            ("db_access = true", &[4]),
            ("admin_access = true\nmarked = false", &[1]),
            ("write_access = true", &[]),
        ];
        for (matching, expected) in cases {
            let rules =
                RuleSet::parse(&file(matching)).unwrap_or_else(|e| panic!("{matching}: {e:?}"));
            assert_eq!(&matched(&rules), expected, "{matching}");
        }
        let deciding = file("admin_access = true").replace(
            "service_account = true\n",
            "service_account = true\nadmin_access = false\ndb_access = true\n",
        );
        let rules = RuleSet::parse(&deciding).unwrap();
        let decision = decide(&rules, &listing[0], TODAY).unwrap();
        assert_eq!(
            decision.access,
            [(Access::Admin, false), (Access::Db, true)]
        );
        assert_eq!(
            rules.access_decided().collect::<Vec<_>>(),
            [Access::Admin, Access::Db]
        );
        // A misspelt toggle is an unknown key, as any other.
        let problems = RuleSet::parse(&file("admin_acess = true")).unwrap_err();
        assert!(
            matches!(&problems[0].kind, ProblemKind::UnknownKey { key } if key == "admin_acess"),
            "{problems:?}"
        );
    }

    #[test]
    fn each_condition_alone_and_combined_matches_exactly_its_identities() {
        let cases: &[(&str, &[u64])] = &[
            (r#"username = "^(svc|ci|bot)[-_]""#, &[1]),
            (r#"username = "-(ci|bot)$|actions""#, &[3, 4]),
            (r#"username = "(?i)^ALICE""#, &[2]),
            (r#"email = "@example\\.com$""#, &[2, 5, 6]),
            ("email_absent = true", &[1, 3]),
            ("email_absent = false", &[2, 4, 5, 6]),
            ("linked_user = true", &[2, 6]),
            ("linked_user = false", &[1, 3, 4, 5]),
            (r#"client_type = "gcp""#, &[3, 5]),
            (r#"client_type = ["AWS", "AZURE"]"#, &[1, 2, 4]),
            (r#"connection = "AWS-PROD""#, &[1, 2]),
            ("connection = 2", &[3, 5]),
            (r##"connection = "#3""##, &[4]),
            (r#"connection = "3""#, &[4]),
            ("marked = true", &[3, 5, 6]),
            ("marked = false", &[1, 2, 4]),
            ("linked_user = false\nmarked = false", &[1, 4]),
            ("email_absent = true\nclient_type = \"AWS\"", &[1]),
            ("username = \"\"\nlinked_user = true\nmarked = true", &[6]),
            ("email = \"\"\nconnection = \"gcp-main\"", &[3, 5]),
            ("username = \"^nobody$\"", &[]),
        ];
        for (matching, expected) in cases {
            let rules =
                RuleSet::parse(&file(matching)).unwrap_or_else(|e| panic!("{matching}: {e:?}"));
            assert_eq!(&matched(&rules), expected, "{matching}");
        }
    }

    #[test]
    fn the_first_rule_that_matches_decides() {
        let rules = RuleSet::parse(
            "[[rule]]\nname = \"people\"\nservice_account = false\nreason = \"person {username}\"\n[rule.match]\nlinked_user = true\n\
             [[rule]]\nname = \"unlinked\"\nservice_account = true\nreason = \"{rule} {id} on {date}\"\n[rule.match]\nlinked_user = false\n\
             [[rule]]\nname = \"never\"\nservice_account = true\nreason = \"x\"\n[rule.match]\nmarked = false\n",
        )
        .unwrap();
        let names: Vec<&str> = rules
            .rules()
            .iter()
            .map(|rule| rule.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["people", "unlinked", "never"],
            "in the file's order"
        );
        let listing = listing();
        let alice = decide(&rules, &listing[1], TODAY).unwrap();
        assert_eq!(
            (alice.rule, alice.index, alice.service_account, alice.reason),
            ("people", 0, false, Ok("person alice.nguyen".to_owned()))
        );
        let bot = decide(&rules, &listing[0], TODAY).unwrap();
        assert_eq!(
            (bot.rule, bot.index, bot.service_account, bot.reason),
            (
                "unlinked",
                1,
                true,
                Ok("unlinked 1 on 2026-11-02".to_owned())
            )
        );
        assert!(
            listing
                .iter()
                .all(|who| decide(&rules, who, TODAY).unwrap().rule != "never"),
            "a later rule never decides what an earlier one matched"
        );
    }

    #[test]
    fn reasons_render_every_placeholder_trimmed_and_braces() {
        let rules = RuleSet::parse(&file("marked = false").replace(
            "reason = \"x\"",
            "reason = \"  {{{id}}} {username} <{email}> {connection} {rule} {date}  \"",
        ))
        .unwrap();
        let listing = listing();
        let reason = |i: usize| decide(&rules, &listing[i], TODAY).unwrap().reason;
        assert_eq!(
            reason(1),
            Ok("{2} alice.nguyen <alice.nguyen@example.com> AWS aws-prod r 2026-11-02".to_owned())
        );
        assert_eq!(
            reason(0),
            Ok("{1} svc-deploy-12 <> AWS aws-prod r 2026-11-02".to_owned())
        );
    }

    #[test]
    fn a_template_splits_into_text_and_placeholders_and_refuses_a_lone_brace() {
        assert_eq!(
            parse_template("ci {id} runner}}"),
            Ok(vec![
                Piece::Text("ci ".to_owned()),
                Piece::Field(Field::Id),
                Piece::Text(" runner}".to_owned()),
            ])
        );
        assert_eq!(parse_template("ci } runner"), Err("}".to_owned()));
        assert_eq!(parse_template("{id"), Err("{id".to_owned()));
    }

    #[test]
    fn a_reason_blank_or_too_long_for_one_identity_is_that_identitys_problem() {
        let rules = RuleSet::parse(
            &file("marked = false").replace("reason = \"x\"", "reason = \" {email} \""),
        )
        .unwrap();
        let listing = listing();
        assert_eq!(
            decide(&rules, &listing[0], TODAY).unwrap().reason,
            Err(ReasonProblem::Blank {
                rule: "r".to_owned()
            })
        );
        assert_eq!(
            decide(&rules, &listing[1], TODAY).unwrap().reason,
            Ok("alice.nguyen@example.com".to_owned())
        );
        let long = "é".repeat(MAX_REASON_UNITS - 12);
        let rules = RuleSet::parse(&file("marked = false").replace(
            "reason = \"x\"",
            &format!("reason = \"{long}{{username}}\""),
        ))
        .unwrap();
        // 29988 + "alice.nguyen" (12) fits exactly; "svc-deploy-12" (13) does not.
        assert_eq!(
            utf16_len(
                decide(&rules, &listing[1], TODAY)
                    .unwrap()
                    .reason
                    .unwrap()
                    .as_str()
            ),
            MAX_REASON_UNITS
        );
        assert_eq!(
            decide(&rules, &listing[0], TODAY).unwrap().reason,
            Err(ReasonProblem::TooLong {
                rule: "r".to_owned(),
                units: MAX_REASON_UNITS + 1
            })
        );
    }

    #[test]
    fn unmatched_identities_are_left_alone() {
        let rules = RuleSet::parse(&file("username = \"^svc-\"")).unwrap();
        let undecided = listing()
            .iter()
            .filter(|who| decide(&rules, who, TODAY).is_none())
            .count();
        assert_eq!(undecided, 5);
    }

    fn problems(text: &str) -> Vec<(u64, u64, ProblemKind)> {
        RuleSet::parse(text)
            .expect_err("the file must be refused")
            .into_iter()
            .map(|p| (p.at.line, p.at.column, p.kind))
            .collect()
    }

    #[test]
    fn every_error_class_is_named_by_line_and_column() {
        let unknown = problems("[[rule]]\nname = \"a\"\nservice_account = true\nreason = \"x\"\n[rule.match]\nusernme = \"x\"\n");
        assert_eq!(
            unknown,
            [(
                6,
                1,
                ProblemKind::UnknownKey {
                    key: "usernme".to_owned()
                }
            )]
        );
        let top = problems("rules = 1\n");
        assert_eq!(
            top,
            [(
                1,
                1,
                ProblemKind::UnknownKey {
                    key: "rules".to_owned()
                }
            )]
        );
        let regex = problems(&file("username = \"^(svc\""));
        assert!(
            matches!(
                &regex[..],
                [(
                    6,
                    12,
                    ProblemKind::BadRegex {
                        key: "username",
                        ..
                    }
                )]
            ),
            "{regex:?}"
        );
        let email = problems(&file("email = \"[\""));
        assert!(
            matches!(
                &email[..],
                [(6, 9, ProblemKind::BadRegex { key: "email", .. })]
            ),
            "{email:?}"
        );
        let twice = format!("{}{}", file("marked = false"), file("marked = true"));
        assert_eq!(
            problems(&twice),
            [(
                8,
                8,
                ProblemKind::DuplicateName {
                    name: "r".to_owned(),
                    first_line: 2
                }
            )]
        );
        let none = problems("[[rule]]\nname = \"all\"\nservice_account = true\nreason = \"x\"\n");
        assert_eq!(
            none,
            [(
                2,
                8,
                ProblemKind::NoCondition {
                    name: "all".to_owned()
                }
            )]
        );
        let empty = problems(
            "[[rule]]\nname = \"all\"\nservice_account = true\nreason = \"x\"\n[rule.match]\n",
        );
        assert_eq!(
            empty[0].2,
            ProblemKind::NoCondition {
                name: "all".to_owned()
            }
        );
        assert_eq!(empty[0].0, 5);
    }

    #[test]
    fn reason_and_list_errors_are_named_by_line_and_column() {
        let blank = problems(&file("marked = false").replace("reason = \"x\"", "reason = \"   \""));
        assert_eq!(
            blank,
            [(
                4,
                10,
                ProblemKind::BlankReason {
                    name: "r".to_owned()
                }
            )]
        );
        let long = problems(&file("marked = false").replace(
            "reason = \"x\"",
            &format!("reason = \"{}{{date}}\"", "a".repeat(29_991)),
        ));
        assert_eq!(
            long,
            [(
                4,
                10,
                ProblemKind::LongReason {
                    name: "r".to_owned(),
                    units: 30_001
                }
            )]
        );
        // The limit itself is allowed: 29,990 characters and a 10-character date.
        let at_limit = file("marked = false").replace(
            "reason = \"x\"",
            &format!("reason = \"{}{{date}}\"", "a".repeat(29_990)),
        );
        assert!(RuleSet::parse(&at_limit).is_ok());
        let placeholder =
            problems(&file("marked = false").replace("reason = \"x\"", "reason = \"{user}\""));
        assert_eq!(
            placeholder,
            [(
                4,
                10,
                ProblemKind::BadPlaceholder {
                    name: "r".to_owned(),
                    placeholder: "{user}".to_owned()
                }
            )]
        );
        let types = problems(&file("client_type = []"));
        assert_eq!(
            types,
            [(
                6,
                15,
                ProblemKind::NoClientType {
                    name: "r".to_owned()
                }
            )]
        );
        assert_eq!(problems("# nothing\n"), [(1, 1, ProblemKind::NoRules)]);
        let syntax = problems("[[rule]]\nname = \"a\nservice_account = true\n");
        assert!(
            matches!(&syntax[..], [(2, _, ProblemKind::Toml(_))]),
            "{syntax:?}"
        );
        let missing =
            problems("[[rule]]\nname = \"a\"\nreason = \"x\"\n[rule.match]\nmarked = false\n");
        assert!(
            matches!(&missing[..], [(_, _, ProblemKind::Toml(m))] if m.contains("service_account")),
            "{missing:?}"
        );
    }

    #[test]
    fn every_problem_of_a_file_is_found_at_once_in_file_order() {
        let text = format!(
            "{}{}",
            file("username = \"(\"").replace("\"r\"", "\"a\""),
            file("")
                .replace("\"r\"", "\"a\"")
                .replace("[rule.match]\n", "")
        );
        let found: Vec<(u64, &'static str)> = problems(&text)
            .into_iter()
            .map(|(line, _, kind)| {
                (
                    line,
                    match kind {
                        ProblemKind::BadRegex { .. } => "regex",
                        ProblemKind::DuplicateName { .. } => "duplicate",
                        ProblemKind::NoCondition { .. } => "no condition",
                        _ => "other",
                    },
                )
            })
            .collect();
        assert_eq!(found, [(6, "regex"), (8, "duplicate"), (8, "no condition")]);
    }

    #[test]
    fn errors_print_the_path_line_column_and_fix() {
        let error = RulesError::Invalid {
            path: "rules.toml".to_owned(),
            problems: RuleSet::parse(&file("username = \"(\"")).unwrap_err(),
        };
        let text = error.to_string();
        assert!(
            text.contains("rules.toml:6:12: username: the regular expression does not compile"),
            "{text}"
        );
        assert!(text.contains("fix it"), "{text}");
    }

    #[test]
    fn only_an_unconditional_unmarking_of_the_marked_is_a_mass_unmarking() {
        let unmark = |matching: &str| {
            file(matching).replace("service_account = true", "service_account = false")
        };
        assert_eq!(
            RuleSet::parse(&unmark("marked = true"))
                .unwrap()
                .mass_unmarking(),
            Some("r")
        );
        for narrower in [
            "marked = true\nusername = \"^svc\"",
            "marked = true\nemail = \"x\"",
            "marked = true\nemail_absent = false",
            "marked = true\nlinked_user = true",
            "marked = true\nclient_type = \"AWS\"",
            "marked = true\nconnection = 1",
            "marked = false",
        ] {
            assert_eq!(
                RuleSet::parse(&unmark(narrower)).unwrap().mass_unmarking(),
                None,
                "{narrower}"
            );
        }
        assert_eq!(
            RuleSet::parse(&file("marked = true"))
                .unwrap()
                .mass_unmarking(),
            None,
            "marking is not unmarking"
        );
    }

    #[test]
    fn positions_count_lines_and_characters() {
        assert_eq!(
            Position::of("ab\né\nxyz", 0),
            Position { line: 1, column: 1 }
        );
        assert_eq!(
            Position::of("ab\né\nxyz", 3),
            Position { line: 2, column: 1 }
        );
        assert_eq!(
            Position::of("ab\né\nxyz", 5),
            Position { line: 2, column: 2 }
        );
        assert_eq!(
            Position::of("ab\né\nxyz", 8),
            Position { line: 3, column: 3 }
        );
        assert_eq!(Position::of("ab", 99), Position { line: 1, column: 3 });
    }

    #[test]
    fn patterns_compile_and_fail_as_regex_has_them() {
        for pattern in ["(", "a{2,1}", "[z-a]", "\\p{NoSuchClass}"] {
            assert_eq!(
                compile(pattern).unwrap_err(),
                regex::Regex::new(pattern).unwrap_err().to_string(),
                "{pattern}"
            );
        }
        // Leftmost-first, Unicode, flags: the syntax rules.md points to.
        let regex = compile("(?i)^(svc|ci)[-_]\\w+$").unwrap();
        assert!(regex.is_match("SVC-déploi"));
        assert!(!regex.is_match("svc-"));
        assert!(!regex.is_match("a-svc-x"));
    }

    #[test]
    fn patterns_regex_takes_and_refuses_for_size_are_taken_and_refused_alike() {
        // A Unicode class repeated: under 1 MiB compiled, and between 1 and 10 MiB (regex's
        // limit). (Over it, the build takes seconds in a debug build before giving up.)
        for count in [20, 80] {
            let pattern = format!("\\w{{{count}}}");
            let ours = compile(&pattern).map(drop);
            let theirs = regex::Regex::new(&pattern)
                .map(drop)
                .map_err(|e| e.to_string());
            assert_eq!(ours, theirs, "{pattern}");
        }
    }

    #[test]
    fn a_file_at_the_cap_is_read_and_one_byte_more_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        let mut text = "[[rule]]\nname = \"r\"\nservice_account = true\nreason = \"x\"\n\
                        [rule.match]\nmarked = false\n"
            .to_owned();
        let filler = format!("# {}\n", "x".repeat(1021));
        while text.len() + filler.len() <= MAX_RULES_BYTES as usize {
            text.push_str(&filler);
        }
        text.push_str(&"#".repeat(MAX_RULES_BYTES as usize - text.len()));
        assert_eq!(text.len() as u64, MAX_RULES_BYTES);
        std::fs::write(&path, &text).unwrap();
        assert_eq!(RuleSet::load(&path).unwrap().rules().len(), 1);
        text.push('#');
        std::fs::write(&path, &text).unwrap();
        let error = RuleSet::load(&path).unwrap_err();
        assert!(matches!(error, RulesError::TooLarge { .. }), "{error}");
        assert!(error.to_string().contains("larger than 4 MiB"), "{error}");
    }

    #[test]
    fn many_offsets_in_any_order_are_placed_as_one_at_a_time() {
        // Several on one line, one on a newline, repeats, and one inside a character.
        let text = "ab\né\nxyz\n\nlast line éé";
        let offsets = [20, 0, 3, 8, 8, 2, 11, 5, 1, 99, 13, 21, 22, 4];
        let placed = Lines::new(text).positions(&offsets);
        let one_at_a_time: Vec<Position> = offsets
            .iter()
            .map(|&offset| {
                let before = &text[..char_boundary(text, offset)];
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                Position {
                    line: before.matches('\n').count() as u64 + 1,
                    column: before[line_start..].chars().count() as u64 + 1,
                }
            })
            .collect();
        assert_eq!(placed, one_at_a_time);
        assert_eq!(
            placed[0],
            Position {
                line: 5,
                column: 10
            }
        );
        // Inside a character: placed at the character (the second byte of é, then of the
        // first é of the last line), whatever the comparison above computes.
        let inside = |line, column| Position { line, column };
        assert_eq!(placed[13], inside(2, 1));
        assert_eq!(placed[12], inside(5, 11));
    }

    #[test]
    fn a_duplicate_name_names_the_line_of_its_first_use() {
        let rule = |name: &str| {
            format!("[[rule]]\nname = \"{name}\"\nservice_account = true\nreason = \"r\"\n[rule.match]\nmarked = false\n")
        };
        let text = [rule("a"), rule("b"), rule("a"), rule("b"), rule("a")].concat();
        let problems = RuleSet::parse(&text).unwrap_err();
        let found: Vec<(u64, ProblemKind)> =
            problems.into_iter().map(|p| (p.at.line, p.kind)).collect();
        let duplicate = |name: &str, first_line| ProblemKind::DuplicateName {
            name: name.to_owned(),
            first_line,
        };
        assert_eq!(
            found,
            [
                (14, duplicate("a", 2)),
                (20, duplicate("b", 8)),
                (26, duplicate("a", 2)),
            ]
        );
    }
}
