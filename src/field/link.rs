//! The link field: `linkedUser`, the Drata user (by email) an identity belongs to, or
//! nobody; sent by `PUT …/{id}/connect`. Emails compare trimmed and lower-cased; the check
//! after the run also compares the user's id when Drata names one (two users may share
//! an email).

use super::{three_way, Field};
use crate::model::{FieldName, Link, Previous, Review, Wanted, Write};

pub(crate) struct LinkField;

/// Who `now` is linked to; nobody when the state was read without links.
fn linked(now: &Previous) -> &Link {
    now.link.as_ref().unwrap_or(&Link::Nobody)
}

impl Field for LinkField {
    fn name(&self) -> FieldName {
        FieldName::Link
    }

    fn decided(&self, wanted: &Wanted<'_>) -> bool {
        wanted.link.is_some()
    }

    fn review(&self, wanted: &Wanted<'_>, now: &Previous) -> Option<Review> {
        let asked = wanted.link?;
        Some(three_way(asked.baseline.as_ref(), &asked.link, linked(now)))
    }

    /// The same email is not enough when Drata names the user: it must be the one sent.
    fn holds(&self, wanted: &Wanted<'_>, now: &Previous) -> bool {
        wanted.link.is_none_or(|asked| {
            let same_user = asked
                .user
                .is_none_or(|user| now.linked_user_id.is_none_or(|got| got == user));
            *linked(now) == asked.link && same_user
        })
    }

    fn changed_since_export(&self, wanted: &Wanted<'_>, now: &Previous) -> bool {
        let baseline = wanted.link.and_then(|asked| asked.baseline.as_ref());
        baseline.is_some_and(|baseline| baseline != linked(now))
    }

    fn write<'a>(&self, wanted: &Wanted<'a>) -> Option<Write<'a>> {
        wanted.link?.target().map(Write::Connect)
    }

    /// An unlink goes before the flag (Drata marks no linked identity), a link after it
    /// (unmark, then link).
    fn rank(&self, wanted: &Wanted<'_>) -> u8 {
        match wanted.link.map(|asked| &asked.link) {
            Some(Link::User(_)) => 2,
            _ => 0,
        }
    }

    fn request_name(&self) -> &'static str {
        "the link request"
    }

    fn words(&self) -> &'static str {
        "link"
    }

    fn held_message(&self, review: Review, now: &Previous) -> String {
        let link_now = linked(now).describe();
        match review {
            Review::Conflict => format!("the link was edited, but Drata also changed it since the export (now linked to {link_now}); not sent (compare, then edit the row or pass --overwrite-drift)"),
            _ => format!("the link changed in Drata since the export (now linked to {link_now}); the cell was not edited, so nothing is sent and Drata's link is kept"),
        }
    }
}
