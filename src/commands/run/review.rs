//! The three-way review, pure: what a row means given the state it was exported from
//! (the baseline), the reviewer's decision (the row) and Drata now (the current state).
//! The table is `docs/contract.md`, "What the reviewer meant".

use crate::model::{Outcome, Review};

/// Decides a row. Every state is normalised ([`crate::model::Baseline::new`]): flags as booleans,
/// reasons trimmed, no reason when not a service account. Without a baseline (no baseline
/// columns, or a row added by hand) the review is two-way: the row against Drata now.
/// The same table decides a link (`T` is then [`crate::model::Link`]).
pub(crate) fn review<T: PartialEq>(baseline: Option<&T>, row: &T, current: &T) -> Review {
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

/// True when the flag and reason are sent. `--resend` sends an unchanged flag again only
/// with a reason to send: a `false` row may leave its reason blank.
pub(crate) fn is_flag_sent(review: Review, has_reason: bool, overrides: Overrides) -> bool {
    is_sent(review, overrides) && (has_reason || review != Review::Unchanged)
}

/// A row the review holds back: `conflict` when either decision conflicts (and
/// `--overwrite-drift` is not given), `drifted` when a decision drifted and the row sends
/// nothing else.
pub(crate) fn held(
    flag: Review,
    link: Option<Review>,
    sends_something: bool,
    overrides: Overrides,
) -> Option<Outcome> {
    let any = |wanted: Review| flag == wanted || link == Some(wanted);
    if any(Review::Conflict) && !overrides.overwrite_drift {
        return Some(Outcome::Conflict);
    }
    (any(Review::Drifted) && !sends_something).then_some(Outcome::Drifted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Baseline, Link};

    fn marked(reason: &str) -> Baseline {
        Baseline::new(true, reason)
    }

    fn unmarked() -> Baseline {
        Baseline::new(false, "")
    }

    /// Every line of the contract's table, and the two-way review without a baseline.
    #[test]
    fn the_three_way_table() {
        let (a, b, c) = (marked("ci bot"), marked("deploy bot"), unmarked());
        let cases: [(Option<&Baseline>, &Baseline, &Baseline, Review, &str); 9] = [
            (
                Some(&a),
                &a,
                &a,
                Review::Unchanged,
                "not edited, Drata the same",
            ),
            (
                Some(&a),
                &a,
                &c,
                Review::Drifted,
                "not edited, Drata changed",
            ),
            (
                Some(&c),
                &c,
                &b,
                Review::Drifted,
                "not edited, Drata marked it",
            ),
            (Some(&a), &c, &a, Review::Send, "edited, Drata the same"),
            (
                Some(&a),
                &b,
                &a,
                Review::Send,
                "reason edited, Drata the same",
            ),
            (
                Some(&a),
                &c,
                &c,
                Review::Unchanged,
                "edited, Drata changed to the row",
            ),
            (
                Some(&c),
                &a,
                &b,
                Review::Conflict,
                "edited, Drata changed to another",
            ),
            (None, &a, &c, Review::Send, "no baseline: two-way, differs"),
            (
                None,
                &a,
                &a,
                Review::Unchanged,
                "no baseline: two-way, same",
            ),
        ];
        for (baseline, row, current, expected, case) in cases {
            assert_eq!(review(baseline, row, current), expected, "{case}");
        }
    }

    #[test]
    fn flags_compare_as_booleans_and_reasons_after_trimming() {
        let baseline = Baseline::new(true, "  ci bot ");
        assert_eq!(
            review(Some(&baseline), &marked("ci bot"), &marked("ci bot\t")),
            Review::Unchanged
        );
        // A false baseline carries no reason: a reason typed on a false row is no edit.
        let unmarked_with_text = Baseline::new(false, "human, checked");
        assert_eq!(unmarked_with_text, unmarked());
        assert_eq!(
            review(Some(&unmarked()), &unmarked_with_text, &marked("x")),
            Review::Drifted
        );
    }

    #[test]
    fn a_link_is_reviewed_by_the_same_table() {
        let (ann, bob) = (
            Link::User("ann@x".to_owned()),
            Link::User("bob@x".to_owned()),
        );
        let nobody = Link::Nobody;
        assert_eq!(review(Some(&nobody), &nobody, &ann), Review::Drifted);
        assert_eq!(review(Some(&nobody), &bob, &nobody), Review::Send);
        assert_eq!(review(Some(&nobody), &bob, &ann), Review::Conflict);
        assert_eq!(review(Some(&ann), &bob, &bob), Review::Unchanged);
        assert_eq!(review(None, &bob, &ann), Review::Send);
    }

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
        // A flag Drata holds is sent again only with a reason; an edit always is.
        assert!(is_flag_sent(Unchanged, true, RESEND));
        assert!(!is_flag_sent(Unchanged, false, RESEND));
        assert!(is_flag_sent(Send, false, NONE));
        assert!(!is_flag_sent(Drifted, true, RESEND));
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
            assert_eq!(
                held(flag, link, sends_something, overrides),
                outcome,
                "{flag:?} {link:?} {sends_something} {overrides:?}"
            );
        }
    }
}
