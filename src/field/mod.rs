//! The fields of an identity row that a review decides, each defined once in its own
//! file (`docs/fields.md`): its columns (input, export, baseline), how it compares, the
//! request that changes it and where that goes among a row's requests, how the check
//! after the run and the undo file read it, and its words. Everything else asks the list
//! below: "does Drata hold what the row asks?" is [`holds`], "what does the review make of each field?" is [`review_all`],
//! and "what is sent, in which order?" is [`writes`]. "Was it applied?" is the attempt's
//! answer (`engine::retry::answer`), carried per field in `model::Answers`.

mod access;
mod link;
mod service_account;

pub(crate) use access::{AccessField, ACCESS};

use crate::model::{FieldName, Fields, Previous, Review, Wanted, Write};

/// One field of the identity row. `now` is Drata's state (the listing), with the link
/// filled in (`Current::state`).
pub(crate) trait Field: Sync {
    fn name(&self) -> FieldName;
    /// True when the row decides the field (its column is present, its cell not blank).
    fn decided(&self, wanted: &Wanted<'_>) -> bool;
    /// The three-way review of the row's decision against Drata now; `None` when the row
    /// leaves the field alone.
    fn review(&self, wanted: &Wanted<'_>, now: &Previous) -> Option<Review>;
    /// True when `now` holds what the row asks of the field (the check after the run).
    fn holds(&self, wanted: &Wanted<'_>, now: &Previous) -> bool;
    /// True when the row carries the field's state at export and Drata no longer holds it.
    fn changed_since_export(&self, wanted: &Wanted<'_>, now: &Previous) -> bool;
    /// True when a decision the review would send can be: `--resend` sends an unchanged
    /// service account again only with a reason.
    fn sendable(&self, wanted: &Wanted<'_>, review: Review) -> bool {
        let _ = (wanted, review);
        true
    }
    /// The request that sets the field as the row asks; `None` when there is none to
    /// send (a link not resolved, offline).
    fn write<'a>(&self, wanted: &Wanted<'a>) -> Option<Write<'a>>;
    /// Where its request goes among a row's, lower first (`docs/fields.md`).
    fn rank(&self, wanted: &Wanted<'_>) -> u8;
    /// The request, named in a report's error.
    fn request_name(&self) -> &'static str;
    /// The field in a few words, for the evidence ("service account", "link").
    fn words(&self) -> &'static str;
    /// Why a row was held back (`drifted` or `conflict`) for this field, with Drata now.
    fn held_message(&self, review: Review, now: &Previous) -> String;
}

/// Every field, in the order they are reviewed and described.
pub(crate) fn all() -> impl Iterator<Item = &'static dyn Field> {
    let fixed: [&'static dyn Field; 2] = [&service_account::ServiceAccount, &link::LinkField];
    fixed
        .into_iter()
        .chain(ACCESS.iter().map(|field| field as &'static dyn Field))
}

/// The field of a name.
pub(crate) fn of(name: FieldName) -> &'static dyn Field {
    match name {
        FieldName::ServiceAccount => &service_account::ServiceAccount,
        FieldName::Link => &link::LinkField,
        FieldName::Access(access) => &ACCESS[access.index()],
    }
}

/// The fields the row decides.
pub(crate) fn decided(wanted: &Wanted<'_>) -> Fields {
    let mut fields = Fields::default();
    for field in all().filter(|field| field.decided(wanted)) {
        fields.insert(field.name());
    }
    fields
}

/// The three-way review of every field the row decides.
pub(crate) fn review_all(wanted: &Wanted<'_>, now: &Previous) -> Vec<(FieldName, Review)> {
    all()
        .filter_map(|field| Some((field.name(), field.review(wanted, now)?)))
        .collect()
}

/// The one answer to "does Drata hold what the row asks?", for the fields of `fields`.
pub(crate) fn holds(wanted: &Wanted<'_>, now: &Previous, fields: Fields) -> bool {
    all()
        .filter(|field| fields.contains(field.name()) && field.decided(wanted))
        .all(|field| field.holds(wanted, now))
}

/// True when Drata (`now`) no longer holds a field as the row's export read it.
pub(crate) fn changed_since_export(wanted: &Wanted<'_>, now: &Previous) -> bool {
    all().any(|field| field.changed_since_export(wanted, now))
}

/// The requests that set `fields` as the row asks, in the order Drata accepts them
/// (unlink before marking, unmark before linking, toggles last).
pub(crate) fn writes<'a>(wanted: &Wanted<'a>, fields: Fields) -> Vec<(FieldName, Write<'a>)> {
    let mut writes: Vec<(u8, FieldName, Write<'a>)> = all()
        .filter(|field| fields.contains(field.name()))
        .filter_map(|field| Some((field.rank(wanted), field.name(), field.write(wanted)?)))
        .collect();
    writes.sort_by_key(|(rank, name, _)| (*rank, *name));
    writes
        .into_iter()
        .map(|(_, name, write)| (name, write))
        .collect()
}

/// The requests of `fields`, named for a report's error ("the service-account request
/// and the link request").
pub(crate) fn request_names(fields: Fields) -> String {
    joined(fields, |field| field.request_name())
}

/// The fields of `fields` in words: "service account and link".
pub(crate) fn words(fields: Fields) -> String {
    joined(fields, |field| field.words())
}

/// What `say` says of each field of `fields`, joined by "and".
fn joined(fields: Fields, say: fn(&dyn Field) -> &'static str) -> String {
    let said: Vec<&str> = all()
        .filter(|field| fields.contains(field.name()))
        .map(say)
        .collect();
    said.join(" and ")
}

/// The three-way review of one decision (`docs/contract.md`, "What the reviewer meant"):
/// the baseline (Drata at export), the row (the reviewer's decision) and Drata now, each
/// normalised by its field. Without a baseline (no baseline column, or a row added by
/// hand) the review is two-way: the row against Drata now.
pub(crate) fn three_way<T: PartialEq>(baseline: Option<&T>, row: &T, current: &T) -> Review {
    if row == current {
        // Whatever happened in between, Drata already holds the decision.
        return Review::Unchanged;
    }
    let Some(baseline) = baseline else {
        return Review::Send;
    };
    match (row == baseline, current == baseline) {
        // Not edited; Drata changed since (it cannot be the same: row != current).
        (true, _) => Review::Drifted,
        (false, true) => Review::Send,
        (false, false) => Review::Conflict,
    }
}

#[cfg(test)]
mod tests;
