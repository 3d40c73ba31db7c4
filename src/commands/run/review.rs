//! The three-way review, pure: what a row means given the state it was exported from
//! (the baseline), the reviewer's decision (the row) and Drata now (the current state).
//! The table is `docs/contract.md`, "What the reviewer meant".

use crate::model::{Baseline, Review};

/// Decides a row. Every state is normalised ([`Baseline::new`]): flags as booleans,
/// reasons trimmed, no reason when not a service account. Without a baseline (no baseline
/// columns, or a row added by hand) the review is two-way: the row against Drata now.
pub(crate) fn review(baseline: Option<&Baseline>, row: &Baseline, current: &Baseline) -> Review {
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
mod tests {
    use super::*;

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
}
