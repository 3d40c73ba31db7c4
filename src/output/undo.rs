//! The undo file: for every row that was, or may have been, applied (sent, whatever the
//! answer), a row in the input format that puts the identity back as it was before the
//! run. Rows the check after the run shows unapplied are taken out again.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};

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
    /// Where this run's rows begin in the file, and what they are: enough to write them
    /// again without some.
    start: u64,
    rows: Vec<(u64, [String; 3])>,
}

impl UndoWriter {
    /// A new undo file, header first.
    pub(crate) fn new(file: File, run_started: String) -> io::Result<Self> {
        let mut csv = csv::Writer::from_writer(file);
        csv.write_record(UNDO_HEADER.split(','))?;
        csv.flush()?;
        let start = { csv.get_ref() }.stream_position()?;
        Ok(Self {
            csv,
            written: std::collections::HashSet::new(),
            run_started,
            start,
            rows: Vec::new(),
        })
    }

    /// An earlier run's undo file, added to (a resumed run); `written` holds its ids.
    pub(crate) fn append(
        mut file: File,
        run_started: String,
        written: std::collections::HashSet<u64>,
    ) -> io::Result<Self> {
        let start = file.seek(SeekFrom::End(0))?;
        Ok(Self {
            csv: csv::Writer::from_writer(file),
            written,
            run_started,
            start,
            rows: Vec::new(),
        })
    }

    /// Takes this run's rows of `ids` out of the file (the check after the run showed
    /// them unapplied): the file is cut back to where this run began and written again.
    pub(crate) fn forget(&mut self, ids: &std::collections::HashSet<u64>) -> io::Result<()> {
        let before = self.rows.len();
        self.rows.retain(|(id, _)| !ids.contains(id));
        if self.rows.len() == before {
            return Ok(());
        }
        self.csv.flush()?;
        // `&File` seeks the file itself: the writer's buffer is empty after the flush.
        let mut file: &File = self.csv.get_ref();
        file.set_len(self.start)?;
        file.seek(SeekFrom::Start(self.start))?;
        for (_, cells) in &self.rows {
            self.csv.write_record(cells)?;
        }
        self.csv.flush()
    }

    /// Records the previous state of a sent row's identity, flushed at once. `false`
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
        let cells = [
            id.to_string(),
            flag.to_owned(),
            spreadsheet_safe(&reason).into_owned(),
        ];
        self.csv.write_record(&cells)?;
        self.csv.flush()?;
        self.rows.push((id, cells));
        Ok(true)
    }
}
