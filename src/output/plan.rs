//! The plan on standard output, as a readable diff or as one JSON document (`--json`),
//! and the line that names the header each column was taken from.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::SystemTime;

use super::evidence::describe_previous;
use crate::field::AccessField;
use crate::model::{Baseline, Link, Outcome, Previous, ReportRow};
use crate::text::{plural, printable};

/// Which header each role was taken from, on one line: `id ← "Identity"; flag ← ...`,
/// and the delimiter when it is not a comma.
pub(crate) fn column_mapping_line(mapping: &[(&str, String)], delimiter: u8) -> String {
    let roles: Vec<String> = mapping
        .iter()
        .map(|(role, header)| format!("{role} ← {header:?}"))
        .collect();
    let delimiter = match delimiter {
        b',' => String::new(),
        b'\t' => " (delimiter: tab)".to_owned(),
        other => format!(" (delimiter: '{}')", char::from(other)),
    };
    format!("columns{delimiter}: {}", roles.join("; "))
}

/// Changes a plan prints before "and N more".
pub(crate) const CHANGES_SHOWN: usize = 20;

/// One row that would change, as the plan shows it.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub line: u64,
    /// The rule that decided it (a rule's row has no line); `None` for an input row.
    pub rule: Option<Arc<str>>,
    pub id: u64,
    pub flag: bool,
    /// False when only the link changes.
    pub flag_changes: bool,
    pub reason: String,
    /// The link, when it changes.
    pub link: Option<LinkChange>,
    /// The access toggles that change.
    pub access: Vec<AccessChange>,
    /// The identity as the listing showed it; `None` when it is not in the listing.
    pub current: Option<CurrentView>,
}

/// A link that would change: from whom (`None` when the identity is not in the listing)
/// to whom.
#[derive(Debug, Clone)]
pub(crate) struct LinkChange {
    pub before: Option<Link>,
    pub after: Link,
}

/// An access toggle that would change: from what (`None` when the identity is not in the
/// listing) to what.
#[derive(Debug, Clone)]
pub(crate) struct AccessChange {
    pub field: &'static AccessField,
    pub before: Option<bool>,
    pub after: bool,
}

/// What the plan shows of an identity's current state.
#[derive(Debug, Clone)]
pub(crate) struct CurrentView {
    pub username: Option<String>,
    pub connection: String,
    pub previous: Previous,
}

impl Change {
    /// One line per thing that changes: the flag, the link.
    fn describe(&self) -> Vec<String> {
        let place = match &self.rule {
            Some(rule) => format!("rule {}", printable(rule)),
            None => format!("line {}", self.line),
        };
        let who = match &self.current {
            Some(current) => format!(
                "{place}  id {}  {} [{}]",
                self.id,
                current
                    .username
                    .as_deref()
                    .map_or_else(|| "(no username)".to_owned(), printable),
                printable(&current.connection),
            ),
            None => format!("{place}  id {}", self.id),
        };
        let mut lines = Vec::new();
        if self.flag_changes {
            let desired = if self.flag {
                format!("service account ({:?})", self.reason)
            } else {
                "not a service account".to_owned()
            };
            let before = self
                .current
                .as_ref()
                .map_or(String::new(), |c| describe_previous(&c.previous) + " ");
            lines.push(format!("{who}: {before}→ {desired}"));
        }
        if let Some(link) = &self.link {
            let before = link.before.as_ref().map_or(String::new(), |b| {
                format!("linked to {} ", printable(b.describe()))
            });
            lines.push(format!(
                "{who}: {before}→ {}",
                printable(link.after.describe())
            ));
        }
        for change in &self.access {
            let words = change.field.words;
            let before = change.before.map_or(String::new(), |on| {
                format!("{words} {} ", AccessField::describe(on))
            });
            let after = AccessField::describe(change.after);
            lines.push(format!("{who}: {before}→ {words} {after}"));
        }
        lines
    }
}

/// What the plan shows: how many rows would change, the first of them, and, for a review
/// file with the export's baseline, its age and the rows Drata changed since the export.
pub(crate) struct PlanView<'a> {
    pub changes: u64,
    /// Of the changes, those that change a link.
    pub link_changes: u64,
    pub rows: u64,
    pub shown: &'a [Change],
    pub age: Option<ExportAge<'a>>,
    /// Drifted and conflicting rows, in line order.
    pub diverged: &'a [ReportRow],
}

/// The plan as one JSON document: counts, and every change with the state before and
/// after, for scripts.
pub(crate) fn write_changes_json(out: &mut impl Write, view: &PlanView<'_>) -> io::Result<()> {
    let listed: Vec<serde_json::Value> = view
        .shown
        .iter()
        .map(|change| {
            let before = change.current.as_ref().map(|current| {
                serde_json::json!({
                    "service_account": current.previous.marked,
                    "reason": current.previous.reason,
                })
            });
            serde_json::json!({
                "line": change.line,
                "rule": change.rule.as_deref(),
                "id": change.id,
                "username": change.current.as_ref().and_then(|c| c.username.clone()),
                "connection": change.current.as_ref().map(|c| c.connection.clone()),
                "before": before,
                "after": {"service_account": change.flag, "reason": change.reason},
                "link": change.link.as_ref().map(|link| serde_json::json!({
                    "before": link.before.as_ref().map(|b| b.cell().to_owned()),
                    "after": link.after.cell(),
                })),
                "access": change.access.iter().map(|access| serde_json::json!({
                    "field": access.field.column,
                    "before": access.before,
                    "after": access.after,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let state = |marked: bool, reason: &str| serde_json::json!({"service_account": marked, "reason": Some(reason).filter(|r| !r.is_empty())});
    let diverged: Vec<serde_json::Value> = view
        .diverged
        .iter()
        .map(|row| {
            serde_json::json!({
                "line": row.line,
                "id": row.id(),
                "outcome": row.outcome.as_str(),
                "at_export": row.baseline.as_ref().map(|b| state(b.marked, &b.reason)),
                "row": state(row.flag == Some(true), &row.reason),
                "drata_now": row.previous.as_ref().map(|p| state(p.marked, p.reason.as_deref().unwrap_or_default())),
            })
        })
        .collect();
    let plan = serde_json::json!({
        "rows": view.rows,
        "would_update": view.changes,
        "link_changes": view.link_changes,
        "changes": listed,
        "exported_at": view.age.as_ref().map(|age| age.exported_at),
        "changed_since_export": view.age.as_ref().map(|age| age.changed),
        "diverged": diverged,
    });
    serde_json::to_writer_pretty(&mut *out, &plan)?;
    writeln!(out)
}

/// The plan as text: the changes, then the export's age and the rows that diverged.
pub(crate) fn print_plan(out: &mut impl Write, view: &PlanView<'_>) -> io::Result<()> {
    print_changes(out, view)?;
    print_divergences(out, view.age.as_ref(), view.diverged)
}

/// Prints how many rows would change and the first [`CHANGES_SHOWN`] of them.
fn print_changes(out: &mut impl Write, view: &PlanView<'_>) -> io::Result<()> {
    let (changes, rows, shown) = (view.changes, view.rows, view.shown);
    let link_changes = view.link_changes;
    if changes == 0 {
        return writeln!(out, "No change: every row is already in the desired state.");
    }
    let links = match link_changes {
        0 => String::new(),
        1 => " (1 link change)".to_owned(),
        n => format!(" ({n} link changes)"),
    };
    writeln!(out, "Would update {changes} of {rows} rows{links}:")?;
    for line in shown.iter().flat_map(Change::describe) {
        writeln!(out, "  {line}")?;
    }
    if changes > shown.len() as u64 {
        writeln!(
            out,
            "  … and {} more (see the report, or -v for every change)",
            changes - shown.len() as u64
        )?;
    }
    Ok(())
}

/// How old the review file is, and how much Drata changed since, for the plan's header.
#[derive(Debug, Clone)]
pub(crate) struct ExportAge<'a> {
    /// The input's `exportedAt` (RFC 3339).
    pub exported_at: &'a str,
    pub now: SystemTime,
    /// Rows whose identity Drata no longer holds as it was at export.
    pub changed: u64,
}

impl ExportAge<'_> {
    /// `exported 6 days ago; 2 identities changed in Drata since`.
    pub(crate) fn describe(&self) -> String {
        let when = match humantime::parse_rfc3339_weak(self.exported_at)
            .ok()
            .and_then(|at| self.now.duration_since(at).ok())
        {
            Some(age) if age.as_secs() >= 86_400 => {
                let days = age.as_secs() / 86_400;
                format!("exported {days} {} ago", plural(days, "day", "days"))
            }
            Some(_) => "exported less than a day ago".to_owned(),
            None => format!("exported at {}", printable(self.exported_at)),
        };
        format!(
            "{when}; {} {} changed in Drata since",
            self.changed,
            plural(self.changed, "identity", "identities")
        )
    }
}

fn baseline_text(baseline: &Baseline) -> String {
    describe_previous(&Previous {
        marked: baseline.marked,
        reason: Some(baseline.reason.clone()).filter(|r| !r.is_empty()),
        ..Previous::default()
    })
}

/// Prints the export's age and the rows Drata changed since the export, with the state
/// at export, the row and Drata now: drifted ones (kept as Drata has them) and conflicts.
fn print_divergences(
    out: &mut impl Write,
    age: Option<&ExportAge<'_>>,
    diverged: &[ReportRow],
) -> io::Result<()> {
    if let Some(age) = age {
        writeln!(out, "The review file was {}.", age.describe())?;
    }
    for row in diverged {
        let what = match row.outcome {
            Outcome::Conflict => {
                "CONFLICT (edited here and changed in Drata; not sent without --overwrite-drift)"
            }
            _ => "drifted (not edited here, changed in Drata; Drata's change is kept)",
        };
        let desired = Baseline::new(row.flag == Some(true), &row.reason);
        writeln!(
            out,
            "  line {}  id {}  {}: {what}\n      at export: {}; the row: {}; Drata now: {}",
            row.line,
            row.id().map_or_else(String::new, |id| id.to_string()),
            row.identity
                .username
                .as_deref()
                .map_or_else(|| "(no username)".to_owned(), printable),
            row.baseline
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), baseline_text),
            baseline_text(&desired),
            row.previous
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), describe_previous),
        )?;
    }
    Ok(())
}
