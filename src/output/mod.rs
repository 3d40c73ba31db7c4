//! Everything the tool writes: the report, progress, the undo file, the summary, the
//! evidence record, the plan's diff, and the private files they go to. Text for humans
//! and cells for files are made here and nowhere else.

mod evidence;
mod files;
mod plan;
mod progress;
mod report;
mod summary;
mod undo;

pub(crate) use evidence::{EvidenceRecorder, RunContext};
pub(crate) use files::CreatedFile;
pub(crate) use plan::{print_changes, Change, CurrentView, CHANGES_SHOWN};
pub(crate) use progress::{Live, Progress, ProgressMode};
pub(crate) use report::ReportWriter;
pub(crate) use summary::{counts, ConcurrencyFigures, FileDigest, LatencyFigures, Summary};
pub(crate) use undo::UndoWriter;
