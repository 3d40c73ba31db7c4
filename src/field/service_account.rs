//! The service-account field: `serviceAccount` with its `serviceAccountReason`, sent
//! together by `PUT …/{id}/service-account`. Flags compare as booleans, reasons after
//! trimming, and an identity that is not a service account carries no reason.

use super::{three_way, Field};
use crate::model::{Baseline, FieldName, Previous, Review, Wanted, Write};

pub(crate) struct ServiceAccount;

impl ServiceAccount {
    /// The row's decision as the review compares it; `None` when the flag did not parse.
    fn asked(wanted: &Wanted<'_>) -> Option<Baseline> {
        Some(Baseline::new(wanted.flag?, wanted.reason))
    }
}

impl Field for ServiceAccount {
    fn name(&self) -> FieldName {
        FieldName::ServiceAccount
    }

    /// Every row decides it: the flag column is required.
    fn decided(&self, wanted: &Wanted<'_>) -> bool {
        wanted.flag.is_some()
    }

    fn review(&self, wanted: &Wanted<'_>, now: &Previous) -> Option<Review> {
        let asked = Self::asked(wanted)?;
        Some(three_way(wanted.baseline, &asked, &Baseline::from(now)))
    }

    fn holds(&self, wanted: &Wanted<'_>, now: &Previous) -> bool {
        Self::asked(wanted).is_some_and(|asked| asked == Baseline::from(now))
    }

    fn changed_since_export(&self, wanted: &Wanted<'_>, now: &Previous) -> bool {
        wanted
            .baseline
            .is_some_and(|baseline| *baseline != Baseline::from(now))
    }

    /// A `false` row may leave its reason blank while nothing is to be sent: `--resend`
    /// sends a flag Drata already holds again only with a reason.
    fn sendable(&self, wanted: &Wanted<'_>, review: Review) -> bool {
        !wanted.reason.is_empty() || review != Review::Unchanged
    }

    fn write<'a>(&self, wanted: &Wanted<'a>) -> Option<Write<'a>> {
        Some(Write::ServiceAccount {
            flag: wanted.flag?,
            reason: wanted.reason,
        })
    }

    /// Drata links no service account to a person: the flag goes after an unlink and
    /// before a link (`link.rs` ranks around it).
    fn rank(&self, _wanted: &Wanted<'_>) -> u8 {
        1
    }

    fn request_name(&self) -> &'static str {
        "the service-account request"
    }

    fn words(&self) -> &'static str {
        "service account"
    }

    fn held_message(&self, review: Review, now: &Previous) -> String {
        match review {
            Review::Conflict => format!(
                "edited, but Drata also changed since the export (now {}); not sent (compare, then edit the row or pass --overwrite-drift)",
                state_text(now)
            ),
            _ => format!(
                "changed in Drata since the export (now {}); the row was not edited, so nothing is sent and Drata's change is kept",
                state_text(now)
            ),
        }
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
