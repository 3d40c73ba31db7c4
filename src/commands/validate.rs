//! `validate`: every problem on standard output, counts on standard error; no network.

use std::io::Write;

use crate::error::Error;
use crate::exit;
use crate::input::{
    self, conflict_message, Access, InputFile, InputOptions, Problem, Record, RowStatus,
};
use crate::output::column_mapping_line;

pub(super) fn run(options: &InputOptions) -> Result<u8, Error> {
    let input = InputFile::open(
        &options.source,
        Access::InPlace,
        options.max_copy_mib,
        options.encoding,
    )?;
    let scan = input::scan(&input, options, None)?;
    let mut reader = input.reader(options, None)?;
    tracing::info!(
        "{}",
        column_mapping_line(&reader.column_mapping(), reader.delimiter())
    );
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Every problem, in line order: row problems from a second pass, conflicts from the scan.
    while let Some(Ok(record)) = reader.next_record() {
        match record {
            Record::Invalid(bad) => {
                for problem in &bad.problems {
                    writeln!(out, "{problem}").map_err(Error::Stdout)?;
                }
            }
            Record::Valid(row) => {
                if let (RowStatus::Conflict { lines }, Some(id)) = (scan.status(&row), row.id.id())
                {
                    let problem = Problem {
                        line: row.line,
                        column: scan.id_column.clone(),
                        message: conflict_message(id, lines),
                    };
                    writeln!(out, "{problem}").map_err(Error::Stdout)?;
                }
            }
        }
    }
    out.flush().map_err(Error::Stdout)?;
    let sendable = scan.sendable_ids();
    eprintln!(
        "{}: {} rows, {} valid, {} invalid; {} to send, {} duplicate",
        input.path(),
        scan.rows,
        scan.valid_rows(),
        scan.invalid_rows,
        sendable,
        scan.valid_rows().saturating_sub(sendable),
    );
    Ok(exit::for_validation(scan.invalid_rows))
}
