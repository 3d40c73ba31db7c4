//! What every row becomes before the run's stop is taken into account: invalid,
//! duplicate, skipped by resume, unchanged or not found against the current state,
//! would update (plan), or a job to send (apply).

use std::sync::Arc;

use super::review::review;
use crate::config::Mode;
use crate::engine::{Job, Listing};
use crate::input::{conflict_message, DoneRows, InputScan, InvalidRow, Record, RowStatus};
use crate::model::{Baseline, IdCell, Outcome, Previous, ReportRow, Review, Row, RowId};
use crate::output::{Change, CurrentView};

pub(super) enum Decision {
    Send(Job),
    Final(ReportRow),
}

pub(super) struct Planner {
    pub mode: Mode,
    pub scan: Arc<InputScan>,
    pub done: DoneRows,
    /// The current state, when it was read (always, but for `--resend` refused a listing).
    pub listing: Option<Arc<Listing>>,
    /// `--resend`: rows Drata already holds are sent too.
    pub resend: bool,
    /// `--overwrite-drift`: conflicting rows are sent.
    pub overwrite_drift: bool,
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
                    row,
                    id,
                    previous: None,
                }),
            };
        };
        let mut report = ReportRow::of(&row, Outcome::Unchanged, "");
        report.identity = current.view();
        let previous = current.previous();
        report.previous = Some(previous.clone());
        let desired = Baseline::new(row.flag, &row.reason);
        match review(row.baseline.as_ref(), &desired, &Baseline::from(&previous)) {
            Review::Unchanged if !self.resend || row.reason.is_empty() => {
                return Decision::Final(report)
            }
            Review::Drifted => {
                report.outcome = Outcome::Drifted;
                report.error = drift_message(&previous);
                return Decision::Final(report);
            }
            Review::Conflict if !self.overwrite_drift => {
                report.outcome = Outcome::Conflict;
                report.error = conflict_message_of(&previous);
                return Decision::Final(report);
            }
            Review::Unchanged | Review::Conflict | Review::Send => {}
        }
        if row.reason.is_empty() {
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
                row,
                id,
                previous: Some(previous),
            }),
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
                    baseline: report.baseline.clone(),
                },
                report.id()?,
            ),
            Decision::Final(_) => return None,
        };
        let current = self
            .listing
            .as_ref()
            .and_then(|listing| listing.state.get(id))
            .map(|current| CurrentView {
                username: current.username.clone(),
                connection: current.connection.clone(),
                previous: current.previous(),
            });
        Some(Change {
            line: row.line,
            id,
            flag: row.flag,
            reason: row.reason,
            current,
        })
    }
}

/// A state in one phrase, for the report's error cell.
fn state_text(state: &Previous) -> String {
    match (state.marked, &state.reason) {
        (true, Some(reason)) => format!("service account ({reason:?})"),
        (true, None) => "service account (no reason)".to_owned(),
        (false, _) => "not a service account".to_owned(),
    }
}

fn drift_message(current: &Previous) -> String {
    format!(
        "changed in Drata since the export (now {}); the row was not edited, so nothing is sent and Drata's change is kept",
        state_text(current)
    )
}

fn conflict_message_of(current: &Previous) -> String {
    format!(
        "edited, but Drata also changed since the export (now {}); not sent (compare, then edit the row or pass --overwrite-drift)",
        state_text(current)
    )
}

fn not_found_message(listing: &Listing) -> &'static str {
    if listing.may_be_incomplete() {
        "not found in Drata's listing, which may be incomplete (see the warnings)"
    } else {
        "not found in Drata"
    }
}
