//! Output files: created readable by their owner only, never through a symlink, never
//! over an existing file without `--force`, and removed again when the run cannot start.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::stdout::Stdout;

/// What stands at a path, in words, when it is not a regular file.
fn not_regular(meta: &std::fs::Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
        if kind.is_char_device() || kind.is_block_device() {
            return Some("a device");
        }
    }
    Some(if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "something other than a regular file"
    })
}

/// Creates a file readable by its owner only. Only a regular file is ever replaced, and
/// only with `force`: a symlink, a FIFO, a device or a directory at `path` is refused
/// even then, and a symlink is never followed. On Windows the file takes the access list
/// its folder passes on (in a user's profile: that user, SYSTEM and Administrators), and
/// `create_new` refuses any name that exists, a link included.
pub(crate) fn create_private_file(path: &Path, force: bool) -> io::Result<File> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            if let Some(what) = not_regular(&meta) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{what} is in the way; only a regular file is ever replaced, even with --force"),
                ));
            }
            if !force {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "the file exists (pass --force to replace it)",
                ));
            }
            std::fs::remove_file(path)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// True when both paths name the same existing file.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        #[cfg(unix)]
        (Ok(a), Ok(b)) => {
            use std::os::unix::fs::MetadataExt;
            a.dev() == b.dev() && a.ino() == b.ino()
        }
        // Windows: std has no stable file id; the same canonical path is the same file
        // (two hard links to one file are not recognised).
        #[cfg(not(unix))]
        (Ok(_), Ok(_)) => matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(a), Ok(b)) if a == b
        ),
        _ => false,
    }
}

/// Where a summary or an evidence record goes: a private file, or standard output (`-`)
/// as the console writes it.
#[derive(Debug)]
pub(crate) enum Sink {
    File(File),
    /// Written beside its final name and renamed to it by [`Sink::finish`].
    Staged(CreatedFile),
    Stdout,
}

impl io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(file) => file.write(bytes),
            Sink::Staged(created) => created.file()?.write(bytes),
            Sink::Stdout => Stdout.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(file) => file.flush(),
            Sink::Staged(created) => created.file()?.flush(),
            Sink::Stdout => Stdout.flush(),
        }
    }
}

impl Sink {
    /// Flushes, and hands a file to the disk; a staged file then takes its final name.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        use std::io::Write;
        self.flush()?;
        match self {
            Sink::File(file) => file.sync_all(),
            Sink::Staged(mut created) => {
                created.file()?.sync_all()?;
                created.keep().map(drop)
            }
            Sink::Stdout => Ok(()),
        }
    }
}

/// The default report name: `<input stem>.report.<UTC timestamp>.csv`.
pub(crate) fn default_report_path(stem: &str, now: SystemTime) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(now)
        .to_string()
        .replace(['-', ':'], "");
    PathBuf::from(format!("{stem}.report.{stamp}.csv"))
}

/// Creates the default report; when a run in the same second took that name, the
/// next free `…-2.csv`, `…-3.csv` is used instead of failing or overwriting.
pub(crate) fn create_default_report(stem: &str, now: SystemTime) -> io::Result<(PathBuf, File)> {
    let first = default_report_path(stem, now);
    let base = first.to_string_lossy().trim_end_matches(".csv").to_owned();
    let mut last_error = None;
    for n in 1..=100 {
        let path = if n == 1 {
            first.clone()
        } else {
            PathBuf::from(format!("{base}-{n}.csv"))
        };
        match create_private_file(&path, false) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free report name")))
}

/// A file this run created: removed again on drop unless [`CreatedFile::keep`] was
/// called, so that a run that cannot start leaves no half-made output behind.
#[derive(Debug)]
pub(crate) struct CreatedFile {
    path: PathBuf,
    file: Option<File>,
    /// The temporary file written instead of `path`, renamed to it by `keep`: a file
    /// written whole at the end never shows half-made under its final name.
    staged: Option<Staged>,
}

#[derive(Debug)]
struct Staged {
    temporary: PathBuf,
    force: bool,
}

impl CreatedFile {
    /// True when this is standard output's `-`.
    pub(crate) fn is_stdout(path: &Path) -> bool {
        path.as_os_str() == "-"
    }

    /// Creates `path` as [`create_private_file`] does.
    pub(crate) fn create(path: &Path, force: bool) -> io::Result<Self> {
        let file = create_private_file(path, force)?;
        Ok(Self {
            path: path.to_owned(),
            file: Some(file),
            staged: None,
        })
    }

    /// Checks `path` as [`create_private_file`] does, then writes a private temporary
    /// file beside it (`.NAME.PID.part`), renamed to `path` by [`CreatedFile::keep`]:
    /// killed before, the run leaves nothing under the final name, and a rerun needs no
    /// `--force`.
    pub(crate) fn staged(path: &Path, force: bool) -> io::Result<Self> {
        // The same refusals as creating it in place; an old file stays until the end.
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if let Some(what) = not_regular(&meta) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{what} is in the way; only a regular file is ever replaced, even with --force"),
                ));
            }
            if !force {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "the file exists (pass --force to replace it)",
                ));
            }
        }
        let name = path
            .file_name()
            .unwrap_or(path.as_os_str())
            .to_string_lossy();
        let temporary = path.with_file_name(format!(".{name}.{}.part", std::process::id()));
        let file = create_private_file(&temporary, true)?;
        Ok(Self {
            path: path.to_owned(),
            file: Some(file),
            staged: Some(Staged { temporary, force }),
        })
    }

    /// Creates the default report in the current directory.
    pub(crate) fn default_report(stem: &str, now: SystemTime) -> io::Result<Self> {
        let (path, file) = create_default_report(stem, now)?;
        Ok(Self {
            path,
            file: Some(file),
            staged: None,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file, to write to while it is still removed on drop.
    pub(crate) fn file(&mut self) -> io::Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("the file was already handed out"))
    }

    /// The file, which stays on disk from now on.
    pub(crate) fn keep(mut self) -> io::Result<File> {
        if let Some(staged) = &self.staged {
            if staged.force {
                std::fs::rename(&staged.temporary, &self.path)?;
            } else {
                // A link fails when a file appeared at the final name meanwhile.
                std::fs::hard_link(&staged.temporary, &self.path)?;
                std::fs::remove_file(&staged.temporary)?;
            }
            self.staged = None;
        }
        // `keep` consumes the guard, so the file is always still there.
        self.file
            .take()
            .ok_or_else(|| io::Error::other("the file was already handed out"))
    }
}

impl Drop for CreatedFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let written = self.staged.as_ref().map_or(&self.path, |s| &s.temporary);
            let _ = std::fs::remove_file(written);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_report_names_carry_a_utc_stamp() {
        let at = httpdate::parse_http_date("Sun, 29 Nov 2026 01:06:17 GMT").unwrap();
        assert_eq!(
            default_report_path("review", at),
            PathBuf::from("review.report.20261129T010617Z.csv")
        );
    }

    #[test]
    fn a_created_file_is_removed_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dropped = dir.path().join("dropped.csv");
        drop(CreatedFile::create(&dropped, false).unwrap());
        assert!(!dropped.exists());
        let kept = dir.path().join("kept.csv");
        let _file = CreatedFile::create(&kept, false).unwrap().keep().unwrap();
        assert!(kept.exists());
        assert!(
            CreatedFile::create(&kept, false).is_err(),
            "never replaced without --force"
        );
    }
}

/// An output's path held for the run: a second run naming the same report, undo file,
/// evidence or summary is refused before it sends anything, `--force` included, as a
/// second run on the same input is. The lock is a lock file beside the output
/// (`.NAME.drata-svcacct-lock`, mode 0600, removed when the run ends); the operating system
/// releases it when the process ends however it ends, so a killed run leaves no stale lock.
#[derive(Debug)]
pub(crate) struct OutputLock {
    path: PathBuf,
    _file: File,
}

impl OutputLock {
    /// Takes the lock of `output`; `None` for standard output. An error of kind
    /// `WouldBlock` when another run holds it.
    pub(crate) fn acquire(output: &Path) -> io::Result<Option<Self>> {
        if CreatedFile::is_stdout(output) {
            return Ok(None);
        }
        let name = output.file_name().unwrap_or(output.as_os_str());
        let folder = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !folder.is_dir() {
            // Nothing can be written there: the check of the outputs says so.
            return Ok(None);
        }
        let path = folder.join(format!(".{}.drata-svcacct-lock", name.to_string_lossy()));
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Never through a link someone put at the lock's name.
            options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        let file = options.open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { path, _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "another drata-svcacct run is writing it; nothing was sent: wait for that run to finish, or name another file",
            )),
            Err(std::fs::TryLockError::Error(error)) => Err(error),
        }
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Still held: a run that opens it now finds it gone or locked.
        let _ = std::fs::remove_file(&self.path);
    }
}
