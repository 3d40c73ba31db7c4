//! The undo file: for every row actually updated, a row in the input format that puts
//! the identity back as it was before the run.

use std::fs::File;
use std::io;

use super::report::spreadsheet_safe;
use crate::model::ReportRow;

/// The undo file's header: the input format.
pub(crate) const UNDO_HEADER: &str = "id,serviceAccount,serviceAccountReason";

pub(crate) struct UndoWriter {
    csv: csv::Writer<File>,
    /// Ids already in the file (written by the run this one resumes): their first line is
    /// the state before everything, and a later one would contradict it.
    written: std::collections::HashSet<u64>,
    /// Used in the reason of identities that were not service accounts.
    run_started: String,
}

impl UndoWriter {
    /// A new undo file, header first.
    pub(crate) fn new(file: File, run_started: String) -> io::Result<Self> {
        let mut csv = csv::Writer::from_writer(file);
        csv.write_record(UNDO_HEADER.split(','))?;
        csv.flush()?;
        Ok(Self {
            csv,
            written: std::collections::HashSet::new(),
            run_started,
        })
    }

    /// An earlier run's undo file, added to (a resumed run); `written` holds its ids.
    pub(crate) fn append(
        file: File,
        run_started: String,
        written: std::collections::HashSet<u64>,
    ) -> Self {
        Self {
            csv: csv::Writer::from_writer(file),
            written,
            run_started,
        }
    }

    /// Records the previous state of an updated row's identity, flushed at once. `false`
    /// when it cannot: the identity was not in the listing, so its state before is unknown.
    pub(crate) fn write(&mut self, row: &ReportRow) -> io::Result<bool> {
        let (Some(id), Some(previous)) = (row.id(), &row.previous) else {
            return Ok(false);
        };
        if !self.written.insert(id) {
            return Ok(true);
        }
        let (flag, reason) = if previous.marked {
            (
                "true",
                previous
                    .reason
                    .clone()
                    .unwrap_or_else(|| "Restored by drata-svcacct undo".to_owned()),
            )
        } else {
            (
                "false",
                format!(
                    "Restored by drata-svcacct undo: not a service account before the run of {}",
                    self.run_started
                ),
            )
        };
        self.csv.write_record([
            id.to_string().as_str(),
            flag,
            spreadsheet_safe(&reason).as_ref(),
        ])?;
        self.csv.flush()?;
        Ok(true)
    }
}
