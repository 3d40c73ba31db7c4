//! `--rules` in a run: after the listing is read, every identity that no input row names
//! is decided by the first rule that matches it, and becomes a row of the run (`source`
//! `rule:NAME`); identities no rule matches are left as they are, and counted. A resumed
//! run carries over the rows a rule decided and the earlier run finished, so that they are
//! reported `skipped` even where no rule matches any more or the identity is gone.

use std::sync::Arc;

use crate::drata::CurrentState;
use crate::input::rules::{decide, RuleSet};
use crate::input::{DoneRows, DoneRuleRow, InputScan};
use crate::model::{AccessRequest, IdCell, Outcome, ReportRow, Row, RowId};

/// A rule's decision for one identity: a row to plan like the input's, or invalid (its
/// reason cannot be sent).
pub(super) enum RuleRow {
    Valid(Row),
    Invalid(Box<ReportRow>),
}

/// What the rules decided over the whole listing.
#[derive(Default)]
pub(super) struct RuleRows {
    pub rows: Vec<RuleRow>,
    /// Per rule, in the file's order: its name and the identities it matched.
    pub matched: Vec<(Arc<str>, u64)>,
    /// Identities no rule matched (and no input row named).
    pub unmatched: u64,
}

/// Decides every identity of the listing that the input does not name, by id order.
pub(super) fn rule_rows(
    rules: &RuleSet,
    state: &CurrentState,
    scan: &InputScan,
    resumed: &DoneRows,
    today: &str,
) -> RuleRows {
    let names: Vec<Arc<str>> = rules
        .rules()
        .iter()
        .map(|r| Arc::from(r.name.as_str()))
        .collect();
    let mut decided = RuleRows {
        matched: names.iter().map(|name| (Arc::clone(name), 0)).collect(),
        ..RuleRows::default()
    };
    for (id, current) in state.sorted() {
        if scan.holds(id) {
            continue;
        }
        let Some(decision) = decide(rules, &current.subject(id), today) else {
            // Done by a rule before (which, say, matched it while unmarked): still done.
            match resumed.by_rule(id) {
                Some(done) => decided.rows.push(RuleRow::Valid(carried(id, done))),
                None => decided.unmatched += 1,
            }
            continue;
        };
        decided.matched[decision.index].1 += 1;
        let rule = Some(Arc::clone(&names[decision.index]));
        decided.rows.push(match decision.reason {
            Ok(reason) => RuleRow::Valid(Row {
                line: 0,
                id: RowId::Id(id),
                flag: decision.service_account,
                reason,
                rule,
                // No export behind it: the review is two-way.
                baseline: None,
                // Rules decide the flag and the access toggles they name; links are left
                // as they are.
                link: None,
                access: { decision.access.iter() }
                    .map(|(access, on)| AccessRequest {
                        access: *access,
                        on: *on,
                        baseline: None,
                    })
                    .collect(),
            }),
            Err(problem) => {
                let mut report = ReportRow::new(
                    0,
                    IdCell::Id(id),
                    Some(decision.service_account),
                    String::new(),
                    Outcome::Invalid,
                    problem.to_string(),
                );
                report.rule = rule;
                report.identity = current.view();
                report.previous = Some(current.previous());
                RuleRow::Invalid(Box::new(report))
            }
        });
    }
    carry_vanished(&mut decided, state, scan, resumed);
    decided
}

/// Carries the done rows a rule decided for identities the listing no longer shows (and no
/// input row names), so that the resumed report keeps a row for every identity of the
/// earlier one. An identity an input row names, even an invalid one, is that row's: every
/// input row has its own report row, and no id is reported twice.
fn carry_vanished(
    decided: &mut RuleRows,
    state: &CurrentState,
    scan: &InputScan,
    resumed: &DoneRows,
) {
    for (id, done) in resumed.rule_rows() {
        if state.get(id).is_none() && !scan.holds(id) {
            decided.rows.push(RuleRow::Valid(carried(id, done)));
        }
    }
}

/// The row a rule decided in the resumed report, as it was decided then: the planner
/// finds it done and reports it `skipped`.
fn carried(id: u64, done: &DoneRuleRow) -> Row {
    Row {
        line: 0,
        id: RowId::Id(id),
        flag: done.flag,
        reason: done.reason.clone(),
        rule: Some(Arc::from(done.rule.as_str())),
        baseline: None,
        link: None,
        access: Vec::new(),
    }
}
