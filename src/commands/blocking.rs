//! Reading a file an option names (`--rules`, `--token-file`, `--resume-from`) so that a
//! signal is still heard. The path may be a FIFO (`--token-file <(pass show drata)`) whose
//! writer never comes, or a terminal: read on the runtime's one thread, it blocked the
//! signal handler too, and only SIGKILL ended the process. Each reader bounds what it reads
//! (its cap is in its module); this bounds how long a signal waits.

use std::path::{Path, PathBuf};

use crate::engine::RunControl;
use crate::error::Error;
use crate::exit;
use crate::input::rules::RuleSet;
use crate::model::StopReason;

/// The rules file of `--rules`, when given, read and checked so that a signal is heard.
pub(super) async fn rules_unless_stopped(
    control: &RunControl,
    path: Option<&Path>,
) -> Result<Option<RuleSet>, Error> {
    let Some(path) = path else {
        return Ok(None);
    };
    let file = path.to_owned();
    let load = move || RuleSet::load(&file);
    read_unless_stopped(control, "the rules file", path, load)
        .await
        .map(Some)
}

/// Runs `read` on a thread of its own and waits for it, or for the run to be stopped,
/// whichever comes first: a signal then ends the command at once with the signal's exit
/// code. `what` and `path` name the file in the log and the error. The thread is not joined:
/// left blocked in a read, it ends with the process.
pub(super) async fn read_unless_stopped<T, E>(
    control: &RunControl,
    what: &'static str,
    path: &Path,
    read: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, Error>
where
    T: Send + 'static,
    E: Send + 'static,
    Error: From<E>,
{
    tracing::debug!(file = %path.display(), "reading {what}");
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let reader = std::thread::Builder::new()
        .name("read-option-file".to_owned())
        .spawn(move || {
            // A panic reaches the waiting task, which raises it again.
            let _ = sender.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)));
        });
    // Out of threads, the process could not go on for long anyway.
    reader.map_err(Error::Runtime)?;
    tokio::select! {
        biased;
        () = control.stopped() => interrupted(control, what, path),
        read = receiver => match read {
            Ok(Ok(result)) => result.map_err(Error::from),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // The thread ended without a word: only a stop can explain it.
            Err(_) => interrupted(control, what, path),
        },
    }
}

/// The error of a command stopped while `what` was read.
fn interrupted<T>(control: &RunControl, what: &'static str, path: &Path) -> Result<T, Error> {
    let code = match control.reason() {
        Some(StopReason::Interrupted(signal)) => exit::for_signal(signal),
        _ => exit::INTERRUPTED,
    };
    Err(Error::Interrupted {
        what,
        path: PathBuf::from(path),
        code,
    })
}
