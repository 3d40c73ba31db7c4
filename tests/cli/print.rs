//! The evidence workbook printed, as an auditor files it: converted to PDF by LibreOffice and
//! read back as text. Every sheet prints one page wide with its header on every page, the
//! Summary's facts beside their values, and no reason or email cut at a column's edge.

use std::path::Path;
use std::process::Command;

use crate::evidence::sheet;
use crate::support::*;

/// The identities of the 300-identity review the run changes: every eighth from 3, but the
/// seeded service accounts (every seventh), which are kept as they are.
fn changed(id: u64) -> bool {
    id % 8 == 3 && !id.is_multiple_of(7)
}

/// A reason as long as reviewers write them (50 to 60 characters, a column's widest before
/// it wraps), none alike.
fn reason(id: u64) -> String {
    let team = ["payments", "identity", "data warehouse"][(id % 3) as usize];
    format!("GitHub Actions runner for the {team} team PLAT-{id:04}")
}

/// The review: 300 rows, a few dozen of them changed, the rest as seeded.
fn review() -> String {
    let mut csv = "id,flag,reason\n".to_owned();
    for id in 1..=300u64 {
        let row = match (changed(id), id.is_multiple_of(7)) {
            (true, _) => format!("{id},true,{}\n", reason(id)),
            (false, true) => format!("{id},true,Seeded: automation account\n"),
            (false, false) => format!("{id},false,\n"),
        };
        csv.push_str(&row);
    }
    csv
}

/// The workbook as LibreOffice prints it, one string a page (`pdftotext -layout`).
fn printed(work: &Workdir, workbook: &Path) -> Vec<String> {
    // A profile of its own: parallel conversions on one profile fail or wait on its lock.
    let profile = format!("-env:UserInstallation=file://{}", work.path("lo").display());
    let converted = Command::new("soffice")
        .args([
            profile.as_str(),
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
        ])
        .arg(work.path("pdf"))
        .arg(workbook)
        .output()
        .unwrap();
    assert!(converted.status.success(), "{converted:?}");
    let stem = workbook.file_stem().unwrap().to_string_lossy();
    let pdf = work.path("pdf").join(format!("{stem}.pdf"));
    let text = Command::new("pdftotext")
        .arg("-layout")
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(text.status.success(), "{text:?}");
    let text = String::from_utf8(text.stdout).unwrap();
    let mut pages: Vec<String> = text.split('\u{c}').map(str::to_owned).collect();
    // pdftotext ends every page with a form feed: the last piece is empty.
    pages.pop();
    pages
}

/// The first `n` characters of `text`.
fn prefix(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

/// Checks an evidence workbook as an auditor files it: converted to PDF by LibreOffice and
/// read back, every page carries its sheet's header, the Summary and Changes take at most
/// ceil(changes / 30) + 3 pages, every Summary fact has its value on its line, and every
/// change's line starts with its id and holds its email whole and its reason (whole when it
/// fits a column, else its start, the rest wrapped below). False, having checked nothing,
/// when LibreOffice or pdftotext is missing (the tools' requirement is the caller's).
pub fn prints_as_filed(work: &Workdir, workbook: &Path) -> bool {
    if !tool_available("soffice", "--version") || !tool_available("pdftotext", "-v") {
        return false;
    }
    let pages = printed(work, workbook);
    let of = |marker: &str| -> Vec<&String> {
        pages.iter().filter(|page| page.contains(marker)).collect()
    };
    let summary = of("Input SHA-256");
    let changes = of("after_service_account");
    let report = of("previous_linked_user");
    eprintln!(
        "printed: {} pages; Summary {}, Changes {}, Report {}",
        pages.len(),
        summary.len(),
        changes.len(),
        report.len()
    );
    let changed = sheet(workbook, "Changes");
    assert!(summary.len() + changes.len() <= (changed.len() - 1).div_ceil(30) + 3);
    assert_eq!(
        summary.len() + changes.len() + report.len(),
        pages.len(),
        "every page has its sheet's header"
    );
    // Each fact with its value on one line (a long value may go on below, wrapped).
    let lines: Vec<&str> = summary.iter().flat_map(|page| page.lines()).collect();
    for row in &sheet(workbook, "Summary")[1..] {
        let (label, value) = (&row[0], prefix(&row[1], 30));
        assert!(
            lines.iter().any(|line| line
                .trim_start()
                .strip_prefix(label.as_str())
                .is_some_and(|rest| rest.trim_start().starts_with(&value))),
            "{label} and {value} are not on one line:\n{}",
            summary[0]
        );
    }
    // Each identity changed on one line: its id first, its email whole.
    let lines: Vec<&str> = changes.iter().flat_map(|page| page.lines()).collect();
    let column = |name: &str| changed[0].iter().position(|h| h == name).unwrap();
    let (email_at, reason_at) = (column("email"), column("after_reason"));
    for row in &changed[1..] {
        let (id, email) = (&row[0], &row[email_at]);
        let reason = prefix(&row[reason_at], 40);
        assert!(
            lines
                .iter()
                .any(|line| line.trim_start().starts_with(&format!("{id} "))
                    && line.contains(email.as_str())
                    && line.contains(&reason)),
            "identity {id}, {email}, {reason:?} is not whole on its line:\n{}",
            changes[0]
        );
    }
    true
}

#[test]
fn the_workbook_prints_one_page_wide_with_every_fact_and_value_whole() {
    if !tool_available("soffice", "--version") || !tool_available("pdftotext", "-v") {
        return;
    }
    let sim = simulator(|c| c.identities = 300);
    let work = Workdir::new();
    work.write("review.csv", &review());
    let run = Apply::on(&sim)
        .within(&work)
        .file("review.csv")
        .args(["--report", "r.csv", "--evidence", "e.xlsx"])
        .run()
        .run;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let workbook = work.path("e.xlsx");
    assert!(prints_as_filed(&work, &workbook));
    let pages = printed(&work, &workbook);
    let changes: Vec<&String> = { pages.iter() }
        .filter(|page| page.contains("after_service_account"))
        .collect();
    let changed_ids: Vec<u64> = (1..=300).filter(|id| changed(*id)).collect();

    // Each identity changed on one line: its id first, its email and reason whole.
    let lines: Vec<&str> = changes.iter().flat_map(|page| page.lines()).collect();
    let emails = sheet(&workbook, "Changes");
    for id in changed_ids {
        let email = &emails.iter().find(|row| row[0] == id.to_string()).unwrap()[2];
        assert!(
            lines
                .iter()
                .any(|line| line.trim_start().starts_with(&format!("{id} "))
                    && line.contains(email.as_str())
                    && line.contains(&reason(id))),
            "identity {id}, {email}, {:?} is not whole on one line:\n{}",
            reason(id),
            changes[0]
        );
    }
}
