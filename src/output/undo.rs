//! The undo file: for every row that was, or may have been, applied (answered 2xx, or
//! without a certain refusal), a row in the input format that puts the identity back as
//! it was before the run. It only grows, and its baseline columns are the state the run
//! may have left (what was sent, where the answer was not a certain refusal): applying it
//! puts back what the run changed, leaves alone what it did not, and is a conflict where
//! someone changed Drata since.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::field::AccessField;
use crate::model::{FieldName, Link, Previous, ReportRow, UNDO_OF_COLUMN};

/// Which fields an undo file puts back, besides the service account: the links when the
/// run decides them (a run that never touched links writes no link column, so its undo
/// cannot unlink anyone), and the access toggles the input decides.
#[derive(Debug, Clone, Default)]
pub(crate) struct UndoColumns {
    pub links: bool,
    pub access: Vec<&'static AccessField>,
}

/// The undo file's header: the input format, with the baseline columns of an export
/// holding the state this run left, so that applying the file is a three-way review: an
/// identity someone changed since is a conflict, not undone over their change. Undo files
/// of earlier versions carry no baseline (`baseline` false): still ours to add to, their
/// rows then going without it too.
pub(crate) fn undo_header(columns: &UndoColumns, baseline: bool) -> Vec<&'static str> {
    let mut header = vec!["id", "serviceAccount", "serviceAccountReason"];
    if baseline {
        header.extend(["drataServiceAccount", "drataReason"]);
    }
    if columns.links {
        header.push("linkedUser");
        if baseline {
            header.push("drataLinkedUser");
        }
    }
    for field in &columns.access {
        header.push(field.column);
        if baseline {
            header.push(field.baseline_column);
        }
    }
    if baseline {
        header.push(UNDO_OF_COLUMN);
    }
    header
}

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
    /// The fields the file puts back besides the service account.
    columns: UndoColumns,
    /// The header's names: cells are found by them.
    header: Vec<&'static str>,
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

impl UndoWriter {
    /// A new undo file, header first.
    pub(crate) fn new(
        file: File,
        path: &Path,
        run_started: String,
        columns: UndoColumns,
    ) -> io::Result<Self> {
        let mut csv = csv::Writer::from_writer(file);
        let header = undo_header(&columns, true);
        csv.write_record(&header)?;
        csv.flush()?;
        Ok(Self {
            csv,
            path: path.to_owned(),
            written: std::collections::HashSet::new(),
            run_started,
            columns,
            header,
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
        columns: UndoColumns,
    ) -> io::Result<Self> {
        let written = { earlier.rows.iter() }
            .filter_map(|row| row.first()?.parse().ok())
            .collect();
        Ok(Self {
            csv: csv::Writer::from_writer(file),
            path: path.to_owned(),
            written,
            run_started,
            header: undo_header(&columns, earlier.baseline),
            columns,
            baseline: earlier.baseline,
            earlier: earlier.rows,
            rows: Vec::new(),
            dirty: false,
        })
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
        csv.write_record(&self.header)?;
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
        let mut named = vec![
            ("id", id.to_string()),
            ("serviceAccount", flag.to_owned()),
            ("serviceAccountReason", reason),
            (UNDO_OF_COLUMN, self.run_started.clone()),
        ];
        let link = previous.link.as_ref().map_or("", |link| link.cell());
        named.push(("linkedUser", link.to_owned()));
        for field in &self.columns.access {
            // A toggle the row left alone is left alone by its undo: a blank cell.
            let decided = row.access.iter().any(|asked| asked.access == field.access);
            let before = previous.access.get(field.access).filter(|_| decided);
            named.push((
                field.column,
                before.map(|on| on.to_string()).unwrap_or_default(),
            ));
        }
        named.extend(left.cells);
        let cells: Vec<String> = { self.header.iter() }
            .map(|name| cell_of(&named, name))
            .collect();
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
        // What was applied, and what failed without a certain refusal (a 5xx or a timeout
        // after Drata saved it), may have changed.
        let changed = row.answers.may_be_applied();
        let (marked, reason) = if changed.contains(FieldName::ServiceAccount) {
            let marked = row.flag == Some(true);
            (marked, if marked { row.reason.as_str() } else { "" })
        } else {
            let reason = previous.reason.as_deref().unwrap_or_default();
            (previous.marked, if previous.marked { reason } else { "" })
        };
        let link = match (&row.link, changed.contains(FieldName::Link)) {
            (Some(wanted), true) => Some(&wanted.link),
            _ => previous.link.as_ref(),
        };
        let mut left = Left::of(marked, reason, link);
        for field in &self.columns.access {
            let asked = { row.access.iter() }
                .find(|asked| asked.access == field.access)
                .filter(|_| changed.contains(FieldName::Access(field.access)));
            let on = asked.map_or(previous.access.get(field.access), |asked| Some(asked.on));
            left.toggle(field, on.unwrap_or(false));
        }
        left
    }

    /// Puts the state this run leaves in the baseline of `id`'s row, in memory: the file
    /// is written again once, at the end, however many rows are restated. Cells are found
    /// by the header's names.
    fn restate(&mut self, id: u64, left: &Left) {
        let key = id.to_string();
        let header = &self.header;
        let restated = |cells: &mut Vec<String>| {
            if cells.first() != Some(&key) || cells.len() != header.len() {
                return false;
            }
            for (name, value) in &left.cells {
                if let Some(at) = header.iter().position(|h| h == name) {
                    cells[at].clone_from(value);
                }
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

/// The cell named `name` of a row being made; empty when it has none.
fn cell_of(named: &[(&str, String)], name: &str) -> String {
    { named.iter() }
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.clone())
        .unwrap_or_default()
}

/// The baseline cells of one identity, by column: the state the run leaves.
#[derive(Default)]
struct Left {
    cells: Vec<(&'static str, String)>,
}

impl Left {
    /// The cells of a flag, its reason (only a service account has one), and a link.
    fn of(marked: bool, reason: &str, link: Option<&Link>) -> Self {
        let reason = if marked { reason } else { "" };
        Left {
            cells: vec![
                ("drataServiceAccount", marked.to_string()),
                ("drataReason", reason.to_owned()),
                ("drataLinkedUser", link.map_or("", Link::cell).to_owned()),
            ],
        }
    }

    /// A toggle's baseline cell.
    fn toggle(&mut self, field: &AccessField, on: bool) {
        self.cells.push((field.baseline_column, on.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Answer, Fields, IdCell, Outcome};

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
            ..Previous::default()
        });
        row.sent = Fields::default().with(FieldName::ServiceAccount);
        row.answers
            .record(FieldName::ServiceAccount, Answer::Applied);
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
        let header = undo_header(&UndoColumns::default(), true).join(",");
        let earlier = format!("{header}\n1,true,ci,true,ci,before\n2,true,ci,true,ci,before\n");
        std::fs::write(&path, &earlier).unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        let rows = vec![
            ["1", "true", "ci", "true", "ci", "before"]
                .map(str::to_owned)
                .to_vec(),
            ["2", "true", "ci", "true", "ci", "before"]
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
        let mut undo = UndoWriter::append(
            file,
            &path,
            "then".to_owned(),
            earlier_undo,
            UndoColumns::default(),
        )
        .unwrap();
        for id in [1, 2] {
            assert!(undo.write(&sent_row(id, true)).unwrap());
        }
        assert!(undo.write(&sent_row(3, false)).unwrap());
        let mut expected: Vec<String> = earlier.lines().map(str::to_owned).collect();
        expected.push("3,false,Restored by drata-svcacct undo: not a service account before the run of then,false,,then".to_owned());
        assert_eq!(
            lines(&path),
            expected,
            "the earlier rows untouched until the end"
        );
        undo.close().unwrap();
        let after = lines(&path);
        assert_eq!(
            after[..3],
            [
                header.as_str(),
                "1,true,ci,false,,before",
                "2,true,ci,false,,before"
            ]
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

    /// Each field's undo cells, by column: what Drata held before the run, and as baseline
    /// what the run may have left; a toggle the row left alone stays blank.
    #[test]
    fn each_field_has_its_undo_cells_by_name() {
        use crate::field::ACCESS;
        use crate::model::{Access, AccessRequest, LinkRequest, Toggles};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("undo.csv");
        let columns = UndoColumns {
            links: true,
            access: vec![&ACCESS[0], &ACCESS[1]],
        };
        let file = std::fs::File::create(&path).unwrap();
        let mut undo = UndoWriter::new(file, &path, "then".to_owned(), columns).unwrap();
        let mut row = sent_row(5, true);
        row.link = Some(LinkRequest {
            link: Link::Nobody,
            user: None,
            baseline: None,
        });
        row.access = vec![AccessRequest {
            access: Access::Admin,
            on: true,
            baseline: None,
        }];
        let mut before = Toggles::default();
        before.set(Access::Admin, Some(false));
        before.set(Access::Db, Some(true));
        row.previous = Some(Previous {
            marked: true,
            reason: Some("ci".to_owned()),
            link: Some(Link::User("ann@x".to_owned())),
            access: before,
            ..Previous::default()
        });
        for field in [FieldName::Link, FieldName::Access(Access::Admin)] {
            row.sent.insert(field);
            row.answers.record(field, Answer::Applied);
        }
        assert!(undo.write(&row).unwrap());
        undo.close().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        let cells: Vec<String> = reader
            .records()
            .next()
            .unwrap()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        let cell = |name: &str| cells[header.iter().position(|h| h == name).unwrap()].clone();
        #[rustfmt::skip]
        let expected = [
            ("id", "5"), ("serviceAccount", "true"), ("serviceAccountReason", "ci"),
            ("drataServiceAccount", "false"), ("drataReason", ""),
            ("linkedUser", "ann@x"), ("drataLinkedUser", ""),
            ("adminAccess", "false"), ("drataAdminAccess", "true"),
            ("dbAccess", ""), ("drataDbAccess", "true"),
            ("undoOf", "then"),
        ];
        for (name, value) in expected {
            assert_eq!(cell(name), value, "{name}: {text}");
        }
        assert_eq!(header.len(), expected.len(), "{text}");
    }
}
