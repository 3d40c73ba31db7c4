//! The evidence as Markdown: a header table, the counts, and the identities changed.

use super::{
    escaped, Before, ChangedIdentity, DriftedIdentity, Facts, PartlyAppliedIdentity, State,
    Verification,
};
use crate::model::{Access, Fields, Link, Previous};

/// Escapes text for one Markdown table cell, capped as every echoed field is.
pub(crate) fn cell(text: &str) -> String {
    let flat = crate::text::one_line(&crate::text::echoed(text));
    let mut out = String::with_capacity(flat.len());
    for c in flat.chars() {
        if matches!(c, '|' | '\\' | '`' | '*' | '_' | '<' | '>' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes text for a code span inside a table cell: on one line, a backtick (which would
/// end the span) shown as a quote, and a pipe escaped (GitHub's tables split a cell at a bare
/// pipe even inside a code span, and show `\|` as `|`).
fn code_cell(text: &str) -> String {
    crate::text::one_line(&escaped(text))
        .replace('`', "'")
        .replace('|', "\\|")
}

/// "service account (reason)" or "not a service account".
pub(crate) fn describe_previous(previous: &Previous) -> String {
    describe(&State {
        marked: previous.marked,
        reason: previous.reason.clone(),
    })
}

fn describe(state: &State) -> String {
    match (state.marked, &state.reason) {
        (true, Some(reason)) => format!("service account ({reason:?})"),
        (true, None) => "service account".to_owned(),
        (false, _) => "not a service account".to_owned(),
    }
}

/// The state before the run, in words.
pub(super) fn describe_before(before: &Before) -> String {
    match before {
        Before::Known(state) => describe(state),
        Before::Unknown => "unknown".to_owned(),
        Before::NotRead => "not read".to_owned(),
    }
}

/// A state in words, and who the identity is linked to when the run decided its link
/// (`Some(None)`: not known).
fn with_link(state: String, link: Option<Option<&Link>>) -> String {
    match link {
        None => state,
        Some(link) => format!("{state}; linked to {}", link_text(link)),
    }
}

/// The access toggles of a change in words, before (`after` false) or after the run:
/// `; admin access on`, or empty when the row decided none.
pub(super) fn access_text(access: &[(Access, Option<bool>, bool)], after: bool) -> String {
    let mut text = String::new();
    for (field, before, now) in access {
        let words = crate::field::ACCESS[field.index()].words;
        let on = if after { Some(*now) } else { *before };
        let state = on.map_or("unknown", crate::field::AccessField::describe);
        text.push_str(&format!("; {words} {state}"));
    }
    text
}

/// `nobody`, an email, or `unknown`.
pub(super) fn link_text(link: Option<&Link>) -> &str {
    link.map_or("unknown", Link::describe)
}

/// `yes`, `no` or `not checked`.
pub(super) fn verified_text(verified: Option<bool>) -> &'static str {
    match verified {
        Some(true) => "yes",
        Some(false) => "no",
        None => "not checked",
    }
}

/// What the check after the run found, in one sentence.
pub(super) fn verification_text(verification: Verification) -> String {
    match verification {
        Verification::NotChecked => "not checked".to_owned(),
        Verification::Checked {
            verified,
            not_verified,
        } => format!("{verified} verified, {not_verified} not verified"),
    }
}

/// The SHA-256 of a file, or why there is none.
pub(super) fn digest_text(digest: &Option<String>) -> String {
    digest.clone().unwrap_or_else(|| "unavailable".to_owned())
}

pub(super) fn render(facts: &Facts) -> String {
    let mut text = header(facts);
    text.push_str(&changes(&facts.changes, facts.partly.len()));
    text.push_str(&partly(&facts.partly));
    text.push_str(&drift(&facts.drift));
    if facts.unrecorded_rows > 0 {
        text.push_str(&format!(
            "\n**{} {} NOT in the report named above**: it could not be written (a full disk?). Each was logged on standard error with its outcome; a resumed run sends them again. The report's SHA-256 lets a reviewer check that it is the file this record describes.\n",
            facts.unrecorded_rows,
            if facts.unrecorded_rows == 1 { "row is" } else { "rows are" }
        ));
    } else {
        text.push_str("\nEvery input row, whatever its outcome, is in the report named above; its SHA-256 lets a reviewer check that it is the file this record describes.\n");
    }
    for output in &facts.unwritten_outputs {
        text.push_str(&format!("\n**Not written**: the {}.\n", cell(output)));
    }
    text
}

fn header(facts: &Facts) -> String {
    let mut text = String::new();
    let mut add = |line: String| {
        text.push_str(&line);
        text.push('\n');
    };
    add(format!(
        "# Drata service-account changes: {} run {}\n",
        facts.command, facts.run_id
    ));
    add("| fact | value |".to_owned());
    add("|---|---|".to_owned());
    add(format!(
        "| Ran by | {} on {} |",
        cell(&facts.account),
        cell(&facts.host)
    ));
    add(format!("| Started | {} |", facts.started_at));
    add(format!(
        "| Finished | {} ({:.1} s) |",
        facts.finished_at, facts.elapsed_seconds
    ));
    add(format!("| Tool | {} {} |", facts.tool, facts.version));
    add(format!(
        "| Command | `{}` |",
        code_cell(&facts.command_line)
    ));
    add(format!(
        "| Drata API | {} ({} identities) |",
        cell(&facts.base_url),
        facts.kind
    ));
    for (name, file) in [
        ("Input", Some(&facts.input)),
        ("Report", Some(&facts.report)),
    ]
    .into_iter()
    .chain(std::iter::once(("Rules", facts.rules.as_ref())))
    {
        add(match file {
            Some(file) => format!(
                "| {name} | {} (SHA-256 `{}`) |",
                cell(&file.path),
                digest_text(&file.sha256)
            ),
            None => format!("| {name} | none |"),
        });
    }
    add(format!(
        "| Result | exit code {}{} |",
        facts.exit_code,
        facts
            .stopped
            .as_ref()
            .map(|why| format!(": {}", cell(why)))
            .unwrap_or_default()
    ));
    add(format!(
        "| Verification | {} |",
        verification_text(facts.verification)
    ));
    add(format!(
        "| Drift and conflicts | {} drifted (Drata's change kept), {} in conflict (not sent) |",
        facts.drifted, facts.conflicts
    ));
    add(String::new());
    add("## Counts\n".to_owned());
    add("| outcome | rows |".to_owned());
    add("|---|---:|".to_owned());
    for (outcome, count) in &facts.counts {
        if *count > 0 {
            add(format!("| {} | {count} |", cell(outcome)));
        }
    }
    add(format!("| **total** | **{}** |", facts.rows));
    add(String::new());
    add(format!(
        "Requests: {} (retries {}, 429 answers {}), effective rate {:.0}/min.\n",
        facts.requests, facts.retries, facts.rate_limited, facts.effective_rate_per_minute
    ));
    text
}

fn changes(changes: &[ChangedIdentity], partly: usize) -> String {
    let mut text = "## Identities changed\n\n".to_owned();
    if changes.is_empty() {
        text.push_str(&match partly {
            0 => "No identity was changed by this run.\n".to_owned(),
            n => format!("No identity was wholly changed by this run; {n} partly (below).\n"),
        });
        return text;
    }
    let verified = changes.iter().filter(|c| c.verified == Some(true)).count();
    text.push_str(&format!(
        "{} identities were updated; {verified} of them verified: Drata's state, read again after the run, holds the change. Sorted by id.\n\n",
        changes.len()
    ));
    text.push_str("| id | username | email | connection | before | after | source | verified |\n");
    text.push_str("|---:|---|---|---|---|---|---|---|\n");
    for change in changes {
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            change.id,
            cell(&change.username),
            cell(&change.email),
            cell(&change.connection),
            cell(&format!(
                "{}{}",
                with_link(
                    describe_before(&change.before),
                    change.link.as_ref().map(|(before, _)| before.as_ref())
                ),
                access_text(&change.access, false)
            )),
            cell(&format!(
                "{}{}",
                with_link(
                    describe(&change.after),
                    change.link.as_ref().map(|(_, after)| Some(after))
                ),
                access_text(&change.access, true)
            )),
            cell(&change.source),
            verified_text(change.verified),
        ));
    }
    text
}

/// The fields of `parts`, in words: `service account`, `link`, or both.
pub(super) fn parts_text(parts: Fields) -> String {
    crate::field::words(parts)
}

/// Failed rows Drata holds part of: before the run, what Drata holds now, what was applied
/// and why the rest was not.
fn partly(partly: &[PartlyAppliedIdentity]) -> String {
    if partly.is_empty() {
        return String::new();
    }
    let mut text = format!(
        "\n## Partly applied (failed; Drata holds part of the decision)\n\n{} rows failed after Drata had applied one of their two requests. They are counted as `failed` above and kept in the undo file. `in Drata after the run` is what the check after the run read; when no check ran (`--no-verify`, a stopped run) it says `expected, not checked`: the part applied and the rest as before the run, which a failed request stored anyway or a later change would make untrue.\n\n",
        partly.len()
    );
    text.push_str(
        "| id | username | email | connection | before | in Drata after the run | applied | error | source |\n",
    );
    text.push_str("|---:|---|---|---|---|---|---|---|---|\n");
    for row in partly {
        let now = with_link(
            row.now
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), describe),
            row.link.as_ref().map(|(_, now)| now.as_ref()),
        );
        let now = if row.now_read {
            now
        } else {
            format!("expected, not checked: {now}")
        };
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.id,
            cell(&row.username),
            cell(&row.email),
            cell(&row.connection),
            cell(&with_link(
                describe_before(&row.before),
                row.link.as_ref().map(|(before, _)| before.as_ref())
            )),
            cell(&now),
            parts_text(row.applied),
            cell(&row.error),
            cell(&row.source),
        ));
    }
    text
}

/// The identities Drata changed since the export on rows the reviewer left alone.
fn drift(drift: &[DriftedIdentity]) -> String {
    if drift.is_empty() {
        return String::new();
    }
    let mut text = format!(
        "\n## Changed in Drata since the export (kept)\n\n{} identities were changed in Drata after the review file was exported, on rows the reviewer did not edit; the run left them as Drata has them.\n\n",
        drift.len()
    );
    text.push_str("| id | username | at export | in Drata now |\n|---:|---|---|---|\n");
    let state = |state: &Option<State>| {
        state
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), describe)
    };
    for drifted in drift {
        text.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            drifted.id,
            cell(&drifted.username),
            cell(&state(&drifted.at_export)),
            cell(&state(&drifted.now)),
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_escaped_for_markdown_tables() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        assert_eq!(cell("<script>"), "\\<script\\>");
        assert_eq!(cell("plain text"), "plain text");
        assert_eq!(cell("x\u{202e}y"), "x\\\\u{202e}y");
    }

    #[test]
    fn a_command_line_stays_in_its_cell() {
        assert_eq!(code_cell("a | b\nc `d`"), "a \\| b c 'd'");
    }
}
