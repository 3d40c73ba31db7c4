//! The worker pool: workers take rows from a bounded channel, send each through the
//! engine, and hand its report row to the one consumer. Workers never print.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::requests::{Attempted, Ended, Engine, Request as Kind};
use crate::drata::Identity;
use crate::model::{IdentityView, Outcome, Parts, Previous, ReportRow, Row};

/// A row to send: its resolved id, what the listing said of its identity (for undo
/// and evidence), and which requests it needs.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub row: Row,
    pub id: u64,
    pub previous: Option<Previous>,
    pub sends: Sends,
}

/// The requests a row needs: the service-account PUT, the `connect` PUT, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sends {
    pub flag: bool,
    /// `Some(user)` to link to that Drata user, `Some(None)` to unlink.
    pub link: Option<Option<u64>>,
}

impl Sends {
    /// Every request the row asks for, for an identity whose state is not known.
    pub(crate) fn all_of(row: &Row) -> Self {
        Self {
            flag: true,
            link: row.link.as_ref().map(|link| link.user),
        }
    }

    /// The decisions these requests carry.
    pub(crate) fn parts(self) -> Parts {
        Parts {
            flag: self.flag,
            link: self.link.is_some(),
        }
    }

    /// The requests in the order Drata accepts them: it links no service account, so a
    /// link to a person goes after the flag (unmark, then link) and an unlink before it
    /// (unlink, then mark).
    fn in_order(self) -> Vec<Request> {
        let flag = self.flag.then_some(Request::Flag);
        let link = self.link.map(Request::Link);
        match self.link {
            Some(Some(_)) => [flag, link],
            _ => [link, flag],
        }
        .into_iter()
        .flatten()
        .collect()
    }
}

/// One of a row's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Flag,
    Link(Option<u64>),
}

impl Request {
    /// Records in `parts` the decision this request carries.
    fn mark(self, parts: &mut Parts) {
        match self {
            Request::Flag => parts.flag = true,
            Request::Link(_) => parts.link = true,
        }
    }

    /// The requests of `parts`, named for the report's error.
    fn names(parts: Parts) -> String {
        let names: Vec<&str> = [
            parts.flag.then_some(Request::Flag),
            parts.link.then_some(Request::Link(None)),
        ]
        .into_iter()
        .flatten()
        .map(Request::name)
        .collect();
        names.join(" and ")
    }

    fn name(self) -> &'static str {
        match self {
            Request::Flag => "the service-account request",
            Request::Link(_) => "the link request",
        }
    }
}

impl Engine {
    /// Sends a row's requests in order, each retried as the policy allows; the row is
    /// updated when every one succeeded, and failed (naming which) at the first that did
    /// not, the rest unsent. Always returns the row's report.
    pub(crate) async fn apply_row(&self, job: Job) -> ReportRow {
        let Job {
            row,
            id,
            previous,
            sends,
        } = job;
        let requests = sends.in_order();
        let mut applied = Parts::default();
        let mut attempts = 0;
        let mut report = ReportRow::of(&row, Outcome::Unchanged, "");
        for &request in &requests {
            let what = format!("line {} id {id}", row.line);
            let attempted = match request {
                Request::Flag => {
                    self.with_retries(&what, Kind::Update, || {
                        self.client.set_service_account(id, row.flag, &row.reason)
                    })
                    .await
                }
                Request::Link(user) => {
                    self.with_retries(&what, Kind::Update, || self.client.connect(id, user))
                        .await
                }
            };
            attempts += attempted.attempts;
            let answered = std::mem::take(&mut report.identity);
            report = self.report(&row, id, attempted);
            if report.outcome != Outcome::Updated {
                // The identity as the request applied before described it.
                if report.identity == IdentityView::default() {
                    report.identity = answered;
                }
                if requests.len() > 1 {
                    report.error = format!("{}: {}", request.name(), report.error);
                }
                if applied.any() {
                    // Drata holds part of the row: it is no `not_attempted`, and the undo
                    // file keeps it.
                    report.outcome = Outcome::Failed;
                    report.error = format!(
                        "partly applied ({} was applied); {}",
                        Request::names(applied),
                        report.error
                    );
                }
                break;
            }
            request.mark(&mut applied);
        }
        report.attempts = attempts;
        report.previous = previous;
        report.sent = sends.parts();
        report.applied = applied;
        report
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_in_the_order_drata_accepts() {
        let sends = |flag, link| Sends { flag, link }.in_order();
        assert_eq!(sends(true, None), [Request::Flag]);
        assert_eq!(sends(false, Some(Some(3))), [Request::Link(Some(3))]);
        // Unmark before linking; unlink before marking.
        assert_eq!(
            sends(true, Some(Some(3))),
            [Request::Flag, Request::Link(Some(3))]
        );
        assert_eq!(
            sends(true, Some(None)),
            [Request::Link(None), Request::Flag]
        );
    }
}
