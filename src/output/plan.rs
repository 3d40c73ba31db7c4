//! The plan's readable diff, on standard output.

use std::io::{self, Write};

use super::evidence::describe_previous;
use crate::model::{Link, Previous};
use crate::text::printable;

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
    pub id: u64,
    pub flag: bool,
    /// False when only the link changes.
    pub flag_changes: bool,
    pub reason: String,
    /// The link, when it changes.
    pub link: Option<LinkChange>,
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

/// How many rows would change, of how many, and how many of them change a link.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanCounts {
    pub changes: u64,
    pub link_changes: u64,
    pub rows: u64,
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
        let who = match &self.current {
            Some(current) => format!(
                "line {}  id {}  {} [{}]",
                self.line,
                self.id,
                current
                    .username
                    .as_deref()
                    .map_or_else(|| "(no username)".to_owned(), printable),
                printable(&current.connection),
            ),
            None => format!("line {}  id {}", self.line, self.id),
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
        lines
    }
}

/// The plan as one JSON document: counts, and every change with the state before and
/// after, for scripts.
pub(crate) fn write_changes_json(
    out: &mut impl Write,
    counts: PlanCounts,
    shown: &[Change],
) -> io::Result<()> {
    let listed: Vec<serde_json::Value> = shown
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
                "id": change.id,
                "username": change.current.as_ref().and_then(|c| c.username.clone()),
                "connection": change.current.as_ref().map(|c| c.connection.clone()),
                "before": before,
                "after": {"service_account": change.flag, "reason": change.reason},
                "link": change.link.as_ref().map(|link| serde_json::json!({
                    "before": link.before.as_ref().map(|b| b.cell().to_owned()),
                    "after": link.after.cell(),
                })),
            })
        })
        .collect();
    let plan = serde_json::json!({
        "rows": counts.rows,
        "would_update": counts.changes,
        "link_changes": counts.link_changes,
        "changes": listed,
    });
    serde_json::to_writer_pretty(&mut *out, &plan)?;
    writeln!(out)
}

/// Prints how many rows would change and the first [`CHANGES_SHOWN`] of them.
pub(crate) fn print_changes(
    out: &mut impl Write,
    counts: PlanCounts,
    shown: &[Change],
) -> io::Result<()> {
    let PlanCounts {
        changes,
        link_changes,
        rows,
    } = counts;
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
