//! What every row becomes before the run's stop is taken into account: invalid,
//! duplicate, skipped by resume, unchanged or not found against the current state,
//! would update (plan), or a job to send (apply).

use std::sync::Arc;

use super::review::{held, is_flag_sent, is_sent, review, Overrides};
use crate::config::Mode;
use crate::drata::{Current, Users};
use crate::engine::{Job, Listing, Sends};
use crate::input::{conflict_message, DoneRows, InputScan, InvalidRow, Record, RowStatus};
use crate::model::{
    Baseline, IdCell, Link, LinkRequest, Outcome, Previous, ReportRow, Review, Row, RowId,
};
use crate::output::{Change, CurrentView, LinkChange};

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
        let parts = self.review(&row, current);
        report.previous = Some(parts.previous.clone());
        let sends = self.sends(&row, &parts);
        if let Some(outcome) = self.held(&parts, sends) {
            report.outcome = outcome;
            report.error = parts.message(outcome);
            return Decision::Final(report);
        }
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
                row,
                id,
                previous: Some(parts.previous),
                sends,
            }),
        }
    }

    /// The three-way review of each decision the row makes: the flag and reason, and the
    /// link when the row decides it.
    fn review(&self, row: &Row, current: &Current) -> Parts {
        let mut previous = current.previous();
        let flag = review(
            row.baseline.as_ref(),
            &Baseline::new(row.flag, &row.reason),
            &Baseline::from(&previous),
        );
        let link = row.link.as_ref().map(|wanted| {
            let now = current.link(self.users.as_deref());
            let decided = review(wanted.baseline.as_ref(), &wanted.link, &now);
            previous.link = Some(now);
            decided
        });
        Parts {
            previous,
            flag,
            link,
        }
    }

    /// The requests the review leaves to send.
    fn sends(&self, row: &Row, parts: &Parts) -> Sends {
        let overrides = self.overrides();
        Sends {
            flag: is_flag_sent(parts.flag, !row.reason.is_empty(), overrides),
            link: parts
                .link
                .filter(|review| is_sent(*review, overrides))
                .and(row.link.as_ref())
                .and_then(LinkRequest::target),
        }
    }

    fn held(&self, parts: &Parts, sends: Sends) -> Option<Outcome> {
        let sends_something = sends.flag || sends.link.is_some();
        held(parts.flag, parts.link, sends_something, self.overrides())
    }

    fn overrides(&self) -> Overrides {
        Overrides {
            overwrite_drift: self.overwrite_drift,
            resend: self.resend,
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
                    rule: report.rule.clone(),
                    baseline: report.baseline.clone(),
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
        let sends = now.map_or_else(
            || Sends::all_of(&row),
            |now| self.sends(&row, &self.review(&row, now)),
        );
        let current = now.map(|current| CurrentView {
            username: current.username.clone(),
            connection: current.connection.clone(),
            previous: current.previous(),
        });
        Some(Change {
            line: row.line,
            rule: row.rule.clone(),
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

/// What the three-way review made of a row's decisions.
struct Parts {
    /// The state before the run, with the link when the row decides it.
    previous: Previous,
    flag: Review,
    /// `None` when the row does not decide the link.
    link: Option<Review>,
}

impl Parts {
    /// Why a row was held back (`drifted` or `conflict`), naming each decision concerned.
    fn message(&self, outcome: Outcome) -> String {
        let wanted = match outcome {
            Outcome::Conflict => Review::Conflict,
            _ => Review::Drifted,
        };
        let link_now = self.previous.link.as_ref().map_or("nobody", Link::describe);
        let mut said = Vec::new();
        if self.flag == wanted {
            said.push(match wanted {
                Review::Conflict => conflict_message_of(&self.previous),
                _ => drift_message(&self.previous),
            });
        }
        if self.link == Some(wanted) {
            said.push(match wanted {
                Review::Conflict => format!("the link was edited, but Drata also changed it since the export (now linked to {link_now}); not sent (compare, then edit the row or pass --overwrite-drift)"),
                _ => format!("the link changed in Drata since the export (now linked to {link_now}); the cell was not edited, so nothing is sent and Drata's link is kept"),
            });
        }
        said.join("; ")
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
