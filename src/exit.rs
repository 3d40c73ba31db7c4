//! Exit codes, decided in one place (`docs/contract.md`, "Exit codes").

use crate::model::{Outcome, Signal, StopReason, Tally};

pub(crate) const SUCCESS: u8 = 0;
/// At least one row failed, was invalid, or was not found.
pub(crate) const ROW_PROBLEMS: u8 = 1;
/// Usage error, unreadable input, invalid rows, missing token: nothing was sent.
pub(crate) const USAGE: u8 = 2;
/// Aborted: authorization/permission/terms error, or `--max-failures` reached.
pub(crate) const ABORTED: u8 = 3;
/// Stopped by SIGINT (128 + 2).
pub(crate) const INTERRUPTED: u8 = 130;
/// Stopped by SIGTERM (128 + 15), as shells and service managers expect.
pub(crate) const TERMINATED: u8 = 143;

/// The exit code of a run a signal stopped.
pub(crate) fn for_signal(signal: Signal) -> u8 {
    match signal {
        Signal::Interrupt => INTERRUPTED,
        Signal::Terminate => TERMINATED,
    }
}

/// The exit code of a run that got as far as the report.
pub(crate) fn for_run(tally: &Tally, stop: Option<&StopReason>) -> u8 {
    match stop {
        Some(StopReason::Interrupted(signal)) => for_signal(*signal),
        Some(StopReason::InvalidInput { .. }) => USAGE,
        Some(
            StopReason::Fatal(_)
            | StopReason::TooManyFailures { .. }
            | StopReason::ReportFailed { .. }
            | StopReason::RowsLost { .. }
            | StopReason::InputFailed(_)
            | StopReason::TooManyChanges { .. }
            | StopReason::StateUnavailable(_),
        ) => ABORTED,
        None if tally.unverified_updates() > 0 => ROW_PROBLEMS,
        None if Outcome::ALL
            .into_iter()
            .any(|o| o.is_problem() && tally.get(o) > 0) =>
        {
            ROW_PROBLEMS
        }
        None => SUCCESS,
    }
}

/// `plan --detailed-exitcode`: rows would change, and nothing else went wrong.
pub(crate) const CHANGES_PENDING: u8 = 4;

/// The exit code of a plan under `--detailed-exitcode`: a clean plan with changes is 4.
pub(crate) fn for_plan(code: u8, changes: u64) -> u8 {
    if code == SUCCESS && changes > 0 {
        CHANGES_PENDING
    } else {
        code
    }
}

/// The exit code of `validate`.
pub(crate) fn for_validation(invalid_rows: u64) -> u8 {
    if invalid_rows == 0 {
        SUCCESS
    } else {
        ROW_PROBLEMS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IdCell, ReportRow, StopSource};

    fn tally(outcomes: &[Outcome]) -> Tally {
        let mut tally = Tally::default();
        outcomes.iter().for_each(|o| tally.add(*o));
        tally
    }

    #[test]
    fn validate_is_0_only_when_every_row_is_valid() {
        assert_eq!(for_validation(0), SUCCESS);
        assert_eq!(for_validation(1), ROW_PROBLEMS);
        assert_eq!(for_validation(1000), ROW_PROBLEMS);
    }

    #[test]
    fn a_detailed_plan_tells_changes_from_nothing_to_do() {
        assert_eq!(for_plan(SUCCESS, 0), SUCCESS);
        assert_eq!(for_plan(SUCCESS, 3), CHANGES_PENDING);
        assert_eq!(for_plan(ROW_PROBLEMS, 3), ROW_PROBLEMS, "problems win");
        assert_eq!(for_plan(ABORTED, 0), ABORTED);
    }

    #[test]
    fn outcomes_decide_the_code() {
        let ok = tally(&[Outcome::Updated, Outcome::Duplicate, Outcome::Skipped]);
        assert_eq!(for_run(&ok, None), SUCCESS);
        assert_eq!(
            for_run(&tally(&[Outcome::Updated, Outcome::Failed]), None),
            ROW_PROBLEMS
        );
        assert_eq!(for_run(&tally(&[Outcome::NotFound]), None), ROW_PROBLEMS);
        let interrupted = StopReason::Interrupted(Signal::Interrupt);
        assert_eq!(for_run(&ok, Some(&interrupted)), INTERRUPTED);
        let terminated = StopReason::Interrupted(Signal::Terminate);
        assert_eq!(for_run(&ok, Some(&terminated)), TERMINATED);
        let fatal = StopReason::Fatal(StopSource::new(std::fmt::Error));
        assert_eq!(for_run(&ok, Some(&fatal)), ABORTED);
        let invalid = StopReason::InvalidInput { invalid_rows: 1 };
        assert_eq!(for_run(&ok, Some(&invalid)), USAGE);
    }

    #[test]
    fn an_update_the_check_did_not_find_is_a_row_problem() {
        let mut checked = tally(&[Outcome::Updated]);
        let mut row = ReportRow::new(
            2,
            IdCell::Id(1),
            Some(true),
            "ci".to_owned(),
            Outcome::Updated,
            "",
        );
        row.verified = Some(true);
        checked.add_check(&row);
        assert_eq!(for_run(&checked, None), SUCCESS);
        row.verified = Some(false);
        checked.add_check(&row);
        assert_eq!(for_run(&checked, None), ROW_PROBLEMS);
    }
}
