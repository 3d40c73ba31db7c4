//! The worker pool: workers take rows from a bounded channel, send each through the
//! engine, and hand its report row to the one consumer. Workers never print.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::requests::{Attempted, Ended, Engine, Request as Kind};
use super::retry::answer;
use crate::drata::Identity;
use crate::field;
use crate::model::{
    Answers, Fields, IdentityView, Outcome, Previous, RecordFile, ReportRow, Row, StopReason, Write,
};
use crate::output::Journal;

/// A row to send: its resolved id, what the listing said of its identity (for undo
/// and evidence), and which requests it needs.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub row: Row,
    pub id: u64,
    pub previous: Option<Previous>,
    /// The fields its requests set (`crate::field::writes` orders them).
    pub sends: Fields,
}

impl Engine {
    /// Sends a row's requests in order, each retried as the policy allows; the row is
    /// updated when every one succeeded, and failed (naming which) at the first that did
    /// not, the rest unsent. Always returns the row's report.
    pub(crate) async fn apply_row(&self, job: Job, journal: Option<&Journal>) -> ReportRow {
        let Job {
            row,
            id,
            previous,
            sends,
        } = job;
        let wanted = row.wanted();
        let requests = field::writes(&wanted, sends);
        let mut answers = Answers::default();
        let mut attempts = 0;
        let mut report = ReportRow::of(&row, Outcome::Unchanged, "");
        let at = (row.line, id);
        for &(name, write) in &requests {
            let what = format!("line {} id {id}", row.line);
            // Nothing is sent that the journal does not hold first.
            let intended = journal.map(|j| j.intent(at, name, previous.as_ref(), &write));
            if let Some(Err(e)) = intended {
                self.journal_failed(e);
                report = self.report(&row, id, Attempted::unsent());
                if answers.applied().any() {
                    report.outcome = Outcome::Failed;
                    report.error = format!(
                        "partly applied ({} was applied); {}",
                        field::request_names(answers.applied()),
                        report.error
                    );
                }
                break;
            }
            let attempted = self.send(&what, id, write).await;
            attempts += attempted.attempts;
            let done = matches!(attempted.ended, Ended::Done(_));
            let proved = answer(done, attempted.attempts, attempted.failure);
            if let Some(answer) = proved {
                answers.record(name, answer);
            }
            let answered = journal.map(|j| j.answer(at, name, proved, attempted.last_status));
            if let Some(Err(e)) = answered {
                // The answer is the row's all the same; no request is sent after it.
                self.journal_failed(e);
            }
            let answered = std::mem::take(&mut report.identity);
            let applied = answers.applied();
            report = self.report(&row, id, attempted);
            if report.outcome != Outcome::Updated {
                // The identity as the request applied before described it.
                if report.identity == IdentityView::default() {
                    report.identity = answered;
                }
                if requests.len() > 1 {
                    let request = field::of(name).request_name();
                    report.error = format!("{request}: {}", report.error);
                }
                if applied.any() {
                    // Drata holds part of the row: it is no `not_attempted`, and the undo
                    // file keeps it.
                    report.outcome = Outcome::Failed;
                    report.error = format!(
                        "partly applied ({} was applied); {}",
                        field::request_names(applied),
                        report.error
                    );
                }
                break;
            }
        }
        report.attempts = attempts;
        report.previous = previous;
        report.sent = sends;
        report.answers = answers;
        report
    }

    /// The journal could not be written: no request may be sent that it does not hold.
    fn journal_failed(&self, error: std::io::Error) {
        self.control.stop(StopReason::ReportFailed {
            file: RecordFile::Journal,
            source: Arc::new(error),
        });
    }

    /// Sends one field's request, retried as the policy allows.
    async fn send(&self, what: &str, id: u64, write: Write<'_>) -> Attempted<Identity> {
        let client = &self.client;
        match write {
            Write::ServiceAccount { flag, reason } => {
                self.with_retries(what, Kind::Update, || {
                    client.set_service_account(id, flag, reason)
                })
                .await
            }
            Write::Connect(user) => {
                self.with_retries(what, Kind::Update, || client.connect(id, user))
                    .await
            }
            Write::Toggle { toggle_field, on } => {
                self.with_retries(what, Kind::Update, || client.toggle(id, toggle_field, on))
                    .await
            }
        }
    }

    /// The report of one request of a row.
    fn report(&self, row: &Row, id: u64, attempted: Attempted<Identity>) -> ReportRow {
        let mut report = match attempted.ended {
            Ended::Done(identity) => {
                if let Some(other) = identity.id.filter(|other| *other != id) {
                    // Any 2xx is applied; which identity is settled by the check after
                    // the run.
                    tracing::warn!(
                        line = row.line,
                        id,
                        answered_id = other,
                        "the answer names id {other}, not {id}; the check after the run settles whether {id} was changed"
                    );
                }
                let mut report = ReportRow::of(row, Outcome::Updated, "");
                report.identity = identity.view();
                report
            }
            Ended::Failed(failure) => ReportRow::of(row, Outcome::Failed, failure.message),
            // Not done, so not_attempted like every remaining row; the attempts and the
            // last status stay on record.
            Ended::Stopped(None) => {
                ReportRow::of(row, Outcome::NotAttempted, self.control.stop_message())
            }
            // It was sent: whatever the answer, it may have been applied, so it is no
            // `not_attempted`; a resumed run sends it again.
            Ended::Stopped(Some(failure)) => ReportRow::of(
                row,
                Outcome::Failed,
                format!(
                    "{}; not retried after: {}",
                    self.control.stop_message(),
                    failure.message
                ),
            ),
        };
        report.attempts = attempted.attempts;
        report.http_status = attempted.last_status;
        report.failure = attempted.failure;
        report
    }
}

/// Runs `workers` tasks that take jobs and send their report rows to `results`.
pub(crate) fn spawn_workers(
    engine: Arc<Engine>,
    workers: usize,
    (jobs, journal): (mpsc::Receiver<Job>, Option<Arc<Journal>>),
    results: mpsc::Sender<ReportRow>,
) -> tokio::task::JoinSet<()> {
    let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let engine = Arc::clone(&engine);
        let jobs = Arc::clone(&jobs);
        let results = results.clone();
        let journal = journal.clone();
        set.spawn(async move {
            loop {
                let next = jobs.lock().await.recv().await;
                let Some(job) = next else { break };
                let report = engine.apply_row(job, journal.as_deref()).await;
                if results.send(report).await.is_err() {
                    break;
                }
            }
        });
    }
    set
}
