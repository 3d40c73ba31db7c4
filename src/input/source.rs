//! The input snapshot: the bytes every read of the input goes over.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::encoding::{AlreadyUtf8, Encoding, NotText, Transcoder};
use super::records::Records;
use super::sheet::{has_signature, read_sheet, Sheet, SIGNATURE_LEN};
use super::sniff::sniff_delimiter;
use super::{InputError, InputOptions, InputSource, RowReader};
use crate::model::Lookup;

/// A private copy of the input is refused past this size by default: 1 GiB is ten times
/// a million-row file, and far less than a disk.
pub(crate) const DEFAULT_MAX_COPY_MIB: u64 = 1024;
/// While copying, the free space of the temporary directory is checked this often...
const FREE_SPACE_CHECK_EVERY: u64 = 64 * 1024 * 1024;
/// ...and the copy stops when less than this would be left.
const MIN_FREE_BYTES: u64 = 256 * 1024 * 1024;

/// How the input is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// A private copy (apply, plan): every read and the recorded SHA-256 see the same
    /// bytes even if the file is edited during the run.
    Copy,
    /// A regular file is read where it is (validate): nothing is copied.
    InPlace,
}

/// The input every read goes over: a regular file read in place (`validate`), or a private
/// copy in an anonymous, owner-only temporary file, hashed on the way, bounded in size
/// so that an endless input (`/dev/zero`, `yes | ...`) cannot fill the disk.
pub(crate) struct InputFile {
    snapshot: File,
    path: String,
    sha256: String,
    lines: u64,
    /// A spreadsheet input, read whole: its rows are the records.
    sheet: Option<Arc<Sheet>>,
    /// Set once the header's place was logged: every read finds it.
    header_logged: Arc<std::sync::atomic::AtomicBool>,
}

impl InputFile {
    pub(crate) fn open(options: &InputOptions, access: Access) -> Result<Self, InputError> {
        let (source, max_copy_mib, encoding) =
            (&options.source, options.max_copy_mib, options.encoding);
        let limit = max_copy_mib.saturating_mul(1024 * 1024);
        let file_path = match source {
            InputSource::File(file_path) => file_path,
            InputSource::Stdin => return Self::open_stdin(options, limit),
            InputSource::None => return Self::open_empty(options),
        };
        let path = file_path.display().to_string();
        let io_error = |source| InputError::Io {
            path: path.clone(),
            source,
        };
        let mut file = File::open(file_path).map_err(io_error)?;
        // A workbook is known by its first bytes, whatever its name.
        if starts_a_workbook(&file) {
            return Self::open_sheet(file, path, options, limit);
        }
        let regular = file.metadata().map_err(io_error)?.is_file();
        // Read in place only what needs no decoding: UTF-8, validated on the way.
        let (snapshot, sha256, lines) =
            if access == Access::InPlace && regular && is_utf8(&file, encoding) {
                let (sha256, lines) =
                    Self::digest(&mut file).map_err(|e| Self::copy_error(e, &path, encoding))?;
                (file, sha256, lines)
            } else {
                Self::snapshot(&mut file, limit, encoding)
                    .map_err(|e| Self::copy_error(e, &path, encoding))?
            };
        Ok(Self {
            snapshot,
            path: source.display(),
            sha256,
            lines,
            sheet: None,
            header_logged: Arc::default(),
        })
    }

    /// No input file (`--rules` alone): a header and no rows.
    fn open_empty(options: &InputOptions) -> Result<Self, InputError> {
        let path = options.source.display();
        let (snapshot, sha256, lines) = Self::snapshot(
            &mut &b"id,serviceAccount,serviceAccountReason\n"[..],
            u64::MAX,
            None,
        )
        .map_err(|e| Self::copy_error(e, &path, None))?;
        Ok(Self {
            snapshot,
            path,
            sha256,
            lines,
            sheet: None,
            header_logged: Arc::default(),
        })
    }

    /// Standard input: a workbook when its first bytes say so (spooled as it is), else
    /// text, copied and decoded like a file.
    fn open_stdin(options: &InputOptions, limit: u64) -> Result<Self, InputError> {
        let path = "standard input";
        let encoding = options.encoding;
        let mut stdin = io::stdin().lock();
        let mut start = [0u8; SIGNATURE_LEN];
        let filled =
            read_up_to(&mut stdin, &mut start).map_err(|e| Self::copy_error(e, path, encoding))?;
        let mut whole = (&start[..filled]).chain(stdin);
        if has_signature(&start[..filled]) {
            let mut spool = tempfile::tempfile().map_err(|e| Self::copy_error(e, path, None))?;
            let copied = io::copy(&mut (&mut whole).take(limit.saturating_add(1)), &mut spool)
                .map_err(|e| Self::copy_error(e, path, None))?;
            if copied > limit {
                let too_large = io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    format!("it is larger than {} MiB", limit / (1024 * 1024)),
                );
                return Err(Self::copy_error(too_large, path, None));
            }
            return Self::open_sheet(spool, path.to_owned(), options, limit);
        }
        let (snapshot, sha256, lines) = Self::snapshot(&mut whole, limit, encoding)
            .map_err(|e| Self::copy_error(e, path, encoding))?;
        Ok(Self {
            snapshot,
            path: options.source.display(),
            sha256,
            lines,
            sheet: None,
            header_logged: Arc::default(),
        })
    }

    /// A workbook: its sheet read whole (a zip is read at once anyway), the file kept
    /// for its digest.
    fn open_sheet(
        mut file: File,
        shown: String,
        options: &InputOptions,
        limit: u64,
    ) -> Result<Self, InputError> {
        let sheet = read_sheet(&file, options.sheet.as_deref(), limit).map_err(|source| {
            InputError::Sheet {
                path: shown.clone(),
                source,
            }
        })?;
        let io_error = |source| InputError::Io {
            path: shown.clone(),
            source,
        };
        file.rewind().map_err(io_error)?;
        let sha256 = crate::text::sha256_reader(&mut file).map_err(io_error)?;
        tracing::debug!(sheet = %sheet.name, rows = sheet.rows.len(), "read the spreadsheet");
        Ok(Self {
            snapshot: file,
            lines: sheet.rows.last().map_or(1, |row| row.line),
            path: shown,
            sha256,
            sheet: Some(Arc::new(sheet)),
            header_logged: Arc::default(),
        })
    }

    fn copy_error(error: io::Error, path: &str, declared: Option<Encoding>) -> InputError {
        if error.kind() == io::ErrorKind::InvalidData {
            if error.get_ref().is_some_and(|e| e.is::<AlreadyUtf8>()) {
                return InputError::AlreadyUtf8 {
                    path: path.to_owned(),
                };
            }
            if let Some(not_text) = error.get_ref().and_then(|e| e.downcast_ref::<NotText>()) {
                return InputError::NotText {
                    path: path.to_owned(),
                    line: not_text.line,
                    encoding: not_text.encoding,
                    declared: declared.is_some(),
                };
            }
        }
        match error.kind() {
            io::ErrorKind::FileTooLarge | io::ErrorKind::StorageFull => InputError::CopyRefused {
                path: path.to_owned(),
                why: error.to_string(),
                dir: std::env::temp_dir().display().to_string(),
            },
            _ => InputError::Io {
                path: path.to_owned(),
                source: error,
            },
        }
    }

    /// Wraps already-readable bytes (tests, fuzzing), decoded as Windows-1252 so that
    /// every byte sequence reaches the CSV reader.
    pub(crate) fn from_reader(reader: &mut impl Read, path: &str) -> io::Result<Self> {
        let (snapshot, sha256, lines) =
            Self::snapshot(reader, u64::MAX, Some(Encoding::Windows1252))?;
        Ok(Self {
            snapshot,
            path: path.to_owned(),
            sha256,
            lines,
            sheet: None,
            header_logged: Arc::default(),
        })
    }

    /// Hashes and counts the lines of a file read in place, then rewinds nothing: every
    /// read uses positioned reads.
    fn digest(file: &mut File) -> io::Result<(String, u64)> {
        let mut sink = io::sink();
        let (sha256, lines) = copy_counted(file, &mut sink, u64::MAX, None)?;
        Ok((sha256, lines))
    }

    fn snapshot(
        source: &mut impl Read,
        limit: u64,
        encoding: Option<Encoding>,
    ) -> io::Result<(File, String, u64)> {
        // Buffered: the transcoder writes in pieces.
        let mut spool = io::BufWriter::new(tempfile::tempfile()?);
        let (sha256, lines) = copy_counted(source, &mut spool, limit, encoding)?;
        let spool = spool.into_inner().map_err(io::IntoInnerError::into_error)?;
        Ok((spool, sha256, lines))
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Physical lines in the input (LFs plus one).
    pub(crate) fn line_count(&self) -> u64 {
        self.lines
    }

    /// SHA-256 of the input bytes, hex.
    pub(crate) fn sha256(&self) -> &str {
        &self.sha256
    }

    /// A reader from the start of the input, independent of any other reader. Rows
    /// named by username or email are resolved through `lookup` when there is one.
    pub(crate) fn reader(
        &self,
        options: &InputOptions,
        lookup: Option<Arc<dyn Lookup>>,
    ) -> Result<RowReader<SnapshotReader>, InputError> {
        let file = self.snapshot.try_clone().map_err(|source| InputError::Io {
            path: self.path.clone(),
            source,
        })?;
        if let Some(sheet) = &self.sheet {
            let records = Records::Sheet {
                sheet: Arc::clone(sheet),
                next: 0,
            };
            let mut reader = RowReader::from_records(records, options, &self.path)?;
            reader.lookup = lookup;
            self.log_header(&reader);
            return Ok(reader);
        }
        let sniffed;
        let options = match options.delimiter {
            Some(_) => options,
            None => {
                let delimiter = self.sniff(&file)?;
                sniffed = InputOptions {
                    delimiter: Some(delimiter),
                    ..options.clone()
                };
                &sniffed
            }
        };
        let mut reader = RowReader::new(SnapshotReader { file, offset: 0 }, options, &self.path)?;
        reader.lookup = lookup;
        self.log_header(&reader);
        Ok(reader)
    }

    /// Names the title rows skipped above the header, once for every read.
    fn log_header<R: Read>(&self, reader: &RowReader<R>) {
        let (line, title_rows) = reader.header_place();
        if title_rows.is_empty() || self.header_logged.swap(true, Ordering::Relaxed) {
            return;
        }
        let skipped: Vec<String> = title_rows.iter().map(u64::to_string).collect();
        tracing::info!(
            "the header is on line {line}; skipped the rows above it: line {}",
            skipped.join(", ")
        );
    }
}

/// True when the file starts with a workbook's signature (zip or OLE).
fn starts_a_workbook(file: &File) -> bool {
    let mut start = [0u8; SIGNATURE_LEN];
    let read = read_at_start(file, &mut start);
    has_signature(&start[..read])
}

/// Reads the first bytes of `file` without moving its offset (positioned reads on every
/// platform); 0 when it cannot be read, so the caller sees no signature.
fn read_at_start(file: &File, start: &mut [u8]) -> usize {
    #[cfg(unix)]
    let read = std::os::unix::fs::FileExt::read_at(file, start, 0);
    #[cfg(windows)]
    let read = std::os::windows::fs::FileExt::seek_read(file, start, 0);
    read.unwrap_or(0)
}

/// Reads until `buffer` is full or the input ends; how many bytes were read.
fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// True when the file needs no decoding: no encoding but UTF-8 declared, and no UTF-16
/// byte-order mark at its start.
fn is_utf8(file: &File, declared: Option<Encoding>) -> bool {
    if declared.is_some_and(|e| e != Encoding::Utf8) {
        return false;
    }
    let mut start = [0u8; 2];
    let read = read_at_start(file, &mut start);
    !(read == 2 && matches!(start, [0xff, 0xfe] | [0xfe, 0xff]))
}

/// Copies `source` into `out` up to `limit` bytes, hashing and counting lines (LFs plus
/// one) on the way; checks the free space of the temporary directory as it goes.
fn copy_counted(
    source: &mut impl Read,
    out: &mut impl io::Write,
    limit: u64,
    encoding: Option<Encoding>,
) -> io::Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut transcoder = Transcoder::new(encoding);
    let mut buffer = vec![0u8; 256 * 1024];
    let (mut copied, mut next_check) = (0u64, FREE_SPACE_CHECK_EVERY);
    loop {
        let n = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        copied += n as u64;
        if copied > limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("it is larger than {} MiB", limit / (1024 * 1024)),
            ));
        }
        if copied >= next_check && limit != u64::MAX {
            next_check += FREE_SPACE_CHECK_EVERY;
            if free_bytes(&std::env::temp_dir()).is_some_and(|free| free < MIN_FREE_BYTES) {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "the disk of the temporary copy is nearly full",
                ));
            }
        }
        hasher.update(&buffer[..n]);
        transcoder.feed(&buffer[..n], false, out)?;
    }
    transcoder.feed(&[], true, out)?;
    Ok((crate::text::hex(hasher), transcoder.lines()))
}

/// Free bytes for an unprivileged user on the file system of `dir`.
#[cfg(unix)]
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let stats = rustix::fs::statvfs(dir).ok()?;
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// Not measured on Windows (std has no call for it): a full disk fails the copy's write
/// instead, with the system's message.
#[cfg(not(unix))]
fn free_bytes(_dir: &std::path::Path) -> Option<u64> {
    None
}

/// A lock held on the input file for as long as a run applies it, so that a second run
/// on the same file is refused instead of sending every row twice. `File::try_lock`:
/// `flock` on Unix (advisory), `LockFileEx` on Windows (mandatory: other programs cannot
/// read the file while a run holds it); the system releases it when the process ends,
/// however it ends.
#[derive(Debug)]
pub(crate) struct InputLock {
    _file: File,
}

/// Takes the lock on a file input; standard input has nothing to lock.
pub(crate) fn lock(source: &InputSource) -> Result<Option<InputLock>, InputError> {
    let InputSource::File(path) = source else {
        return Ok(None);
    };
    let io = |source| InputError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(InputError::InUse {
                path: path.display().to_string(),
            })
        }
        Err(std::fs::TryLockError::Error(error)) => return Err(io(error)),
    }
    Ok(Some(InputLock { _file: file }))
}

impl InputFile {
    /// The delimiter the header uses (from its first 64 KiB).
    fn sniff(&self, file: &File) -> Result<u8, InputError> {
        let mut start = vec![0u8; 64 * 1024];
        let mut reader = SnapshotReader {
            file: file.try_clone().map_err(|source| InputError::Io {
                path: self.path.clone(),
                source,
            })?,
            offset: 0,
        };
        let mut filled = 0;
        while filled < start.len() {
            match reader.read(&mut start[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(InputError::Io {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
        sniff_delimiter(&start[..filled]).map_err(|source| InputError::Delimiter {
            path: self.path.clone(),
            source,
        })
    }
}

/// Reads the snapshot with positioned reads, so readers never share a file offset.
pub(crate) struct SnapshotReader {
    file: File,
    offset: u64,
}

impl Read for SnapshotReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(&self.file, buf, self.offset)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(&self.file, buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;

    #[test]
    fn free_bytes_are_read_where_a_directory_is_and_not_where_none_is() {
        assert!(free_bytes(&std::env::temp_dir()).is_some());
        assert_eq!(free_bytes(std::path::Path::new("/no/such/directory")), None);
    }
}
