//! What the three-way review of each field (`crate::field::three_way`) makes of a row,
//! pure: which decisions are sent, given `--overwrite-drift` and `--resend`, and whether
//! the row is held back (`drifted`, `conflict`). The table is `docs/contract.md`, "What
//! the reviewer meant".

use crate::model::{FieldName, Outcome, Review};

/// The options that send what the review would hold back or skip.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Overrides {
    /// `--overwrite-drift`: a conflicting decision is sent.
    pub overwrite_drift: bool,
    /// `--resend`: a decision Drata already holds is sent again.
    pub resend: bool,
}

/// True when a decision the review judged so is sent: an edited one; a conflicting one
/// with `--overwrite-drift`; one Drata already holds with `--resend`.
pub(crate) fn is_sent(review: Review, overrides: Overrides) -> bool {
    match review {
        Review::Send => true,
        Review::Conflict => overrides.overwrite_drift,
        Review::Unchanged => overrides.resend,
        Review::Drifted => false,
    }
}

/// A row the review holds back: `conflict` when any decision conflicts (and
/// `--overwrite-drift` is not given), `drifted` when a decision drifted and the row sends
/// nothing else.
pub(crate) fn held(
    reviews: &[(FieldName, Review)],
    sends_something: bool,
    overrides: Overrides,
) -> Option<Outcome> {
    let any = |wanted: Review| reviews.iter().any(|(_, review)| *review == wanted);
    if any(Review::Conflict) && !overrides.overwrite_drift {
        return Some(Outcome::Conflict);
    }
    (any(Review::Drifted) && !sends_something).then_some(Outcome::Drifted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Overrides = Overrides {
        overwrite_drift: false,
        resend: false,
    };
    const OVERWRITE: Overrides = Overrides {
        overwrite_drift: true,
        resend: false,
    };
    const RESEND: Overrides = Overrides {
        overwrite_drift: false,
        resend: true,
    };

    #[test]
    fn what_is_sent_for_each_review_and_option() {
        use Review::{Conflict, Drifted, Send, Unchanged};
        let cases = [
            (Send, NONE, true),
            (Conflict, NONE, false),
            (Conflict, OVERWRITE, true),
            (Conflict, RESEND, false),
            (Unchanged, NONE, false),
            (Unchanged, OVERWRITE, false),
            (Unchanged, RESEND, true),
            (Drifted, NONE, false),
            (Drifted, OVERWRITE, false),
            (Drifted, RESEND, false),
        ];
        for (review, overrides, sent) in cases {
            assert_eq!(is_sent(review, overrides), sent, "{review:?} {overrides:?}");
        }
    }

    #[test]
    fn a_row_is_held_for_a_conflict_in_either_decision_or_a_drift_with_nothing_to_send() {
        use Review::{Conflict, Drifted, Send, Unchanged};
        let cases = [
            (Conflict, None, false, NONE, Some(Outcome::Conflict)),
            (
                Unchanged,
                Some(Conflict),
                false,
                NONE,
                Some(Outcome::Conflict),
            ),
            (Send, Some(Conflict), true, NONE, Some(Outcome::Conflict)),
            (Conflict, None, true, OVERWRITE, None),
            (
                Conflict,
                Some(Drifted),
                false,
                OVERWRITE,
                Some(Outcome::Drifted),
            ),
            (Drifted, None, false, NONE, Some(Outcome::Drifted)),
            (
                Unchanged,
                Some(Drifted),
                false,
                NONE,
                Some(Outcome::Drifted),
            ),
            (Drifted, Some(Send), true, NONE, None),
            (Send, Some(Drifted), true, NONE, None),
            (Unchanged, Some(Unchanged), false, NONE, None),
            (Send, None, true, NONE, None),
        ];
        for (flag, link, sends_something, overrides, outcome) in cases {
            let mut reviews = vec![(FieldName::ServiceAccount, flag)];
            reviews.extend(link.map(|link| (FieldName::Link, link)));
            assert_eq!(
                held(&reviews, sends_something, overrides),
                outcome,
                "{flag:?} {link:?} {sends_something} {overrides:?}"
            );
        }
    }
}
