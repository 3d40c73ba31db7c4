//! `validate`: every problem on standard output, counts on standard error; no network.
//! With `--rules`, the rules file is checked whole first (and alone without an input).

use std::io::Write;

use crate::error::Error;
use crate::exit;
use crate::input::rules::RuleSet;
use crate::input::{
    self, conflict_message, Access, InputFile, InputOptions, InputScan, InputSource, Problem,
    Record, RowReader, RowStatus, SnapshotReader,
};
use crate::output::{column_mapping_line, Console};
use crate::text::plural;

pub(super) fn run(options: &InputOptions, console: &Console) -> Result<u8, Error> {
    if let Some(path) = &options.rules {
        let rules = RuleSet::load(path)?;
        tracing::info!(
            rules = rules.rules().len(),
            "{}: {} {}, every one checked",
            path.display(),
            rules.rules().len(),
            plural(rules.rules().len() as u64, "rule", "rules")
        );
        if options.source == InputSource::None {
            return Ok(exit::for_validation(0));
        }
    }
    let input = InputFile::open(options, Access::InPlace)?;
    let scan = input::scan(&input, options, None)?;
    let mut reader = input.reader(options, None)?;
    tracing::info!(
        "{}",
        column_mapping_line(&reader.column_mapping(), reader.delimiter())
    );
    let mut unexplained = 0;
    // A reader that stopped reading (`| head`) has what it wanted: the console drops the
    // rest, and the exit code still says whether every row is valid.
    let mut out = std::io::BufWriter::new(console.stdout());
    list_problems(&mut reader, &scan, &mut unexplained, &mut out).map_err(Error::Stdout)?;
    if unexplained > 0 {
        tracing::info!(
            rows = unexplained,
            "{unexplained} {} say false without a reason: fine while the identity is not a service account (plan and apply check it); otherwise pass --reason-if-false",
            plural(unexplained, "row", "rows")
        );
    }
    // Rows named by username or email are resolved only by plan and apply: offline,
    // each counts as one to send.
    let sendable = scan.sendable_ids() + scan.unresolved_rows;
    let duplicates = scan.valid_rows().saturating_sub(sendable);
    tracing::info!(
        input = input.path(),
        rows = scan.rows,
        valid = scan.valid_rows(),
        invalid = scan.invalid_rows,
        to_send = sendable,
        duplicate = duplicates,
        "{}: {} {}, {} valid, {} invalid; {} to send, {} duplicate",
        input.path(),
        scan.rows,
        plural(scan.rows, "row", "rows"),
        scan.valid_rows(),
        scan.invalid_rows,
        sendable,
        duplicates,
    );
    Ok(exit::for_validation(scan.invalid_rows))
}

/// Every problem on standard output, in line order: row problems from a second pass,
/// conflicts from the scan.
fn list_problems(
    reader: &mut RowReader<SnapshotReader>,
    scan: &InputScan,
    unexplained: &mut u64,
    out: &mut impl Write,
) -> std::io::Result<()> {
    while let Some(Ok(record)) = reader.next_record() {
        match record {
            Record::Invalid(bad) => {
                for problem in &bad.problems {
                    writeln!(out, "{problem}")?;
                }
            }
            Record::Valid(row) => {
                if row.reason.is_empty() {
                    *unexplained += 1;
                }
                if let (RowStatus::Conflict { lines }, Some(id)) = (scan.status(&row), row.id.id())
                {
                    let problem = Problem {
                        line: row.line,
                        column: scan.id_column.clone(),
                        message: conflict_message(id, lines),
                    };
                    writeln!(out, "{problem}")?;
                }
            }
        }
    }
    out.flush()
}
