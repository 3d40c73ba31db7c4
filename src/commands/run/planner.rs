//! What every row becomes before the run's stop is taken into account: invalid,
//! duplicate, skipped by resume, unchanged or not found against the current state,
//! would update (plan), or a job to send (apply).

use std::sync::Arc;

use crate::config::Mode;
use crate::drata::{Current, Users};
use crate::engine::{Job, Listing, Sends};
use crate::input::{conflict_message, DoneRows, InputScan, InvalidRow, Record, RowStatus};
use crate::model::{IdCell, LinkRequest, Outcome, ReportRow, Row, RowId};
use crate::output::{Change, CurrentView, LinkChange};

pub(super) enum Decision {
    Send(Job),
    Final(ReportRow),
}

pub(super) struct Planner {
    pub mode: Mode,
    pub scan: Arc<InputScan>,
    pub done: DoneRows,
    /// The current state, when the run compares with it (plan, `--reconcile`).
    pub listing: Option<Arc<Listing>>,
    /// Drata's users, when the input decides links.
    pub users: Option<Arc<Users>>,
}

fn invalid(bad: InvalidRow) -> ReportRow {
    let message = bad.message();
    let id = if bad.id_cell.is_empty() {
        IdCell::Empty
    } else {
        IdCell::Raw(bad.id_cell)
    };
    ReportRow::new(
        bad.line,
        id,
        bad.flag,
        bad.reason_cell,
        Outcome::Invalid,
        message,
    )
}

impl Planner {
    pub(super) fn decide(&self, record: Record) -> Decision {
        let row = match record {
            Record::Invalid(bad) => return Decision::Final(invalid(bad)),
            Record::Valid(row) => row,
        };
        match self.scan.status(&row) {
            RowStatus::Conflict { lines } => {
                let id = row.id.id().unwrap_or_default();
                let message = format!(
                    "column {}: {}",
                    self.scan.id_column,
                    conflict_message(id, lines)
                );
                return Decision::Final(ReportRow::of(&row, Outcome::Invalid, message));
            }
            RowStatus::Duplicate { first_line } => {
                let message = format!("duplicate of line {first_line}");
                return Decision::Final(ReportRow::of(&row, Outcome::Duplicate, message));
            }
            RowStatus::Send => {}
        }
        // Rows reach here resolved: `validate` alone leaves names unresolved, and it
        // never plans.
        let RowId::Id(id) = row.id else {
            return Decision::Final(ReportRow::of(
                &row,
                Outcome::Invalid,
                "the identity could not be resolved",
            ));
        };
        if self.done.contains(row.line, id, row.flag, &row.reason) {
            let mut skipped = ReportRow::of(&row, Outcome::Skipped, "");
            // With the listing read, the report still shows the identity as it stands.
            if let Some(current) = self.listing.as_ref().and_then(|l| l.state.get(id)) {
                skipped.identity = current.view();
                skipped.previous = Some(current.previous());
            }
            return Decision::Final(skipped);
        }
        self.against_current_state(row, id)
    }

    /// Compares a row with the listing, when the run reads it.
    fn against_current_state(&self, row: Row, id: u64) -> Decision {
        let Some(listing) = &self.listing else {
            return Decision::Send(Job {
                sends: Sends::all_of(&row),
                row,
                id,
                previous: None,
            });
        };
        // A `false` row without a reason is fine only where nothing is to be sent.
        let reason_missing = || {
            let message = format!(
                "column reason: a reason is required to mark id {id} as not a service account (fill the cell, or pass --reason-if-false or --reason)"
            );
            ReportRow::of(&row, Outcome::Invalid, message)
        };
        let Some(current) = listing.state.get(id) else {
            if row.reason.is_empty() {
                return Decision::Final(reason_missing());
            }
            return match self.mode {
                Mode::Plan => Decision::Final(ReportRow::of(
                    &row,
                    Outcome::NotFound,
                    not_found_message(listing),
                )),
                // The listing's silence is no proof: the PUT's 404 is.
                Mode::Apply => Decision::Send(Job {
                    sends: Sends::all_of(&row),
                    row,
                    id,
                    previous: None,
                }),
            };
        };
        let mut report = ReportRow::of(&row, Outcome::Unchanged, "");
        report.identity = current.view();
        report.previous = Some(self.previous(&row, current));
        let sends = self.sends(&row, current);
        if !sends.flag && sends.link.is_none() {
            return Decision::Final(report);
        }
        if sends.flag && row.reason.is_empty() {
            let mut invalid = reason_missing();
            invalid.identity = report.identity;
            invalid.previous = report.previous;
            return Decision::Final(invalid);
        }
        match self.mode {
            Mode::Plan => {
                report.outcome = Outcome::WouldUpdate;
                Decision::Final(report)
            }
            Mode::Apply => Decision::Send(Job {
                previous: Some(self.previous(&row, current)),
                row,
                id,
                sends,
            }),
        }
    }

    /// The state before the run, with the link when the row decides it.
    fn previous(&self, row: &Row, current: &Current) -> crate::model::Previous {
        let mut previous = current.previous();
        if row.link.is_some() {
            previous.link = Some(current.link(self.users.as_deref()));
        }
        previous
    }

    /// The requests a row needs against the identity now: the flag when it differs, the
    /// link when the row decides it and it differs.
    fn sends(&self, row: &Row, current: &Current) -> Sends {
        let link_now = current.link(self.users.as_deref());
        Sends {
            flag: !current.is_as_desired(row.flag, &row.reason),
            link: row
                .link
                .as_ref()
                .filter(|wanted| wanted.link != link_now)
                .and_then(LinkRequest::target),
        }
    }

    /// The change a row would make, for the plan's diff and `--max-changes`.
    pub(super) fn change(&self, decision: &Decision) -> Option<Change> {
        let (row, id) = match decision {
            Decision::Send(job) => (job.row.clone(), job.id),
            Decision::Final(report) if report.outcome == Outcome::WouldUpdate => (
                Row {
                    line: report.line,
                    id: RowId::Id(report.id()?),
                    flag: report.flag?,
                    reason: report.reason.clone(),
                    link: report.link.clone(),
                },
                report.id()?,
            ),
            Decision::Final(_) => return None,
        };
        let now = self
            .listing
            .as_ref()
            .and_then(|listing| listing.state.get(id));
        let sends = now.map_or_else(|| Sends::all_of(&row), |now| self.sends(&row, now));
        let current = now.map(|current| CurrentView {
            username: current.username.clone(),
            connection: current.connection.clone(),
            previous: current.previous(),
        });
        Some(Change {
            line: row.line,
            id,
            flag: row.flag,
            flag_changes: sends.flag,
            reason: row.reason,
            link: row
                .link
                .filter(|_| sends.link.is_some())
                .map(|wanted| LinkChange {
                    before: now.map(|now| now.link(self.users.as_deref())),
                    after: wanted.link,
                }),
            current,
        })
    }
}

fn not_found_message(listing: &Listing) -> &'static str {
    if listing.may_be_incomplete() {
        "not found in Drata's listing, which may be incomplete (see the warnings)"
    } else {
        "not found in Drata"
    }
}
