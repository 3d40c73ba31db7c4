//! `apply` and `plan` over one [`Run`]: prepare reads and validates the whole input
//! (resolving usernames and emails through the listing when needed) and connects; the
//! output files are created (and locked) and the current state read; the preview passes
//! over every row against it (the plan, the invalid rows, `--max-changes`); execute
//! streams every row through the planner and the workers into the one consumer; the
//! check after the run reads the state again; finish writes the summary and the evidence
//! and decides the exit code.

mod consume;
mod planner;
mod review;
mod rules;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use self::consume::{consume, ConsumeOptions, Outputs};
use self::planner::{Decision, Planner};
use super::blocking::{read_unless_stopped, rules_unless_stopped};
use super::session::Session;
use crate::config::{LogFormat, Mode, RunConfig};
use crate::drata::Users;
use crate::engine::{
    self, spawn_workers, watch_signals, Directory, Job, Listing, RunControl, Signals,
};
use crate::error::Error;
use crate::exit;
use crate::field::{self, AccessField};
use crate::input::rules::{RuleSet, RulesError};
use crate::input::{
    self, load_done_rows, Access, DoneRows, InputError, InputFile, InputLock, InputScan,
    ResumeTarget, RowReader, SnapshotReader,
};
use crate::input::{Problem, Record, PROBLEMS_SHOWN};
use crate::model::{Lookup, Outcome, RecordFile, ReportRow, StopReason, StopSource, Tally};
use crate::output::{
    column_mapping_line, Change, EvidenceRecorder, ExportAge, InvalidRows, PlanView, Progress,
    ReportWriter, RowProblem, UndoColumns, UndoWriter, CHANGES_SHOWN,
};
use crate::text::plural;

use self::rules::{RuleRow, RuleRows};

mod files;
mod finish;

use self::files::{create_files, Files, Undo};

/// What prepare learned and opened, for execute and finish.
struct Run {
    started: Instant,
    started_at: SystemTime,
    run_id: String,
    control: Arc<RunControl>,
    input: Arc<InputFile>,
    scan: Arc<InputScan>,
    lookup: Option<Arc<dyn Lookup>>,
    session: Option<Session>,
    /// The listing, when it was read (lookups, and every `plan` and `apply`).
    listing: Option<Arc<Listing>>,
    /// Drata's users, when the input decides links.
    users: Option<Arc<Users>>,
    /// Invalid rows and no `--skip-invalid`: nothing is sent.
    blocked: bool,
    /// Drata refused the listing (403) and `--resend` went on without it.
    state_refused: bool,
    /// Held until the run ends: a second `apply` of the same file is refused.
    _lock: Option<InputLock>,
    /// `--rules`: checked before anything is sent.
    rules: Option<Arc<RuleSet>>,
    /// What the rules decided, once the listing was read.
    rule_rows: Option<Arc<RuleRows>>,
    /// The access toggles the input decides (their columns are present).
    access_fields: Vec<&'static AccessField>,
}

impl Run {
    /// The fields the undo file puts back besides the service account.
    fn undo_columns(&self) -> UndoColumns {
        UndoColumns {
            links: self.users.is_some(),
            access: self.access_fields.clone(),
        }
    }

    /// Rows of the run: the input's, and those the rules decided.
    fn rows(&self) -> u64 {
        self.scan.rows + self.rule_rows.as_ref().map_or(0, |r| r.rows.len() as u64)
    }
}

impl Run {
    /// The base URL the run talks to; empty when nothing can be sent.
    fn api(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.base_url.as_str())
    }
}

/// Runs `apply` or `plan` and returns the exit code.
pub(super) async fn run(config: RunConfig) -> Result<u8, Error> {
    let control = Arc::new(RunControl::default());
    let signals = watch_signals(Signals::install(), Arc::clone(&control));
    let mut run = prepare(&config, control).await?;
    let done = match &config.apply.resume_from {
        Some(path) => {
            let target = ResumeTarget {
                kind: config.connect.kind,
                api: run.api(),
            };
            let (file, kind, api) = (path.clone(), target.kind, target.api.to_owned());
            let load = move || load_done_rows(&file, ResumeTarget { kind, api: &api });
            let report = "the report of --resume-from";
            let done = read_unless_stopped(&run.control, report, path, load).await?;
            tracing::info!(rows = done.len(), report = %path.display(), "rows already done");
            done
        }
        None => DoneRows::default(),
    };
    let files = create_files(&config, &run)?;
    // What plan shows is what apply sends: both read the state first.
    if !run.control.is_stopped() {
        if let (None, Some(session)) = (&run.listing, &run.session) {
            run.listing = if config.resend() {
                read_listing_unless_refused(session, &run.control, &mut run.state_refused).await
            } else {
                read_listing(session, &run.control).await
            };
        }
    }
    if let (Some(rule_set), Some(listing)) = (&run.rules, &run.listing) {
        let today = super::utc_date(run.started_at);
        run.rule_rows = Some(Arc::new(rules::rule_rows(
            rule_set,
            &listing.state,
            &run.scan,
            &done,
            &today,
        )));
    }
    let planner = Arc::new(Planner {
        mode: config.mode,
        scan: Arc::clone(&run.scan),
        done,
        listing: run.listing.clone(),
        resend: config.resend(),
        overwrite_drift: config.options.overwrite_drift,
        users: run.users.clone(),
    });
    // What plan shows is what apply sends: both count the changes first, and find the
    // rows invalid against the state before anything is sent.
    let changes = preview(&config, &run, &planner).await;
    let (mut tally, mut files) = execute(&config, &run, planner, files).await?;
    finish::verify(&config, &run, &mut tally, &mut files).await;
    signals.abort();
    let code = finish::finish(&config, &run, tally, files);
    Ok(match changes {
        Some(changes) if config.plan.detailed_exitcode => exit::for_plan(code, changes),
        _ => code,
    })
}

/// Runs blocking input work on the blocking pool; a panic there is an input error.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, InputError> + Send + 'static,
) -> Result<T, InputError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(InputError::Io {
            path: "input".to_owned(),
            source: std::io::Error::other(e.to_string()),
        })
    })
}

/// `apply --resend`: reads the listing as [`read_listing`] does, but when Drata refuses it
/// (403) the run goes on without the state and says so: every valid row is sent, as
/// `--resend` asks, with no previous state and no check after the run.
async fn read_listing_unless_refused(
    session: &Session,
    control: &RunControl,
    refused: &mut bool,
) -> Option<Arc<Listing>> {
    match engine::fetch_unless_refused(&session.engine).await {
        Ok(Some(listing)) => Some(Arc::new(listing)),
        Ok(None) => {
            *refused = true;
            tracing::warn!(
                "the current state could not be read (403): --resend goes on without it; every valid row is sent; previous states are unknown (the undo file cannot restore them) and the rows sent are not checked"
            );
            None
        }
        Err(e) => {
            control.stop(StopReason::StateUnavailable(StopSource::new(e)));
            None
        }
    }
}

/// Reads the listing; when it cannot be had, the run stops (exit 3).
async fn read_listing(session: &Session, control: &RunControl) -> Option<Arc<Listing>> {
    match engine::fetch(&session.engine).await {
        Ok(listing) => {
            tracing::info!(
                identities = listing.state.len(),
                requests = listing.pages,
                "current state read"
            );
            Some(Arc::new(listing))
        }
        Err(e) => {
            control.stop(StopReason::StateUnavailable(StopSource::new(e)));
            None
        }
    }
}

/// What the rows are resolved through before the scan: the listing when rows name
/// identities by username or email, the users listing when they decide links.
async fn read_directory(
    session: &Session,
    control: &RunControl,
    needs_lookup: bool,
    needs_users: bool,
) -> (Option<Arc<Listing>>, Option<Arc<Users>>, Arc<dyn Lookup>) {
    let listing = match needs_lookup {
        true => read_listing(session, control).await,
        false => None,
    };
    let users = match needs_users {
        true => read_users(session, control).await,
        false => None,
    };
    let lookup = Arc::new(Directory {
        listing: listing.clone(),
        users: users.clone(),
    });
    (listing, users, lookup)
}

/// Reads the users listing, once per run, when rows decide links; when it cannot be
/// had, the run stops (exit 3).
async fn read_users(session: &Session, control: &RunControl) -> Option<Arc<Users>> {
    match engine::fetch_users(&session.engine).await {
        Ok(users) => {
            tracing::info!(users = users.len(), "users read");
            Some(Arc::new(users))
        }
        Err(e) => {
            control.stop(StopReason::StateUnavailable(StopSource::new(e)));
            None
        }
    }
}

/// Reads and validates the whole input, resolving names through the listing when rows
/// need it, and connects unless the input blocks the run.
async fn prepare(config: &RunConfig, control: Arc<RunControl>) -> Result<Run, Error> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let rules = load_rules(config, &control).await?;
    tracing::debug!(input = %config.input.source.display(), "reading the input");
    // Reading the input blocks (standard input may never end): off the runtime thread,
    // so that Ctrl-C and SIGTERM are still heard.
    let options = config.input.clone();
    let input = Arc::new(off_thread(move || InputFile::open(&options, Access::Copy)).await?);
    // Locked once copied: on Windows the lock is mandatory, and would keep the copy from
    // reading the file through its own handle.
    let lock = match config.mode {
        Mode::Apply => input::lock(&config.input.source)?,
        Mode::Plan => None,
    };
    let reader = input.reader(&config.input, None)?;
    // The toggles the input's columns or a rule decide.
    let by_rules = { rules.iter() }
        .flat_map(|rules| rules.access_decided().collect::<Vec<_>>())
        .map(|access| &field::ACCESS[access.index()]);
    let access_fields = access_of_kind(config, reader.access_fields().chain(by_rules))?;
    tracing::info!(
        "{}",
        column_mapping_line(&reader.column_mapping(), reader.delimiter())
    );
    let needs_lookup = reader.needs_lookup();
    let needs_users = reader.needs_users();
    let (mut session, listing, users, lookup) = if needs_lookup || needs_users {
        // Before the scan, the line count bounds the ids.
        let connected = Session::connect(
            &config.connect,
            config.options.concurrency,
            input.line_count(),
            &control,
        )
        .await?;
        let (listing, users, lookup) =
            read_directory(&connected, &control, needs_lookup, needs_users).await;
        (Some(connected), listing, users, Some(lookup))
    } else {
        (None, None, None, None)
    };
    let scan = {
        let (input, options, lookup) = (Arc::clone(&input), config.input.clone(), lookup.clone());
        Arc::new(off_thread(move || input::scan(&input, &options, lookup)).await?)
    };
    let blocked = scan.invalid_rows > 0 && !config.options.skip_invalid;
    // Even with invalid rows, the state is read: rows invalid only against it (a blank
    // reason that must be sent) go in the same list, printed once it is read.
    if session.is_none() {
        let connected = Session::connect(
            &config.connect,
            config.options.concurrency,
            scan.max_id,
            &control,
        )
        .await;
        match connected {
            Ok(connected) => session = Some(connected),
            // Nothing would be sent anyway: the rows found invalid offline are the list.
            Err(e) if blocked => {
                tracing::warn!("the rows could not be checked against Drata's state: {e}");
                control.stop(StopReason::InvalidInput {
                    invalid_rows: scan.invalid_rows,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Run {
        started,
        started_at,
        run_id: format!("{:016x}", fastrand::u64(..)),
        control,
        input,
        scan,
        lookup,
        session,
        listing,
        users,
        blocked,
        state_refused: false,
        _lock: lock,
        rules,
        rule_rows: None,
        access_fields,
    })
}

/// The access toggles the input decides, refused (nothing sent) when a column is of the
/// other kind of identity than the run addresses (`writeAccess` in an infrastructure run).
fn access_of_kind(
    config: &RunConfig,
    fields: impl Iterator<Item = &'static AccessField>,
) -> Result<Vec<&'static AccessField>, Error> {
    let kind = config.connect.kind;
    let mut fields: Vec<&'static AccessField> = fields.collect();
    fields.sort_by_key(|field| field.access);
    fields.dedup_by_key(|field| field.access);
    if let Some(field) = fields.iter().find(|field| field.kind != kind) {
        return Err(input::InputError::AccessOfOtherKind {
            path: config.input.source.display().to_string(),
            column: field.column,
            words: field.words,
            column_kind: field.kind.path_segment(),
            kind: kind.path_segment(),
        }
        .into());
    }
    Ok(fields)
}

/// A rules file, checked whole before the input is read and anything is sent; a mass
/// unmarking needs an explicit `--max-changes` to be applied.
async fn load_rules(
    config: &RunConfig,
    control: &RunControl,
) -> Result<Option<Arc<RuleSet>>, Error> {
    let Some(rules) = rules_unless_stopped(control, config.input.rules.as_deref()).await? else {
        return Ok(None);
    };
    if config.mode == Mode::Apply && config.options.max_changes.is_none() {
        if let Some(rule) = rules.mass_unmarking() {
            let rule = rule.to_owned();
            return Err(RulesError::MassUnmarking { rule }.into());
        }
    }
    Ok(Some(Arc::new(rules)))
}

/// Every invalid row of the input, found offline or against Drata's state, in one list:
/// printed once, and, without `--skip-invalid`, nothing is sent. `late` is what the pass
/// against the state found, when it ran.
fn announce_invalid_rows(config: &RunConfig, run: &Run, late: Option<&Preview>) {
    let (late_invalid, late_problems) = late.map_or((0, &[][..]), |preview| {
        (preview.late_invalid, preview.late_problems.as_slice())
    });
    let invalid_rows = run.scan.invalid_rows + late_invalid;
    if invalid_rows == 0 {
        return;
    }
    let blocked = !config.options.skip_invalid;
    let mut first: Vec<RowProblem<'_>> = run
        .scan
        .first_problems
        .iter()
        .map(|problem| RowProblem {
            line: problem.line,
            column: &problem.column,
            message: &problem.message,
        })
        .chain(late_problems.iter().map(|problem| RowProblem {
            line: problem.line,
            column: &problem.column,
            message: &problem.message,
        }))
        .collect();
    first.sort_by_key(|problem| problem.line);
    first.truncate(PROBLEMS_SHOWN);
    config.output.console().invalid_rows(&InvalidRows {
        input: run.input.path(),
        invalid_rows,
        rows: run.scan.rows,
        blocked,
        first,
        problem_count: run.scan.problem_count + late_invalid,
    });
    if blocked {
        run.control.stop(StopReason::InvalidInput { invalid_rows });
    }
}

/// Counts the rows that would change and prints the plan's diff, reading the input once
/// more without sending anything; stops the run past `--max-changes`.
async fn preview(config: &RunConfig, run: &Run, planner: &Arc<Planner>) -> Option<u64> {
    if run.control.is_stopped() {
        announce_invalid_rows(config, run, None);
        return None;
    }
    // The JSON plan and -v show every change; the text diff the first ones.
    let shown_at_most = if config.plan.json || config.output.verbose > 0 {
        usize::MAX
    } else {
        CHANGES_SHOWN
    };
    let counted = {
        let (input, options, lookup) = (
            Arc::clone(&run.input),
            config.input.clone(),
            run.lookup.clone(),
        );
        let planner = Arc::clone(planner);
        let rule_rows = run.rule_rows.clone();
        off_thread(move || {
            let mut preview =
                count_changes(input.reader(&options, lookup)?, &planner, shown_at_most)?;
            if let Some(rule_rows) = rule_rows {
                count_rule_changes(&rule_rows, &planner, shown_at_most, &mut preview);
            }
            Ok(preview)
        })
        .await
    };
    let preview = match counted {
        Ok(counted) => counted,
        Err(e) => {
            announce_invalid_rows(config, run, None);
            run.control
                .stop(StopReason::InputFailed(StopSource::new(e)));
            return None;
        }
    };
    announce_invalid_rows(config, run, Some(&preview));
    let (changes, shown) = (preview.changes, &preview.shown);
    // Standard output holds the summary or the evidence when either is `-`.
    let stdout_taken = [&config.options.summary_json, &config.options.evidence]
        .into_iter()
        .flatten()
        .any(|path| path.as_os_str() == "-");
    if config.mode == Mode::Plan && !stdout_taken && !run.control.is_stopped() {
        let age = preview.exported_at.as_deref().map(|at| ExportAge {
            exported_at: at,
            now: SystemTime::now(),
            changed: preview.changed_since_export,
        });
        config.output.console().plan(
            config.plan.json,
            &PlanView {
                changes,
                link_changes: preview.link_changes,
                rows: run.rows(),
                shown,
                age,
                diverged: &preview.diverged,
            },
        );
    }
    if let Some(rule_rows) = &run.rule_rows {
        rule_table(config, run, rule_rows, &preview.per_rule);
    }
    if let Some(limit) = config.options.max_changes.filter(|limit| changes > *limit) {
        run.control
            .stop(StopReason::TooManyChanges { changes, limit });
    }
    Some(changes)
}

/// What a pass over the decisions found, before anything is sent.
#[derive(Default)]
struct Preview {
    changes: u64,
    /// Of the changes, those that change a link.
    link_changes: u64,
    shown: Vec<Change>,
    /// Rows valid on their own that the current state makes invalid (a `false` row
    /// without a reason whose identity is a service account): the first ones.
    late_problems: Vec<Problem>,
    late_invalid: u64,
    /// Drifted and conflicting rows, the first ones, with all three states.
    diverged: Vec<ReportRow>,
    /// Rows whose identity changed in Drata since the export.
    changed_since_export: u64,
    /// When the input was exported (its first `exportedAt` cell).
    exported_at: Option<String>,
    /// Per rule, in the file's order: identities it would change, and those already so.
    per_rule: Vec<(u64, u64)>,
}

/// The rules' rows through the planner: changes counted per rule, as the input's.
fn count_rule_changes(
    rule_rows: &RuleRows,
    planner: &Planner,
    shown_at_most: usize,
    preview: &mut Preview,
) {
    preview.per_rule = vec![(0, 0); rule_rows.matched.len()];
    for row in &rule_rows.rows {
        let RuleRow::Valid(row) = row else {
            continue;
        };
        let index = rule_rows
            .matched
            .iter()
            .position(|(name, _)| Some(name) == row.rule.as_ref());
        let decision = planner.decide(Record::Valid(row.clone()));
        let change = planner.change(&decision);
        if let Some(counts) = index.and_then(|i| preview.per_rule.get_mut(i)) {
            match (&change, &decision) {
                (Some(_), _) => counts.0 += 1,
                (None, Decision::Final(report)) if report.outcome == Outcome::Unchanged => {
                    counts.1 += 1;
                }
                _ => {}
            }
        }
        if let Some(change) = change {
            preview.changes += 1;
            if preview.shown.len() < shown_at_most {
                preview.shown.push(change);
            }
        }
    }
}

/// Per rule: matched, would change, already so; the identities no rule matched. With
/// `--max-changes`, a rule that would change more stops the run, named.
fn rule_table(config: &RunConfig, run: &Run, rule_rows: &RuleRows, per_rule: &[(u64, u64)]) {
    tracing::info!("rule: matched, would change, already so");
    for ((name, matched), (changes, already)) in rule_rows.matched.iter().zip(per_rule) {
        tracing::info!(
            rule = %name,
            matched,
            would_change = changes,
            already_so = already,
            "rule {name}: {matched} matched, {changes} would change, {already} already so"
        );
        // A rule that matches nothing is most often a typo in a pattern or an alias: it
        // decides nothing, silently, night after night. Not under --quiet: there a rule for
        // new identities (`marked = false`) matches none on a night with none new, and the
        // nightly job stays silent unless something fails.
        if *matched == 0 && !config.output.quiet {
            tracing::warn!(
                rule = %name,
                "rule {name} matched no identity: check its conditions (a pattern, an alias)"
            );
        }
        if let Some(limit) = config.options.max_changes.filter(|limit| changes > limit) {
            tracing::error!(
                rule = %name,
                "rule {name} would change {changes} identities, more than --max-changes {limit}: nothing is sent"
            );
            run.control.stop(StopReason::TooManyChanges {
                changes: *changes,
                limit,
            });
        }
    }
    tracing::info!(
        unmatched = rule_rows.unmatched,
        "{} {} matched no rule and stay as they are",
        rule_rows.unmatched,
        plural(rule_rows.unmatched, "identity", "identities")
    );
}

fn count_changes(
    mut reader: RowReader<SnapshotReader>,
    planner: &Planner,
    shown_at_most: usize,
) -> Result<Preview, InputError> {
    let mut preview = Preview::default();
    while let Some(record) = reader.next_record() {
        let record = record?;
        let was_valid = matches!(record, Record::Valid(_));
        let decision = planner.decide(record);
        if let Decision::Final(report) = &decision {
            if matches!(report.outcome, Outcome::Drifted | Outcome::Conflict)
                && preview.diverged.len() < shown_at_most
            {
                preview.diverged.push(report.clone());
            }
        }
        preview.changed_since_export += u64::from(changed_since_export(&decision));
        if let (true, Decision::Final(report)) = (was_valid, &decision) {
            if report.outcome == Outcome::Invalid {
                preview.late_invalid += 1;
                if preview.late_problems.len() < PROBLEMS_SHOWN {
                    preview
                        .late_problems
                        .push(late_problem(report.line, &report.error));
                }
            }
        }
        let Some(change) = planner.change(&decision) else {
            continue;
        };
        preview.changes += 1;
        preview.link_changes += u64::from(change.link.is_some());
        if preview.shown.len() < shown_at_most {
            preview.shown.push(change);
        }
    }
    preview.exported_at = reader.exported_at().map(str::to_owned);
    Ok(preview)
}

/// True when the row carries a baseline and Drata no longer holds it.
fn changed_since_export(decision: &Decision) -> bool {
    let (wanted, previous) = match decision {
        Decision::Send(job) => (job.row.wanted(), job.previous.as_ref()),
        Decision::Final(report) => (report.wanted(), report.previous.as_ref()),
    };
    previous.is_some_and(|previous| field::changed_since_export(&wanted, previous))
}

/// A row the current state made invalid, as the input's problems are said: the
/// planner's `column NAME: message` split in two.
fn late_problem(line: u64, error: &str) -> Problem {
    let (column, message) = error
        .strip_prefix("column ")
        .and_then(|rest| rest.split_once(": "))
        .unwrap_or(("", error));
    Problem {
        line,
        column: column.to_owned(),
        message: message.to_owned(),
    }
}

/// Pass two, on a blocking thread: every record becomes a job or a final report row.
struct Feed {
    reader: RowReader<SnapshotReader>,
    rule_rows: Option<Arc<RuleRows>>,
    planner: Arc<Planner>,
    control: Arc<RunControl>,
    jobs: mpsc::Sender<Job>,
    results: mpsc::Sender<ReportRow>,
}

impl Feed {
    fn run(mut self) {
        while let Some(record) = self.reader.next_record() {
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    self.control
                        .stop(StopReason::InputFailed(StopSource::new(e)));
                    return;
                }
            };
            if !self.send(self.planner.decide(record)) {
                return;
            }
        }
        let Some(rule_rows) = self.rule_rows.take() else {
            return;
        };
        for row in &rule_rows.rows {
            let decision = match row {
                RuleRow::Valid(row) => self.planner.decide(Record::Valid(row.clone())),
                RuleRow::Invalid(report) => Decision::Final((**report).clone()),
            };
            if !self.send(decision) {
                return;
            }
        }
    }

    /// Hands a decision on: a job to the workers, a final row to the consumer. False
    /// when the consumer is gone.
    fn send(&self, decision: Decision) -> bool {
        let report = match decision {
            Decision::Final(report) => report,
            Decision::Send(job) if self.control.is_stopped() => not_attempted(&job, &self.control),
            Decision::Send(job) => match self.jobs.blocking_send(job) {
                Ok(()) => return true,
                // No worker is left to take it.
                Err(mpsc::error::SendError(job)) => not_attempted(&job, &self.control),
            },
        };
        self.results.blocking_send(report).is_ok()
    }
}

fn not_attempted(job: &Job, control: &RunControl) -> ReportRow {
    let mut report = ReportRow::of(&job.row, Outcome::NotAttempted, control.stop_message());
    report.previous = job.previous.clone();
    report
}

/// Streams every row into the report: the feed decides, the workers send, the one
/// consumer writes. Returns the tally and what finish still needs of the files.
async fn execute(
    config: &RunConfig,
    run: &Run,
    planner: Arc<Planner>,
    files: Files,
) -> Result<(Tally, finish::Unwritten), Error> {
    let reader = run.input.reader(&config.input, run.lookup.clone())?;
    // One worker per slot the in-flight limit may ever open; the jobs queue stays short.
    let workers = config.options.concurrency.ceiling();
    let (jobs_tx, jobs_rx) = mpsc::channel(workers * 2);
    let (results_tx, results_rx) = mpsc::channel(1024);
    let sending = run
        .session
        .as_ref()
        .filter(|_| config.mode == Mode::Apply)
        .map(|session| &session.engine);
    let mut workers = sending.map(|engine| {
        let jobs = (jobs_rx, files.journal.clone());
        spawn_workers(Arc::clone(engine), workers, jobs, results_tx.clone())
    });
    let feed = Feed {
        reader,
        rule_rows: run.rule_rows.clone(),
        planner,
        control: Arc::clone(&run.control),
        jobs: jobs_tx,
        results: results_tx,
    };
    let feeder = tokio::task::spawn_blocking(move || feed.run());
    let Files {
        journal: _,
        locks,
        report_path,
        report,
        summary,
        undo,
        evidence,
    } = files;
    let (mut outputs, recorder) = outputs(config, run, report, undo);
    let options = ConsumeOptions {
        max_failures: config.options.max_failures,
        run_id: run.run_id.clone(),
        row_events: config.output.log_format == LogFormat::Json,
    };
    let progress_mode = config
        .output
        .console()
        .progress_mode(config.output.progress_interval);
    let progress = Progress::new(run.rows(), progress_mode);
    let display = (progress, sending.map(|engine| engine.as_ref()));
    let consumed = consume(results_rx, &mut outputs, display, &options, &run.control).await;
    let mut lost = feeder.await.is_err();
    if let Some(workers) = workers.as_mut() {
        while let Some(joined) = workers.join_next().await {
            lost |= joined.is_err();
        }
    }
    Ok((
        consumed.tally,
        finish::Unwritten {
            locks,
            report_path,
            summary,
            evidence: recorder.zip(evidence),
            undo: outputs.undo,
            sent: consumed.sent,
            drifted: consumed.drifted,
            lost,
            unrecorded: consumed.unrecorded,
        },
    ))
}

/// The report, and the undo and evidence recorders when they were asked for and can be
/// made; one that cannot stops the run but never keeps a row out of the report.
fn outputs(
    config: &RunConfig,
    run: &Run,
    report: ReportWriter,
    undo: Option<Undo>,
) -> (Outputs, Option<EvidenceRecorder>) {
    let run_started = humantime::format_rfc3339_seconds(run.started_at).to_string();
    let columns = run.undo_columns();
    let undo = undo.and_then(|undo| {
        let made = match undo {
            Undo::Append(file, path, earlier) => {
                UndoWriter::append(file, &path, run_started, earlier, columns)
            }
            Undo::New(file, path) => UndoWriter::new(file, &path, run_started, columns),
        };
        match made {
            Ok(undo) => Some(undo),
            Err(e) => {
                run.control.stop(StopReason::ReportFailed {
                    file: RecordFile::Undo,
                    source: Arc::new(e),
                });
                None
            }
        }
    });
    let evidence = config.options.evidence.as_ref().and_then(|_| {
        match EvidenceRecorder::new(run.listing.is_some()) {
            Ok(recorder) => Some(recorder),
            Err(e) => {
                run.control.stop(StopReason::ReportFailed {
                    file: RecordFile::Evidence,
                    source: Arc::new(e),
                });
                None
            }
        }
    });
    (Outputs { report, undo }, evidence)
}
