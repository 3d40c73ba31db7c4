//! What every row becomes before the run's stop is taken into account: invalid,
//! duplicate, skipped by resume, unchanged or not found against the current state,
//! would update (plan), or a job to send (apply).

use std::sync::Arc;

use super::review::{held, is_sent, Overrides};
use crate::config::Mode;
use crate::drata::{Current, Users};
use crate::engine::{Job, Listing};
use crate::field;
use crate::input::{conflict_message, DoneRows, InputScan, InvalidRow, Record, RowStatus};
use crate::model::{FieldName, Fields, IdCell, Outcome, Previous, ReportRow, Review, Row, RowId};
use crate::output::{AccessChange, Change, CurrentView, LinkChange};

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
                sends: field::decided(&row.wanted()),
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
                    sends: field::decided(&row.wanted()),
                    row,
                    id,
                    previous: None,
                }),
            };
        };
        let mut report = ReportRow::of(&row, Outcome::Unchanged, "");
        report.identity = current.view();
        let reviewed = self.review(&row, current);
        report.previous = Some(reviewed.previous.clone());
        let sends = self.sends(&row, &reviewed);
        if let Some(outcome) = held(&reviewed.reviews, sends.any(), self.overrides()) {
            report.outcome = outcome;
            report.error = reviewed.message(outcome);
            return Decision::Final(report);
        }
        if !sends.any() {
            return Decision::Final(report);
        }
        if sends.contains(FieldName::ServiceAccount) && row.reason.is_empty() {
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
                previous: Some(reviewed.previous),
                sends,
            }),
        }
    }

    /// The three-way review of each field the row decides, against Drata now.
    fn review(&self, row: &Row, current: &Current) -> Reviewed {
        let now = current.state(self.users.as_deref());
        let reviews = field::review_all(&row.wanted(), &now);
        // The report shows the link before the run only when the row decides links.
        let previous = Previous {
            link: row.link.as_ref().and(now.link.clone()),
            ..now.clone()
        };
        Reviewed {
            now,
            previous,
            reviews,
        }
    }

    /// The fields the review leaves to send.
    fn sends(&self, row: &Row, reviewed: &Reviewed) -> Fields {
        let overrides = self.overrides();
        let wanted = row.wanted();
        let mut sends = Fields::default();
        for (name, review) in &reviewed.reviews {
            let field = field::of(*name);
            if is_sent(*review, overrides)
                && field.sendable(&wanted, *review)
                && field.write(&wanted).is_some()
            {
                sends.insert(*name);
            }
        }
        sends
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
                    access: report.access.clone(),
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
            || field::decided(&row.wanted()),
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
            flag_changes: sends.contains(FieldName::ServiceAccount),
            reason: row.reason,
            link: row
                .link
                .filter(|_| sends.contains(FieldName::Link))
                .map(|wanted| LinkChange {
                    before: now.map(|now| now.link(self.users.as_deref())),
                    after: wanted.link,
                }),
            access: { row.access.iter() }
                .filter(|asked| sends.contains(FieldName::Access(asked.access)))
                .map(|asked| AccessChange {
                    field: &field::ACCESS[asked.access.index()],
                    before: now.map(|now| now.access.get(asked.access).unwrap_or(false)),
                    after: asked.on,
                })
                .collect(),
            current,
        })
    }
}

/// What the three-way review made of a row's fields.
struct Reviewed {
    /// Drata now, the link included.
    now: Previous,
    /// The state before the run as the report shows it: the link only when the row
    /// decides links.
    previous: Previous,
    reviews: Vec<(FieldName, Review)>,
}

impl Reviewed {
    /// Why a row was held back (`drifted` or `conflict`), naming each field concerned.
    fn message(&self, outcome: Outcome) -> String {
        let wanted = match outcome {
            Outcome::Conflict => Review::Conflict,
            _ => Review::Drifted,
        };
        let said: Vec<String> = { self.reviews.iter() }
            .filter(|(_, review)| *review == wanted)
            .map(|(name, review)| field::of(*name).held_message(*review, &self.now))
            .collect();
        said.join("; ")
    }
}

fn not_found_message(listing: &Listing) -> &'static str {
    if listing.may_be_incomplete() {
        "not found in Drata's listing, which may be incomplete (see the warnings)"
    } else {
        "not found in Drata"
    }
}
