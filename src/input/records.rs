//! CSV records with bounded memory and true line numbers.
//!
//! Built on `csv_core` so that a record larger than [`MAX_RECORD_BYTES`] (a 100 MB field,
//! a quote that never closes) is skipped while it streams past, instead of being
//! buffered whole, and so that each record's physical starting line is known exactly.

use std::collections::VecDeque;
use std::io::{self, Read};

/// No valid row comes near this: a reason is at most 30000 UTF-16 units (120 KB).
pub(crate) const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Fields per record beyond which a record counts as too large.
pub(crate) const MAX_FIELDS: usize = 100_000;
const READ_CHUNK: usize = 64 * 1024;

/// One record's fields, as bytes.
#[derive(Debug, Default, Clone)]
pub(crate) struct Fields {
    /// Buffers kept at their size between records; `count` fields are valid.
    data: Vec<u8>,
    ends: Vec<usize>,
    count: usize,
}

impl Fields {
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn get(&self, index: usize) -> Option<&[u8]> {
        if index >= self.count {
            return None;
        }
        let end = *self.ends.get(index)?;
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1],
        };
        self.data.get(start..end)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Replaces the fields with `cells` (a spreadsheet row).
    pub(crate) fn set<'a>(&mut self, cells: impl IntoIterator<Item = &'a [u8]>) {
        self.data.clear();
        self.ends.clear();
        self.count = 0;
        for cell in cells {
            self.data.extend_from_slice(cell);
            self.ends.push(self.data.len());
            self.count += 1;
        }
    }
}

/// Where records come from: CSV bytes, or the rows of a spreadsheet already read.
pub(crate) enum Records<R> {
    Csv(Box<RecordReader<R>>),
    Sheet {
        sheet: std::sync::Arc<super::sheet::Sheet>,
        next: usize,
    },
}

impl<R> Records<R> {
    /// The sheet the records are rows of.
    pub(crate) fn sheet(&self) -> Option<&super::sheet::Sheet> {
        match self {
            Records::Csv(_) => None,
            Records::Sheet { sheet, .. } => Some(sheet),
        }
    }
}

impl<R: Read> Records<R> {
    /// The next record into `fields`, with the line (sheet row) it starts on.
    pub(crate) fn read(&mut self, fields: &mut Fields) -> io::Result<Option<RecordStart>> {
        match self {
            Records::Csv(reader) => reader.read(fields),
            Records::Sheet { sheet, next } => {
                let Some(row) = sheet.rows.get(*next) else {
                    return Ok(None);
                };
                *next += 1;
                // Cells are kept sparse; the record has every column up to the last.
                let texts: Vec<_> = (0..row.width())
                    .map(|column| row.get(column).map(|cell| cell.text()).unwrap_or_default())
                    .collect();
                fields.set(texts.iter().map(|text| text.as_bytes()));
                Ok(Some(RecordStart {
                    line: row.line,
                    kind: RecordKind::Complete,
                }))
            }
        }
    }

    /// The sheet and the typed row last read, when the records are a sheet's.
    pub(crate) fn sheet_row(&self) -> Option<(&str, &super::sheet::SheetRow)> {
        match self {
            Records::Csv(_) => None,
            Records::Sheet { sheet, next } => {
                let row = sheet.rows.get(next.checked_sub(1)?)?;
                Some((sheet.name.as_str(), row))
            }
        }
    }
}

/// What [`RecordReader::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// A record, its fields in the `Fields` passed in.
    Complete,
    /// A record past the limits; its bytes were skipped. `field` is the index of the
    /// field being read when the limit was crossed.
    TooLarge { field: usize },
    /// The last record, ended by the end of the input inside a quoted field that never
    /// closed: every line after the quote is in that field. `field` is its index.
    Unclosed { field: usize },
}

/// A record and the physical line it starts on (the header is line 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordStart {
    pub(crate) line: u64,
    pub(crate) kind: RecordKind,
}

/// Reads records from `R`, remembering where every CR and LF was.
pub(crate) struct RecordReader<R> {
    inner: R,
    core: csv_core::Reader,
    buffer: Vec<u8>,
    position: usize,
    filled: usize,
    at_eof: bool,
    /// Bytes handed to the parser so far.
    consumed: u64,
    /// Bytes read from `inner` so far.
    read: u64,
    /// `offset << 1 | is_lf` of each CR or LF not yet accounted for.
    marks: VecDeque<u64>,
    /// Line ends accounted for so far: LF, CRLF, or a lone CR (which ends a record too).
    newlines: u64,
    started: bool,
}

impl<R: Read> RecordReader<R> {
    pub(crate) fn new(inner: R, delimiter: u8) -> Self {
        Self {
            inner,
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            buffer: vec![0; READ_CHUNK],
            position: 0,
            filled: 0,
            at_eof: false,
            consumed: 0,
            read: 0,
            marks: VecDeque::new(),
            newlines: 0,
            started: false,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        let n = loop {
            match self.inner.read(&mut self.buffer) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        for at in memchr::memchr2_iter(b'\r', b'\n', &self.buffer[..n]) {
            let is_lf = u64::from(self.buffer[at] == b'\n');
            self.marks.push_back(((self.read + at as u64) << 1) | is_lf);
        }
        self.read += n as u64;
        self.position = 0;
        self.filled = n;
        self.at_eof = n == 0;
        if !self.started {
            self.started = true;
            // A UTF-8 byte-order mark is not part of the first header name.
            if self.buffer[..n].starts_with(b"\xEF\xBB\xBF") {
                self.position = 3;
                self.consumed = 3;
            }
        }
        Ok(())
    }

    /// The physical line of a record whose parsing starts at byte `start`: that is just
    /// past the previous record, so line ends right after it are skipped too.
    fn line_at(&mut self, start: u64) -> u64 {
        let mut next = start;
        while let Some(&mark) = self.marks.front() {
            let (at, is_lf) = (mark >> 1, mark & 1 == 1);
            if at >= start && at != next {
                break;
            }
            if at == next {
                next += 1;
            }
            self.marks.pop_front();
            // A CR counts unless an LF follows it (CRLF is one line end). The byte after
            // it was read already: the parser consumed past it to find this record.
            let crlf = !is_lf && self.marks.front() == Some(&(((at + 1) << 1) | 1));
            if !crlf {
                self.newlines += 1;
            }
        }
        self.newlines + 1
    }

    /// Reads the next record into `fields`; `None` at the end of the input.
    pub(crate) fn read(&mut self, fields: &mut Fields) -> io::Result<Option<RecordStart>> {
        use csv_core::ReadRecordResult as Result;
        let start = self.consumed;
        fields.count = 0;
        fields.data.resize(fields.data.len().max(1024), 0);
        fields.ends.resize(fields.ends.len().max(64), 0);
        let (mut out_len, mut ends_len) = (0usize, 0usize);
        let mut too_large: Option<usize> = None;
        // Quotes and line feeds the record spans: an odd count of quotes at the end of the
        // input, over several lines, is a quote that never closed.
        let (mut quotes, mut line_feeds) = (0usize, 0usize);
        loop {
            if self.position == self.filled && !self.at_eof {
                self.refill()?;
            }
            let input = &self.buffer[self.position..self.filled];
            let (result, read, written, ended) = self.core.read_record(
                input,
                &mut fields.data[out_len..],
                &mut fields.ends[ends_len..],
            );
            quotes += memchr::memchr_iter(b'"', &input[..read]).count();
            line_feeds += memchr::memchr_iter(b'\n', &input[..read]).count();
            self.position += read;
            self.consumed += read as u64;
            out_len += written;
            ends_len += ended;
            match result {
                Result::InputEmpty => continue,
                Result::OutputFull if fields.data.len() < MAX_RECORD_BYTES => {
                    let grown = (fields.data.len() * 2).min(MAX_RECORD_BYTES);
                    fields.data.resize(grown, 0);
                }
                Result::OutputEndsFull if fields.ends.len() < MAX_FIELDS => {
                    let grown = (fields.ends.len() * 2).min(MAX_FIELDS);
                    fields.ends.resize(grown, 0);
                }
                // Past a limit: keep parsing to find the record's end, dropping its bytes.
                Result::OutputFull | Result::OutputEndsFull => {
                    too_large.get_or_insert(ends_len);
                    out_len = 0;
                    ends_len = 0;
                }
                Result::Record => {
                    let line = self.line_at(start);
                    let unclosed = self.at_eof && quotes % 2 == 1 && line_feeds > 0;
                    let kind = match too_large {
                        Some(field) => RecordKind::TooLarge { field },
                        None if unclosed => RecordKind::Unclosed {
                            field: ends_len.saturating_sub(1),
                        },
                        None => {
                            fields.count = ends_len;
                            RecordKind::Complete
                        }
                    };
                    return Ok(Some(RecordStart { line, kind }));
                }
                Result::End => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(data: &[u8]) -> Vec<(u64, Vec<String>)> {
        let mut reader = RecordReader::new(data, b',');
        let mut fields = Fields::default();
        let mut all = Vec::new();
        while let Some(start) = reader.read(&mut fields).unwrap() {
            let cells = fields
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            all.push((start.line, cells));
        }
        all
    }

    #[test]
    fn a_quote_never_closed_is_told_from_a_literal_quote() {
        let mut reader = RecordReader::new(&b"id,r\n1,\"open\n2,x\n3,y\n"[..], b',');
        let mut fields = Fields::default();
        assert!(reader.read(&mut fields).unwrap().is_some());
        let last = reader.read(&mut fields).unwrap().unwrap();
        assert_eq!(last.line, 2);
        assert_eq!(last.kind, RecordKind::Unclosed { field: 1 });
        assert_eq!(reader.read(&mut fields).unwrap(), None);
        // A quote inside an unquoted last field is a character, not an opening.
        let mut reader = RecordReader::new(&b"id,r\n1,bo\"t"[..], b',');
        reader.read(&mut fields).unwrap();
        assert_eq!(
            reader.read(&mut fields).unwrap().unwrap().kind,
            RecordKind::Complete
        );
    }

    #[test]
    fn fields_and_lines() {
        assert_eq!(
            records(b"\xEF\xBB\xBFa,b\r\n1,\"x,\"\"y\"\"\"\r\n\r\n2,\"p\nq\"\n3,z"),
            vec![
                (1, vec!["a".into(), "b".into()]),
                (2, vec!["1".into(), "x,\"y\"".into()]),
                (4, vec!["2".into(), "p\nq".into()]),
                (6, vec!["3".into(), "z".into()]),
            ]
        );
    }

    #[test]
    fn a_huge_field_is_skipped_not_buffered() {
        let mut data = b"a,b\n1,".to_vec();
        data.extend(std::iter::repeat_n(b'x', 3 * MAX_RECORD_BYTES));
        data.extend(b"\n2,ok\n");
        let mut reader = RecordReader::new(data.as_slice(), b',');
        let mut fields = Fields::default();
        reader.read(&mut fields).unwrap();
        let start = reader.read(&mut fields).unwrap().unwrap();
        assert_eq!(start.kind, RecordKind::TooLarge { field: 1 });
        assert_eq!(start.line, 2);
        assert!(fields.data.capacity() <= MAX_RECORD_BYTES * 2);
        let next = reader.read(&mut fields).unwrap().unwrap();
        assert_eq!((next.line, next.kind), (3, RecordKind::Complete));
        assert_eq!(fields.get(1), Some(&b"ok"[..]));
    }

    #[test]
    fn an_unclosed_quote_swallows_the_rest_as_one_record() {
        let all = records(b"a,b\n1,\"open\n2,x\n");
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].0, 2);
    }
}
