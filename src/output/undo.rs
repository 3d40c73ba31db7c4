//! The undo file: for every row that was, or may have been, applied (sent, whatever the
//! answer), a row in the input format that puts the identity back as it was before the
//! run. Rows the check after the run shows unapplied are taken out again.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::report::spreadsheet_safe;
use crate::model::{FailureKind, Link, Previous, ReportRow};

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
    /// Where the file is: written again whole (beside it, then renamed) when a row's
    /// baseline changes or a row is taken out.
    path: PathBuf,
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
    /// This run's rows: enough to write the file again.
    rows: Vec<(u64, Vec<String>)>,
    /// A row was restated or taken out since the file was last written whole.
    dirty: bool,
}

/// The header of an undo file: whether it decides links, whether it carries the baseline.
pub(crate) fn undo_header(links: bool, baseline: bool) -> &'static str {
    match (links, baseline) {
        (false, true) => UNDO_HEADER,
        (true, true) => UNDO_HEADER_LINKS,
        (false, false) => UNDO_HEADERS_TWO_WAY[0],
        (true, false) => UNDO_HEADERS_TWO_WAY[1],
    }
}

impl UndoWriter {
    /// A new undo file, header first.
    pub(crate) fn new(
        file: File,
        path: &Path,
        run_started: String,
        links: bool,
    ) -> io::Result<Self> {
        let mut csv = csv::Writer::from_writer(file);
        csv.write_record(undo_header(links, true).split(','))?;
        csv.flush()?;
        Ok(Self {
            csv,
            path: path.to_owned(),
            written: std::collections::HashSet::new(),
            run_started,
            links,
            baseline: true,
            earlier: Vec::new(),
            rows: Vec::new(),
            dirty: false,
        })
    }

    /// An earlier run's undo file, added to (a resumed run).
    pub(crate) fn append(
        file: File,
        path: &Path,
        run_started: String,
        earlier: EarlierUndo,
        links: bool,
    ) -> io::Result<Self> {
        let written = { earlier.rows.iter() }
            .filter_map(|row| row.first()?.parse().ok())
            .collect();
        Ok(Self {
            csv: csv::Writer::from_writer(file),
            path: path.to_owned(),
            written,
            run_started,
            links,
            baseline: earlier.baseline,
            earlier: earlier.rows,
            rows: Vec::new(),
            dirty: false,
        })
    }

    /// Takes this run's rows of `ids` out of the file (the check after the run showed
    /// them unapplied); the file is written again by [`UndoWriter::close`].
    pub(crate) fn forget(&mut self, ids: &std::collections::HashSet<u64>) {
        let before = self.rows.len();
        self.rows.retain(|(id, _)| !ids.contains(id));
        self.dirty |= self.rows.len() != before;
    }

    /// Restates the baseline of `id`'s row as Drata was read to hold it after the run
    /// (`now.link` when the run decides links): the state the run left, known rather
    /// than inferred from the answers. Written by [`UndoWriter::close`].
    pub(crate) fn holds(&mut self, id: u64, now: &Previous) {
        if !self.baseline {
            return;
        }
        let reason = now.reason.as_deref().unwrap_or_default();
        let left = Left::of(now.marked, reason, now.link.as_ref());
        self.restate(id, &left);
    }

    /// Writes the file again whole when a row was restated or taken out: beside it, then
    /// renamed over it, so that a kill or a full disk leaves the file as it was, never
    /// half written (it holds the earlier run's rows, the state before everything).
    pub(crate) fn close(mut self) -> io::Result<()> {
        self.csv.flush()?;
        if !self.dirty {
            return Ok(());
        }
        let dir = { self.path.parent() }
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut csv = csv::Writer::from_writer(tempfile::NamedTempFile::new_in(dir)?);
        csv.write_record(undo_header(self.links, self.baseline).split(','))?;
        let rows = self.rows.iter().map(|(_, cells)| cells);
        for cells in self.earlier.iter().chain(rows) {
            csv.write_record(cells)?;
        }
        let temp = csv.into_inner().map_err(|e| e.into_error())?;
        temp.as_file().sync_all()?;
        temp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
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
                self.restate(id, &left);
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
        // A row partly applied is known to have changed what was applied, and may have
        // changed what failed without a certain refusal (a 5xx or a timeout after Drata
        // saved it); any other row sent may have changed all it sent.
        let refused = row
            .failure
            .is_some_and(|kind| kind != FailureKind::Retryable);
        let changed = if row.partly_applied() && refused {
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
        Left::of(marked, reason, link)
    }

    /// Puts the state this run leaves in the baseline of `id`'s row, in memory: the file
    /// is written again once, at the end, however many rows are restated.
    fn restate(&mut self, id: u64, left: &Left) {
        let key = id.to_string();
        let restated = |cells: &mut Vec<String>| {
            // id, flag, reason, baseline flag and reason, [link, baseline link]
            if cells.first() != Some(&key) || cells.len() < 5 {
                return false;
            }
            cells.splice(3..5, left.flag.iter().cloned());
            if let (Some(cell), Some(link)) = (cells.get_mut(6), left.link.first()) {
                cell.clone_from(link);
            }
            true
        };
        let earlier = self.earlier.iter_mut().map(restated);
        let rows = self.rows.iter_mut().map(|(_, cells)| restated(cells));
        let mut changed = false;
        for row_changed in earlier.chain(rows) {
            changed |= row_changed;
        }
        self.dirty |= changed;
    }
}

/// The baseline cells of one identity: the flag and reason, the link.
#[derive(Default)]
struct Left {
    flag: Vec<String>,
    link: Vec<String>,
}

impl Left {
    /// The cells of a flag, its reason (only a service account has one), and a link.
    fn of(marked: bool, reason: &str, link: Option<&Link>) -> Self {
        let reason = if marked { reason } else { "" };
        Left {
            flag: vec![marked.to_string(), spreadsheet_safe(reason).into_owned()],
            link: vec![spreadsheet_safe(link.map_or("", Link::cell)).into_owned()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IdCell, Outcome, Parts};

    fn sent_row(id: u64, marked_before: bool) -> ReportRow {
        let mut row = ReportRow::new(
            2,
            IdCell::Id(id),
            Some(false),
            String::new(),
            Outcome::Updated,
            "",
        );
        row.previous = Some(Previous {
            marked: marked_before,
            reason: Some("ci".to_owned()),
            link: None,
        });
        row.sent = Parts {
            flag: true,
            link: false,
        };
        row.applied = row.sent;
        row
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A resumed run sending ids again restates their rows in memory and writes the file
    /// once, at the end, under a new inode: until then the earlier run's rows are untouched.
    #[cfg(unix)]
    #[test]
    fn a_resumed_run_rewrites_the_file_once_at_the_end_beside_it() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("undo.csv");
        let earlier = format!("{UNDO_HEADER}\n1,true,ci,true,ci\n2,true,ci,true,ci\n");
        std::fs::write(&path, &earlier).unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        let rows = vec![
            ["1", "true", "ci", "true", "ci"]
                .map(str::to_owned)
                .to_vec(),
            ["2", "true", "ci", "true", "ci"]
                .map(str::to_owned)
                .to_vec(),
        ];
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let earlier_undo = EarlierUndo {
            rows,
            baseline: true,
        };
        let mut undo =
            UndoWriter::append(file, &path, "then".to_owned(), earlier_undo, false).unwrap();
        for id in [1, 2] {
            assert!(undo.write(&sent_row(id, true)).unwrap());
        }
        assert!(undo.write(&sent_row(3, false)).unwrap());
        let mut expected: Vec<String> = earlier.lines().map(str::to_owned).collect();
        expected.push("3,false,Restored by drata-svcacct undo: not a service account before the run of then,false,".to_owned());
        assert_eq!(
            lines(&path),
            expected,
            "the earlier rows untouched until the end"
        );
        undo.close().unwrap();
        let after = lines(&path);
        assert_eq!(
            after[..3],
            [UNDO_HEADER, "1,true,ci,false,", "2,true,ci,false,"]
        );
        assert_eq!(after[3], expected[3]);
        assert_ne!(
            std::fs::metadata(&path).unwrap().ino(),
            inode,
            "renamed over it"
        );
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left beside it");
    }
}
