//! Standard output as the console writes it: a leaf that imports nothing of `output`, so
//! that the console, which hands it out, and the files written to `-` share it without
//! importing each other.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once standard output's reader has gone (`| head`). A reader that stopped reading
/// has what it wanted: the rest is dropped, and no command fails for it. One flag for the
/// process, as standard output is one.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Standard output as the console writes it: once its reader has gone, what follows is
/// dropped instead of failing. Each write takes the lock for itself, so a writer kept
/// for long (the summary's `-`) never holds it; buffer bulk writes.
#[derive(Debug)]
pub(crate) struct Stdout;

/// A closed pipe ends standard output quietly; any other failure is the writer's to report.
fn quiet_if_closed(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            if !STDOUT_CLOSED.swap(true, Ordering::Relaxed) {
                tracing::debug!("standard output is closed; the rest is not written");
            }
            Ok(())
        }
        other => other,
    }
}

impl Write for Stdout {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if STDOUT_CLOSED.load(Ordering::Relaxed) {
            return Ok(bytes.len());
        }
        match io::stdout().lock().write(bytes) {
            Err(e) => quiet_if_closed(Err(e)).map(|()| bytes.len()),
            written => written,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if STDOUT_CLOSED.load(Ordering::Relaxed) {
            return Ok(());
        }
        quiet_if_closed(io::stdout().lock().flush())
    }
}
