//! The input snapshot: the bytes both passes read.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

use super::{InputError, InputOptions, InputSource, RowReader};
use crate::model::Lookup;

/// A private snapshot of the input: copied once into an anonymous, owner-only temporary
/// file (hashing it on the way), so that both passes and the recorded SHA-256 see the
/// same bytes even if the original is edited during the run, and standard input can be
/// read twice.
pub(crate) struct InputFile {
    snapshot: File,
    path: String,
    sha256: String,
    lines: u64,
}

impl InputFile {
    pub(crate) fn open(source: &InputSource) -> Result<Self, InputError> {
        let path = match source {
            InputSource::Stdin => "standard input".to_owned(),
            InputSource::File(p) => p.display().to_string(),
        };
        let result = match source {
            InputSource::File(p) => File::open(p).and_then(|mut file| Self::snapshot(&mut file)),
            InputSource::Stdin => Self::snapshot(&mut io::stdin().lock()),
        };
        let (snapshot, sha256, lines) = result.map_err(|source| InputError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            snapshot,
            path: source.display(),
            sha256,
            lines,
        })
    }

    /// Wraps already-readable bytes (tests, fuzzing).
    pub(crate) fn from_reader(reader: &mut impl Read, path: &str) -> io::Result<Self> {
        let (snapshot, sha256, lines) = Self::snapshot(reader)?;
        Ok(Self {
            snapshot,
            path: path.to_owned(),
            sha256,
            lines,
        })
    }

    fn snapshot(source: &mut impl Read) -> io::Result<(File, String, u64)> {
        use sha2::{Digest, Sha256};
        let mut spool = tempfile::tempfile()?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 256 * 1024];
        let mut lines = 1;
        loop {
            let n = match source.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buffer[..n]);
            lines += memchr::memchr_iter(b'\n', &buffer[..n]).count() as u64;
            io::Write::write_all(&mut spool, &buffer[..n])?;
        }
        let digest = crate::text::hex(hasher);
        Ok((spool, digest, lines))
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
        let mut reader = RowReader::new(SnapshotReader { file, offset: 0 }, options, &self.path)?;
        reader.lookup = lookup;
        Ok(reader)
    }
}

/// A lock held on the input file for as long as a run applies it, so that a second run
/// on the same file is refused instead of sending every row twice. Advisory (`flock`):
/// the kernel releases it when the process ends, however it ends.
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
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for the duration of the call; flock has no
        // other precondition.
        let status = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if status != 0 {
            let error = io::Error::last_os_error();
            return Err(if error.kind() == io::ErrorKind::WouldBlock {
                InputError::InUse {
                    path: path.display().to_string(),
                }
            } else {
                io(error)
            });
        }
    }
    Ok(Some(InputLock { _file: file }))
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
