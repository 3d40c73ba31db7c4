//! The undo file: for every row that was, or may have been, applied (sent, whatever the
//! answer), a row in the input format that puts the identity back as it was before the
//! run. Rows the check after the run shows unapplied are taken out again.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};

use super::report::spreadsheet_safe;
use crate::model::{Link, Previous, ReportRow};

/// The undo file's header: the input format, with the baseline columns of an export
/// holding the state this run left, so that applying the file is a three-way review: an
/// identity someone changed since is a conflict, not undone over their change.
pub(crate) const UNDO_HEADER: &str =
    "id,serviceAccount,serviceAccountReason,drataServiceAccount,drataReason";
/// The header when the run decides links: undoing it puts the links back too. A run that
/// never touched links writes no link column, so its undo cannot unlink anyone.
pub(crate) const UNDO_HEADER_LINKS: &str =
    "id,serviceAccount,serviceAccountReason,drataServiceAccount,drataReason,linkedUser,drataLinkedUser";
/// The headers of undo files of earlier versions, without the baseline: still ours to add
/// to (rows then go without the baseline too).
pub(crate) const UNDO_HEADERS_TWO_WAY: [&str; 2] = [
    "id,serviceAccount,serviceAccountReason",
    "id,serviceAccount,serviceAccountReason,linkedUser",
];

/// The rows of an undo file a resumed run adds to, as read.
pub(crate) struct EarlierUndo {
    pub(crate) rows: Vec<Vec<String>>,
    /// Its rows carry the baseline columns.
    pub(crate) baseline: bool,
}

pub(crate) struct UndoWriter {
    csv: csv::Writer<File>,
    /// Ids already in the file (written by the run this one resumes): their first line is
    /// the state before everything, and a later one would contradict it.
    written: std::collections::HashSet<u64>,
    /// Used in the reason of identities that were not service accounts.
    run_started: String,
    /// The run decides links: each row carries the link before the run.
    links: bool,
    /// Each row carries the state the run left (the file is ours, of this version).
    baseline: bool,
    /// The rows of the file this run adds to: an id this run sends again keeps its row
    /// (the state before everything), its baseline restated as this run leaves it.
    earlier: Vec<Vec<String>>,
    /// Where this run's rows begin in the file, and what they are: enough to write them
    /// again without some.
    start: u64,
    rows: Vec<(u64, Vec<String>)>,
}

impl UndoWriter {
    /// A new undo file, header first.
    pub(crate) fn new(file: File, run_started: String, links: bool) -> io::Result<Self> {
        let mut csv = csv::Writer::from_writer(file);
        let header = if links {
            UNDO_HEADER_LINKS
        } else {
            UNDO_HEADER
        };
        csv.write_record(header.split(','))?;
        csv.flush()?;
        let start = { csv.get_ref() }.stream_position()?;
        Ok(Self {
            csv,
            written: std::collections::HashSet::new(),
            run_started,
            links,
            baseline: true,
            earlier: Vec::new(),
            start,
            rows: Vec::new(),
        })
    }

    /// An earlier run's undo file, added to (a resumed run).
    pub(crate) fn append(
        mut file: File,
        run_started: String,
        earlier: EarlierUndo,
        links: bool,
    ) -> io::Result<Self> {
        let start = file.seek(SeekFrom::End(0))?;
        let written = { earlier.rows.iter() }
            .filter_map(|row| row.first()?.parse().ok())
            .collect();
        Ok(Self {
            csv: csv::Writer::from_writer(file),
            written,
            run_started,
            links,
            baseline: earlier.baseline,
            earlier: earlier.rows,
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
    /// An identity the file already holds keeps its row (the state before everything), its
    /// baseline restated as this run leaves it.
    pub(crate) fn write(&mut self, row: &ReportRow) -> io::Result<bool> {
        let (Some(id), Some(previous)) = (row.id(), &row.previous) else {
            return Ok(false);
        };
        let left = self.left(row, previous);
        if !self.written.insert(id) {
            if self.baseline {
                self.restate(id, &left)?;
            }
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
        let mut cells = vec![
            id.to_string(),
            flag.to_owned(),
            spreadsheet_safe(&reason).into_owned(),
        ];
        cells.extend(left.flag);
        if self.links {
            let link = previous.link.as_ref().map_or("", |link| link.cell());
            cells.push(spreadsheet_safe(link).into_owned());
            cells.extend(left.link);
        }
        self.csv.write_record(&cells)?;
        self.csv.flush()?;
        self.rows.push((id, cells));
        Ok(true)
    }

    /// The baseline cells of the state this run leaves: what it sent, and what it did not
    /// send as it found it. Empty when the file carries no baseline.
    fn left(&self, row: &ReportRow, previous: &Previous) -> Left {
        if !self.baseline {
            return Left::default();
        }
        // A row partly applied is known to have changed only what was applied; any other
        // row sent may have changed all it sent.
        let changed = if row.partly_applied() {
            row.applied
        } else {
            row.sent
        };
        let (marked, reason) = if changed.flag {
            let marked = row.flag == Some(true);
            (marked, if marked { row.reason.as_str() } else { "" })
        } else {
            let reason = previous.reason.as_deref().unwrap_or_default();
            (previous.marked, if previous.marked { reason } else { "" })
        };
        let link = match (&row.link, changed.link) {
            (Some(wanted), true) => Some(&wanted.link),
            _ => previous.link.as_ref(),
        };
        Left {
            flag: vec![marked.to_string(), spreadsheet_safe(reason).into_owned()],
            link: vec![spreadsheet_safe(link.map_or("", Link::cell)).into_owned()],
        }
    }

    /// Puts the state this run leaves in the baseline of `id`'s row, written before: the
    /// file is written again whole (a resumed run sending an identity again is rare).
    fn restate(&mut self, id: u64, left: &Left) -> io::Result<()> {
        let key = id.to_string();
        let restated = |cells: &mut Vec<String>| {
            // id, flag, reason, baseline flag and reason, [link, baseline link]
            if cells.first() != Some(&key) || cells.len() < 5 {
                return;
            }
            cells.splice(3..5, left.flag.iter().cloned());
            if let (Some(cell), Some(link)) = (cells.get_mut(6), left.link.first()) {
                cell.clone_from(link);
            }
        };
        self.earlier.iter_mut().for_each(restated);
        self.rows.iter_mut().for_each(|(_, cells)| restated(cells));
        self.csv.flush()?;
        // `&File` seeks the file itself: the writer's buffer is empty after the flush.
        let mut file: &File = self.csv.get_ref();
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        let header = if self.links {
            UNDO_HEADER_LINKS
        } else {
            UNDO_HEADER
        };
        self.csv.write_record(header.split(','))?;
        for cells in &self.earlier {
            self.csv.write_record(cells)?;
        }
        self.csv.flush()?;
        self.start = { self.csv.get_ref() }.stream_position()?;
        for (_, cells) in &self.rows {
            self.csv.write_record(cells)?;
        }
        self.csv.flush()
    }
}

/// The baseline cells of one identity: the flag and reason, the link.
#[derive(Default)]
struct Left {
    flag: Vec<String>,
    link: Vec<String>,
}
