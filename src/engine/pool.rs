//! The worker pool: workers take rows from a bounded channel, send each through the
//! engine, and hand its report row to the one consumer. Workers never print.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::requests::{Ended, Engine, Request};
use crate::model::{Outcome, Previous, ReportRow, Row};

/// A row to send: its resolved id, and what the listing said of its identity (for undo
/// and evidence).
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub row: Row,
    pub id: u64,
    pub previous: Option<Previous>,
}

impl Engine {
    /// Sends one row, retrying as the policy allows. Always returns the row's report.
    pub(crate) async fn apply_row(&self, job: Job) -> ReportRow {
        let Job { row, id, previous } = job;
        let what = format!("line {} id {id}", row.line);
        let attempted = self
            .with_retries(&what, Request::Update, || {
                self.client.set_service_account(id, row.flag, &row.reason)
            })
            .await;
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
                let mut report = ReportRow::of(&row, Outcome::Updated, "");
                report.identity = identity.view();
                report
            }
            Ended::Failed(failure) => ReportRow::of(&row, Outcome::Failed, failure.message),
            // Not done, so not_attempted like every remaining row; the attempts and the
            // last status stay on record.
            Ended::Stopped(None) => {
                ReportRow::of(&row, Outcome::NotAttempted, self.control.stop_message())
            }
            // It was sent: whatever the answer, it may have been applied, so it is no
            // `not_attempted`; a resumed run sends it again.
            Ended::Stopped(Some(failure)) => ReportRow::of(
                &row,
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
        report.previous = previous;
        report
    }
}

/// Runs `workers` tasks that take jobs and send their report rows to `results`.
pub(crate) fn spawn_workers(
    engine: Arc<Engine>,
    workers: usize,
    jobs: mpsc::Receiver<Job>,
    results: mpsc::Sender<ReportRow>,
) -> tokio::task::JoinSet<()> {
    let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let engine = Arc::clone(&engine);
        let jobs = Arc::clone(&jobs);
        let results = results.clone();
        set.spawn(async move {
            loop {
                let next = jobs.lock().await.recv().await;
                let Some(job) = next else { break };
                let report = engine.apply_row(job).await;
                if results.send(report).await.is_err() {
                    break;
                }
            }
        });
    }
    set
}
