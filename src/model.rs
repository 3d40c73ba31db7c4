//! The shared vocabulary, in the bottom layer with `text` and `secret`
//! (`docs/architecture.md`): typed rows, outcomes, what a failure means, the tally, why a
//! run stopped, the engine's figures, and the values every layer speaks of. Nothing here
//! does I/O or lays out a file (the writers in `output` do); the words of a value are
//! made with it: an outcome's word, and what a stop says, from one table.

use std::fmt;
use std::io;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

/// The longest reason the API accepts, in UTF-16 code units (JavaScript's length).
pub(crate) const MAX_REASON_UNITS: usize = 30_000;
/// The undo file's last column: when the run it undoes started. An input with this column
/// is an undo file: its cells are exact text (no formula prefix to strip, no escapes), and
/// it restores states Drata held, which no rule meant for new decisions refuses.
pub(crate) const UNDO_OF_COLUMN: &str = "undoOf";
/// The largest id JavaScript represents exactly (2^53 - 1).
pub(crate) const MAX_ID: u64 = 9_007_199_254_740_991;

/// Length as JavaScript counts it: UTF-16 code units.
pub(crate) fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// A valid input row: what to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// The physical line on which the record starts (the header is line 1).
    pub line: u64,
    pub id: RowId,
    pub flag: bool,
    pub reason: String,
    /// The rule that decided the row (`--rules`); `None` for a row of the input.
    pub rule: Option<Arc<str>>,
    /// Drata's state when the file was exported (the export's `drataServiceAccount` and
    /// `drataReason`), when the row carries it: the review is then three-way.
    pub baseline: Option<Baseline>,
    /// What the row asks of the identity's link to a person; `None` when the input has
    /// no link column (links are then not touched).
    pub link: Option<LinkRequest>,
    /// What the row asks of each access toggle it decides (an input without the column,
    /// or a blank cell, leaves the toggle alone).
    pub access: Vec<AccessRequest>,
}

/// What a row asks of an identity, as the fields read it: from a row about to be
/// decided ([`Row::wanted`]) or from its report row after the run ([`ReportRow::wanted`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wanted<'a> {
    /// `None` for an invalid row whose flag did not parse.
    pub flag: Option<bool>,
    pub reason: &'a str,
    pub baseline: Option<&'a Baseline>,
    pub link: Option<&'a LinkRequest>,
    pub access: &'a [AccessRequest],
}

impl Row {
    pub(crate) fn wanted(&self) -> Wanted<'_> {
        Wanted {
            flag: Some(self.flag),
            reason: &self.reason,
            baseline: self.baseline.as_ref(),
            link: self.link.as_ref(),
            access: &self.access,
        }
    }
}

/// A request that changes one field of an identity, as a field makes it
/// (`crate::field`) and the client sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write<'a> {
    /// `PUT …/{id}/service-account` with the flag and its reason.
    ServiceAccount { flag: bool, reason: &'a str },
    /// `PUT …/{id}/connect`: link to this Drata user, or unlink (`None`).
    Connect(Option<u64>),
    /// `PUT …/{id}/toggle` with `toggleField` and the value.
    Toggle {
        toggle_field: &'static str,
        on: bool,
    },
}

/// Who an identity is linked to, as the review compares it: nobody, or the Drata user
/// with this email (lower-cased: emails compare ignoring case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Link {
    Nobody,
    User(String),
}

impl Link {
    /// The link a cell names: empty is nobody.
    pub(crate) fn from_cell(cell: &str) -> Self {
        match cell.trim() {
            "" => Link::Nobody,
            // ASCII case only, as Drata stores emails: `K` (U+212A, the Kelvin sign) is
            // not `k`, and a cell that differs from a user's email by more is another email.
            email => Link::User(email.to_ascii_lowercase()),
        }
    }

    /// The cell that names it: the email, or empty for nobody.
    pub(crate) fn cell(&self) -> &str {
        match self {
            Link::Nobody => "",
            Link::User(email) => email,
        }
    }

    /// For people: `nobody`, or the email.
    pub(crate) fn describe(&self) -> &str {
        match self {
            Link::Nobody => "nobody",
            Link::User(email) => email,
        }
    }
}

/// A row's link decision (its `linkedUser` cell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkRequest {
    pub link: Link,
    /// The Drata user's id, resolved through the users listing; `None` for nobody, and
    /// offline (`validate`).
    pub user: Option<u64>,
    /// Who Drata showed it linked to when the file was exported (`drataLinkedUser`), when
    /// the row carries it: the review of the link is then three-way.
    pub baseline: Option<Link>,
}

impl LinkRequest {
    /// What `connect` is sent: `Some(None)` to unlink, `Some(Some(user))` to link; `None`
    /// for an email not resolved (offline), which nothing is sent for.
    pub(crate) fn target(&self) -> Option<Option<u64>> {
        match self.link {
            Link::Nobody => Some(None),
            Link::User(_) => self.user.map(Some),
        }
    }
}

/// Who decided a row, as the report's `source` says it: `input` or `rule:NAME`.
pub(crate) fn source_text(rule: Option<&str>) -> String {
    rule.map_or_else(|| "input".to_owned(), |name| format!("rule:{name}"))
}

/// A service-account state as the review compares it: flags as booleans, reasons
/// trimmed, and no reason on an identity that is not a service account (Drata keeps none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Baseline {
    pub marked: bool,
    pub reason: String,
}

impl Baseline {
    /// The state normalised for comparison.
    pub(crate) fn new(marked: bool, reason: &str) -> Self {
        Self {
            marked,
            reason: if marked {
                reason.trim().to_owned()
            } else {
                String::new()
            },
        }
    }
}

/// What the three-way review makes of a row (`docs/contract.md`, "What the reviewer
/// meant"): the baseline (Drata at export), the row (the reviewer's decision) and the
/// current state (Drata now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Review {
    /// The row asks for a change: send it.
    Send,
    /// Drata already holds what the row asks.
    Unchanged,
    /// The reviewer did not edit the row, but Drata changed since the export: Drata's
    /// change is kept.
    Drifted,
    /// The reviewer edited the row, and Drata changed since the export to something else.
    Conflict,
}

/// How a row names its identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum RowId {
    /// Drata's numeric id.
    Id(u64),
    /// Named by username or email, not resolved (offline: `validate`).
    Unresolved,
}

impl RowId {
    pub(crate) fn id(&self) -> Option<u64> {
        match self {
            RowId::Id(id) => Some(*id),
            RowId::Unresolved => None,
        }
    }
}

/// The final state of one input row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    Updated,
    Unchanged,
    Failed,
    Invalid,
    Duplicate,
    Skipped,
    NotAttempted,
    WouldUpdate,
    NotFound,
    /// Not edited, changed in Drata since the export: nothing sent.
    Drifted,
    /// Edited, and changed in Drata since the export to something else: not sent.
    Conflict,
}

impl Outcome {
    pub(crate) const ALL: [Outcome; 11] = [
        Outcome::Updated,
        Outcome::Unchanged,
        Outcome::Failed,
        Outcome::Invalid,
        Outcome::Duplicate,
        Outcome::Skipped,
        Outcome::NotAttempted,
        Outcome::WouldUpdate,
        Outcome::NotFound,
        Outcome::Drifted,
        Outcome::Conflict,
    ];

    /// The word in the report, the summary and the logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Failed => "failed",
            Outcome::Invalid => "invalid",
            Outcome::Duplicate => "duplicate",
            Outcome::Skipped => "skipped",
            Outcome::NotAttempted => "not_attempted",
            Outcome::WouldUpdate => "would_update",
            Outcome::NotFound => "not_found",
            Outcome::Drifted => "drifted",
            Outcome::Conflict => "conflict",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// Outcomes that make the exit code 1.
    pub(crate) fn is_problem(self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::Invalid | Outcome::NotFound | Outcome::Conflict
        )
    }

    /// Outcomes a later `--resume-from` treats as done.
    pub(crate) fn is_done(self) -> bool {
        matches!(
            self,
            Outcome::Updated | Outcome::Unchanged | Outcome::Skipped | Outcome::Drifted
        )
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The identity as Drata described it: in the answer to a PUT, or in the listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IdentityView {
    pub username: Option<String>,
    pub email: Option<String>,
    /// When it was marked as a service account; `None` when it is not one.
    pub service_account_at: Option<String>,
    /// Client type, alias and id of the connection it was discovered through
    /// (`AWS aws-prod #1`): usernames repeat across clouds.
    pub connection: Option<String>,
}

/// The state of an identity before the run, when the listing was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Previous {
    pub marked: bool,
    pub reason: Option<String>,
    /// Who it was linked to, when the run decides links.
    pub link: Option<Link>,
    /// The id of the Drata user it was linked to, when Drata named one.
    pub linked_user_id: Option<u64>,
    /// Its access toggles, as the listing showed them.
    pub access: Toggles,
}

impl From<&Previous> for Baseline {
    fn from(previous: &Previous) -> Self {
        Baseline::new(previous.marked, previous.reason.as_deref().unwrap_or(""))
    }
}

/// The report's id cell: a typed id, or the cell of an invalid row as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IdCell {
    Id(u64),
    /// An invalid row's cell, shortened, for the reader of the report.
    Raw(String),
    /// Named by username or email and never resolved.
    Empty,
}

impl From<&RowId> for IdCell {
    fn from(id: &RowId) -> Self {
        match id {
            RowId::Id(id) => IdCell::Id(*id),
            RowId::Unresolved => IdCell::Empty,
        }
    }
}

/// One report row: every input row gets exactly one, and it cannot exist without an
/// outcome. `finished_at` is stamped by the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportRow {
    pub line: u64,
    pub id: IdCell,
    /// The desired flag; `None` for an invalid row whose flag did not parse.
    pub flag: Option<bool>,
    pub reason: String,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    /// What the engine made of the row's last failed attempt; `None` when no attempt
    /// failed.
    pub failure: Option<FailureKind>,
    pub attempts: u32,
    /// One line for humans; empty on success.
    pub error: String,
    pub identity: IdentityView,
    pub previous: Option<Previous>,
    /// The rule that decided the row; `None` for a row of the input.
    pub rule: Option<Arc<str>>,
    /// The state at export, when the row carried it (drifted and conflicting rows show it).
    pub baseline: Option<Baseline>,
    /// After the run, whether Drata holds the row's desired state; `None` when not checked.
    pub verified: Option<bool>,
    /// What the check after the run read of the identity (flag, reason, link); `None` when
    /// it was not checked or the listing did not show it.
    pub checked: Option<Box<Previous>>,
    /// The row's link decision, when it makes one.
    pub link: Option<LinkRequest>,
    /// The row's access decisions, one per toggle it decides.
    pub access: Vec<AccessRequest>,
    /// The fields the row's requests were meant for: what the check after the run
    /// compares (a field not sent is expected to stay as Drata holds it).
    pub sent: Fields,
    /// What each request sent was answered. A `failed` row with a 2xx is partly applied.
    pub answers: Answers,
}

/// A field of the identity row that a review decides (`docs/fields.md`): each is defined
/// once, in `crate::field`; this is only its name, for sets and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum FieldName {
    /// `serviceAccount` with its reason.
    ServiceAccount,
    /// `linkedUser`: the person the identity belongs to.
    Link,
    /// One of the access toggles.
    Access(Access),
}

impl FieldName {
    /// Its bit in [`Fields`].
    fn bit(self) -> u8 {
        match self {
            FieldName::ServiceAccount => 1,
            FieldName::Link => 2,
            FieldName::Access(access) => 4 << access.index(),
        }
    }
}

/// The access an identity may have that a review records for connections that do not
/// report it: admin and production-database access (infrastructure), write and
/// production-push access (version control). Drata shows each as a timestamp when on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Access {
    Admin,
    Db,
    Write,
    PushProductionCode,
}

impl Access {
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The access toggles as Drata shows them (`None`: not shown, or not read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct Toggles([Option<bool>; 4]);

impl Toggles {
    pub(crate) fn get(&self, access: Access) -> Option<bool> {
        self.0[access.index()]
    }

    pub(crate) fn set(&mut self, access: Access, on: Option<bool>) {
        self.0[access.index()] = on;
    }
}

/// A row's decision of one access toggle (its `adminAccess`… cell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccessRequest {
    pub access: Access,
    pub on: bool,
    /// As Drata showed it at export (`drataAdminAccess`…), when the row carries it.
    pub baseline: Option<bool>,
}

/// A set of fields: which a row's requests went out for, were answered 2xx for, …
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct Fields(u8);

impl Fields {
    pub(crate) fn any(self) -> bool {
        self.0 != 0
    }

    pub(crate) fn contains(self, field: FieldName) -> bool {
        self.0 & field.bit() != 0
    }

    pub(crate) fn insert(&mut self, field: FieldName) {
        self.0 |= field.bit();
    }

    #[cfg(test)]
    pub(crate) fn with(mut self, field: FieldName) -> Self {
        self.insert(field);
        self
    }
}

/// What Drata's answer to a field's request proves (`engine::retry::answer` decides it,
/// once, from the attempt): the one answer to "was this field applied?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A 2xx: applied.
    Applied,
    /// A certain refusal (a 4xx, a redirect): not applied.
    Refused,
    /// Sent, and answered neither (a 5xx, a timeout, a lost connection): Drata may have
    /// saved it; only the check after the run can tell.
    Uncertain,
}

/// Each field a row's requests were sent for, with what its answer proves. A field not
/// here was not sent (the row asked nothing of it, or an earlier request failed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Answers(Vec<(FieldName, Answer)>);

impl Answers {
    pub(crate) fn record(&mut self, field: FieldName, answer: Answer) {
        self.0.retain(|(f, _)| *f != field);
        self.0.push((field, answer));
    }

    /// The fields whose answer is one of `answers`.
    pub(crate) fn fields(&self, answers: &[Answer]) -> Fields {
        let mut fields = Fields::default();
        for (field, answer) in &self.0 {
            if answers.contains(answer) {
                fields.insert(*field);
            }
        }
        fields
    }

    /// The fields answered 2xx.
    pub(crate) fn applied(&self) -> Fields {
        self.fields(&[Answer::Applied])
    }

    /// The fields Drata may hold as sent: answered 2xx, or without a certain refusal.
    pub(crate) fn may_be_applied(&self) -> Fields {
        self.fields(&[Answer::Applied, Answer::Uncertain])
    }
}

impl ReportRow {
    /// A row that ends without a request.
    pub(crate) fn new(
        line: u64,
        id: IdCell,
        flag: Option<bool>,
        reason: String,
        outcome: Outcome,
        error: impl Into<String>,
    ) -> Self {
        Self {
            line,
            id,
            flag,
            reason,
            outcome,
            http_status: None,
            failure: None,
            attempts: 0,
            error: error.into(),
            identity: IdentityView::default(),
            previous: None,
            rule: None,
            baseline: None,
            verified: None,
            checked: None,
            link: None,
            access: Vec::new(),
            sent: Fields::default(),
            answers: Answers::default(),
        }
    }

    /// The report row of a valid row.
    pub(crate) fn of(row: &Row, outcome: Outcome, error: impl Into<String>) -> Self {
        let mut report = Self::new(
            row.line,
            IdCell::from(&row.id),
            Some(row.flag),
            row.reason.clone(),
            outcome,
            error,
        );
        report.rule = row.rule.clone();
        report.baseline = row.baseline.clone();
        report.link = row.link.clone();
        report.access.clone_from(&row.access);
        report
    }

    pub(crate) fn wanted(&self) -> Wanted<'_> {
        Wanted {
            flag: self.flag,
            reason: &self.reason,
            baseline: self.baseline.as_ref(),
            link: self.link.as_ref(),
            access: &self.access,
        }
    }

    /// Failed, but Drata answered 2xx to one of its requests: it holds part of the row.
    pub(crate) fn partly_applied(&self) -> bool {
        self.outcome == Outcome::Failed && self.answers.applied().any()
    }

    pub(crate) fn id(&self) -> Option<u64> {
        match self.id {
            IdCell::Id(id) => Some(id),
            IdCell::Raw(_) | IdCell::Empty => None,
        }
    }
}

/// What a failed attempt means for the row and the run. The engine decides it, once
/// (`engine::retry::classify`); the row carries it to the tally and the resume hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// Try again after a backoff (5xx, 408, 429, timeouts, connection errors, a 2xx
    /// listing page that cannot be read).
    Retryable,
    /// This row cannot succeed (400, 404, other 4xx, 3xx); the run goes on.
    Row,
    /// Nothing can succeed (401, 402, 403, 412, a refused TLS certificate); the run stops.
    Fatal,
}

/// Row counts per outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    counts: [u64; Outcome::ALL.len()],
    /// Failed rows that no retry can change: the engine gave them up as
    /// [`FailureKind::Row`] (not found, not valid, redirected).
    permanent: u64,
    /// Rows the check after the run found applied, and rows answered 2xx that it found not
    /// applied (these make the exit code 1).
    verified: u64,
    unverified_updates: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, outcome: Outcome) {
        self.counts[outcome.index()] += 1;
    }

    /// Counts a finished row, with what makes a failure permanent.
    pub(crate) fn add_row(&mut self, row: &ReportRow) {
        self.add(row.outcome);
        if row.outcome == Outcome::Failed && row.failure == Some(FailureKind::Row) {
            self.permanent += 1;
        }
    }

    /// Takes back a row counted before (the check after the run changed its outcome).
    pub(crate) fn remove_row(&mut self, row: &ReportRow) {
        let count = &mut self.counts[row.outcome.index()];
        *count = count.saturating_sub(1);
        if row.outcome == Outcome::Failed && row.failure == Some(FailureKind::Row) {
            self.permanent = self.permanent.saturating_sub(1);
        }
    }

    /// Counts what the check after the run found of a row it checked.
    pub(crate) fn add_check(&mut self, row: &ReportRow) {
        match (row.verified, row.outcome) {
            (Some(true), _) => self.verified += 1,
            (Some(false), Outcome::Updated) => self.unverified_updates += 1,
            _ => {}
        }
    }

    /// Rows the check after the run found applied.
    pub(crate) fn verified(&self) -> u64 {
        self.verified
    }

    /// Rows answered 2xx that the check after the run did not find applied.
    pub(crate) fn unverified_updates(&self) -> u64 {
        self.unverified_updates
    }

    /// Failed rows a retry cannot change.
    pub(crate) fn permanent_failures(&self) -> u64 {
        self.permanent
    }

    pub(crate) fn get(&self, outcome: Outcome) -> u64 {
        self.counts[outcome.index()]
    }

    pub(crate) fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Rows whose request finished, for the `--max-failures` share.
    pub(crate) fn finished_requests(&self) -> u64 {
        self.get(Outcome::Updated) + self.get(Outcome::Failed)
    }

    /// Rows left to do: failed or not attempted.
    pub(crate) fn left_to_do(&self) -> u64 {
        self.get(Outcome::Failed) + self.get(Outcome::NotAttempted)
    }
}

/// What the request engine is doing now: the in-flight limit and recent latencies, for
/// the progress display.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Live {
    pub limit: usize,
    pub latency: LatencyFigures,
    /// What is left of a long pause a server asked for (`Retry-After`), while it lasts.
    pub paused: Option<std::time::Duration>,
}

/// The in-flight limit of a run. Field names are the summary's JSON schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ConcurrencyFigures {
    /// `auto`, or the fixed number given to `--concurrency`.
    pub(crate) mode: String,
    /// The limit when the run ended.
    pub(crate) limit: usize,
    /// The highest limit of the run.
    pub(crate) max: usize,
    /// Times a timeout, 5xx or 429 lowered it.
    pub(crate) reductions: u64,
}

/// The median and 95th percentile of request latencies, in milliseconds to 0.1; `None`
/// before any answer. Field names are the summary's JSON schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct LatencyFigures {
    pub(crate) p50: Option<f64>,
    pub(crate) p95: Option<f64>,
}

impl LatencyFigures {
    pub(crate) fn of(p50: Option<Duration>, p95: Option<Duration>) -> Self {
        let ms = |d: Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
        Self {
            p50: p50.map(ms),
            p95: p95.map(ms),
        }
    }
}

/// The signals that stop a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGINT, Ctrl-C.
    Interrupt,
    /// SIGTERM, as service managers and `kill` send it.
    Terminate,
}

/// Why a run stopped before every row was tried.
#[derive(Debug, Clone)]
pub(crate) enum StopReason {
    /// Invalid rows and no `--skip-invalid`: nothing is sent.
    InvalidInput { invalid_rows: u64 },
    /// 401, 402, 403, 412 or a refused certificate: the key, the account or the trust
    /// store cannot do this. The source is the failed attempt.
    Fatal(StopSource),
    /// `--max-failures` was passed.
    TooManyFailures { failed: u64, finished: u64 },
    /// SIGINT (Ctrl-C) or SIGTERM.
    Interrupted(Signal),
    /// A file rows are recorded in could not be written; going on would lose rows.
    ReportFailed {
        file: RecordFile,
        source: Arc<io::Error>,
    },
    /// The report holds another number of rows than the input: a task lost some.
    RowsLost { reported: u64, rows: u64 },
    /// The input could not be read again for the run.
    InputFailed(StopSource),
    /// More rows would change than `--max-changes` allows.
    TooManyChanges { changes: u64, limit: u64 },
    /// The current state could not be fetched from Drata.
    StateUnavailable(StopSource),
}

/// The files a finished row is recorded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordFile {
    Report,
    Undo,
    Evidence,
    /// The journal of the requests (`NAME.journal.jsonl`).
    Journal,
}

/// The error behind a stop, from a layer above this one: kept as a value, with its type
/// and its `source()` chain, until the stop is told.
#[derive(Debug, Clone)]
pub(crate) struct StopSource(Arc<dyn std::error::Error + Send + Sync>);

impl StopSource {
    pub(crate) fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }
}

impl fmt::Display for StopSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a stop says, told in one place ([`StopReason::text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StopText {
    /// Why the run stopped, for the summary and the logs: what happened, not what it did
    /// to a row (some rows may have been sent before).
    pub cause: String,
    /// The `error` cell of rows this stop left unsent.
    pub row_error: String,
}

impl StopReason {
    /// True for the stops that abort a run (exit 3), as opposed to a signal or invalid input.
    pub(crate) fn is_abort(&self) -> bool {
        !matches!(
            self,
            StopReason::Interrupted(_) | StopReason::InvalidInput { .. }
        )
    }

    /// Why the run stopped, for the summary and the logs.
    pub(crate) fn cause(&self) -> String {
        self.text().cause
    }

    /// The `error` cell of a row this stop left unsent.
    pub(crate) fn row_error(&self) -> String {
        self.text().row_error
    }

    /// The one table of what each stop says: its cause, and the cell of an unsent row.
    fn text(&self) -> StopText {
        let told = |cause: String, row_error: String| StopText { cause, row_error };
        // Most stops say the same thing twice, the cell after "not sent: ".
        let plain = |cause: String| told(cause.clone(), format!("not sent: {cause}"));
        match self {
            StopReason::InvalidInput { invalid_rows } => {
                let what = format!(
                    "the input has {invalid_rows} invalid rows (fix them or pass --skip-invalid)"
                );
                told(format!("{what}; nothing was sent"), format!("not sent: {what}"))
            }
            StopReason::Fatal(source) => told(
                source.to_string(),
                format!("not sent: the run was aborted ({source})"),
            ),
            StopReason::TooManyFailures { failed, finished } => told(
                format!("{failed} of {finished} rows failed, past --max-failures"),
                format!(
                    "not sent: the run was aborted after {failed} of {finished} rows failed (--max-failures)"
                ),
            ),
            // The signal is in the exit code (130 or 143).
            StopReason::Interrupted(signal) => told(
                match signal {
                    Signal::Interrupt => "interrupted by SIGINT",
                    Signal::Terminate => "interrupted by SIGTERM",
                }
                .to_owned(),
                "interrupted".to_owned(),
            ),
            StopReason::ReportFailed { file, source } => {
                let file = match file {
                    RecordFile::Report => "",
                    RecordFile::Undo => "undo file: ",
                    RecordFile::Evidence => "evidence file: ",
                    RecordFile::Journal => "journal: ",
                };
                plain(format!("the report could not be written ({file}{source})"))
            }
            StopReason::RowsLost { reported, rows } => plain(format!(
                "the report could not be written (the report has {reported} rows for {rows} input rows)"
            )),
            StopReason::InputFailed(source) => {
                plain(format!("the input could not be read ({source})"))
            }
            StopReason::TooManyChanges { changes, limit } => told(
                format!(
                    "refusing: {changes} rows would be updated, more than --max-changes {limit}; nothing was sent"
                ),
                format!("not sent: {changes} rows would change, more than --max-changes {limit}"),
            ),
            StopReason::StateUnavailable(source) => plain(format!(
                "the current state could not be read from Drata ({source})"
            )),
        }
    }
}

/// How a row names its identity when it has no id: resolved through Drata's listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LookupKey {
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

/// Why a [`LookupKey`] names no single identity.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum LookupError {
    #[error("no identity in Drata has {0}")]
    NoMatch(LookupKey),
    #[error("{count} identities have {key}: {}{}; add a connection or clientType column", .candidates.join(", "), if *.count > .candidates.len() { ", …" } else { "" })]
    Several {
        key: LookupKey,
        count: usize,
        /// The first candidates, `id (connection)`.
        candidates: Vec<String>,
    },
    #[error("id {id} is {in_drata} in Drata; the row says {in_row}")]
    Mismatch {
        id: u64,
        in_drata: String,
        in_row: String,
    },
    #[error(
        "id {id} is not in Drata's listing, but the row's {key} is id {other}: a typo in the id?"
    )]
    NotThisId { id: u64, key: LookupKey, other: u64 },
    #[error("no Drata user has the email {0:?}")]
    NoUser(String),
    #[error("no Drata user has the email {cell:?}; the user {user:?} differs from it only by Unicode case or a look-alike character: write the email exactly as Drata has it")]
    LookAlikeUser { cell: String, user: String },
    #[error("{count} Drata users have the email {email:?}: link the identity in Drata")]
    SeveralUsers { email: String, count: usize },
    #[error("the users listing was not read, so the email {0:?} cannot be resolved")]
    UsersUnread(String),
}

/// What a rule may look at of one identity (`input::rules`): the listing's facts,
/// borrowed, so that deciding 50,000 identities copies nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Subject<'a> {
    pub id: u64,
    pub username: Option<&'a str>,
    pub email: Option<&'a str>,
    pub client_type: Option<&'a str>,
    pub connection_alias: Option<&'a str>,
    pub connection_id: Option<u64>,
    /// Linked to a Drata user.
    pub linked: bool,
    /// Already a service account.
    pub marked: bool,
    /// Its access toggles, as the listing shows them.
    pub access: Toggles,
}

/// Resolves a [`LookupKey`] to an id, and checks names given beside an id.
pub(crate) trait Lookup: Send + Sync {
    fn resolve(&self, key: &LookupKey) -> Result<u64, LookupError>;

    /// `Err` when the identity `id` has another username or email than `key` says; an
    /// id the listing does not hold cannot be checked, and passes.
    fn check(&self, id: u64, key: &LookupKey) -> Result<(), LookupError>;

    /// The id of the Drata user with this email (any case).
    fn user(&self, email: &str) -> Result<u64, LookupError>;
}

/// Which kind of identity a run addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum IdentityKind {
    #[default]
    Infrastructure,
    VersionControl,
}

impl IdentityKind {
    /// The path segment, and the word in messages.
    pub(crate) fn path_segment(self) -> &'static str {
        match self {
            IdentityKind::Infrastructure => "infrastructure",
            IdentityKind::VersionControl => "version-control",
        }
    }
}

#[derive(Debug, Error, PartialEq)]
#[error("invalid rate {0:?}: expected N/s, N/min, N/h (N at least 1) or unlimited")]
pub struct RateError(String);

/// A request rate: `count` requests every `per`, or no limit at all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    Limited { count: NonZeroU32, per: Duration },
    Unlimited,
}

impl Rate {
    /// Requests per minute; `None` when unlimited.
    #[cfg(test)]
    pub(crate) fn per_minute(&self) -> Option<f64> {
        match self {
            Rate::Limited { count, per } => Some(count.get() as f64 * 60.0 / per.as_secs_f64()),
            Rate::Unlimited => None,
        }
    }

    /// The time between two requests at this rate.
    pub(crate) fn interval(&self) -> Option<Duration> {
        match self {
            Rate::Limited { count, per } => Some(*per / count.get()),
            Rate::Unlimited => None,
        }
    }
}

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || RateError(text.to_owned());
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("unlimited") {
            return Ok(Rate::Unlimited);
        }
        let (count, unit) = trimmed.split_once('/').ok_or_else(err)?;
        let count: u32 = count.trim().parse().map_err(|_| err())?;
        let count = NonZeroU32::new(count).ok_or_else(err)?;
        let per = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(err()),
        };
        Ok(Rate::Limited { count, per })
    }
}

impl fmt::Display for Rate {
    /// The form `--rate` takes, so that a printed command means the same rate.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Unlimited => f.write_str("unlimited"),
            Rate::Limited { count, per } => match per.as_secs() {
                1 => write!(f, "{count}/s"),
                60 => write!(f, "{count}/min"),
                _ => write!(f, "{count}/h"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print_back() {
        assert_eq!("450/min".parse::<Rate>().unwrap().per_minute(), Some(450.0));
        assert_eq!("8/s".parse::<Rate>().unwrap().per_minute(), Some(480.0));
        assert_eq!("60/h".parse::<Rate>().unwrap().per_minute(), Some(1.0));
        assert_eq!("Unlimited".parse::<Rate>().unwrap(), Rate::Unlimited);
        for bad in ["0/s", "abc", "5", "5/day", "-1/s", ""] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
        for text in ["450/min", "8/s", "60/h", "unlimited"] {
            assert_eq!(text.parse::<Rate>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn only_rows_the_engine_gave_up_on_for_themselves_fail_for_good() {
        let row = Row {
            line: 2,
            id: RowId::Id(7),
            flag: true,
            reason: "r".to_owned(),
            rule: None,
            baseline: None,
            link: None,
            access: Vec::new(),
        };
        let failed = |kind: Option<FailureKind>| {
            let mut report = ReportRow::of(&row, Outcome::Failed, "x");
            report.failure = kind;
            report
        };
        let mut tally = Tally::default();
        tally.add_row(&failed(Some(FailureKind::Row)));
        assert_eq!(tally.permanent_failures(), 1);
        for kind in [None, Some(FailureKind::Retryable), Some(FailureKind::Fatal)] {
            tally.add_row(&failed(kind));
        }
        let mut not_attempted = ReportRow::of(&row, Outcome::NotAttempted, "x");
        not_attempted.failure = Some(FailureKind::Row);
        tally.add_row(&not_attempted);
        assert_eq!(tally.permanent_failures(), 1, "{tally:?}");
        assert_eq!(tally.left_to_do(), 5);
    }

    #[test]
    fn a_stop_tells_its_cause_and_the_cell_of_an_unsent_row() {
        let told = |stop: StopReason| (stop.cause(), stop.row_error());
        let lost = io::Error::other("disk full");
        assert_eq!(
            told(StopReason::ReportFailed {
                file: RecordFile::Undo,
                source: Arc::new(lost),
            }),
            (
                "the report could not be written (undo file: disk full)".to_owned(),
                "not sent: the report could not be written (undo file: disk full)".to_owned()
            )
        );
        assert_eq!(
            told(StopReason::RowsLost {
                reported: 2,
                rows: 3
            })
            .0,
            "the report could not be written (the report has 2 rows for 3 input rows)"
        );
        assert_eq!(
            told(StopReason::InvalidInput { invalid_rows: 4 }),
            (
                "the input has 4 invalid rows (fix them or pass --skip-invalid); nothing was sent"
                    .to_owned(),
                "not sent: the input has 4 invalid rows (fix them or pass --skip-invalid)"
                    .to_owned()
            )
        );
        assert_eq!(
            told(StopReason::Interrupted(Signal::Terminate)),
            (
                "interrupted by SIGTERM".to_owned(),
                "interrupted".to_owned()
            )
        );
        let source = StopReason::InputFailed(StopSource::new(io::Error::other("gone")));
        assert_eq!(source.cause(), "the input could not be read (gone)");
    }

    #[test]
    fn outcomes_round_trip() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
    }

    #[test]
    fn utf16_length_counts_surrogate_pairs() {
        assert_eq!(utf16_len("abc"), 3);
        assert_eq!(utf16_len("é"), 1);
        assert_eq!(utf16_len("😀"), 2);
        assert_eq!(utf16_len(&"😀".repeat(15_001)), 30_002);
    }
}
