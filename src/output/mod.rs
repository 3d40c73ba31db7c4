//! Everything the tool writes: the report, progress, the undo file, the summary, the
//! evidence record, the plan's diff, and the private files they go to. Files are laid out
//! and written here and nowhere else; the words they hold that belong to a value (an
//! outcome's word, why a run stopped) come with it from `model`, and an error's message
//! with its error.

mod evidence;
mod export;
mod files;
mod plan;
mod progress;
mod report;
mod summary;
mod undo;

pub(crate) use evidence::{EvidenceRecorder, RunContext};
pub(crate) use export::{write_csv, xlsx_bytes, ExportRow};
pub(crate) use files::{same_file, CreatedFile, Sink};
pub(crate) use plan::{
    column_mapping_line, print_changes, print_divergences, write_changes_json, Change, CurrentView,
    ExportAge, CHANGES_SHOWN,
};
pub(crate) use progress::{Progress, ProgressMode};
pub(crate) use report::{rewrite_checked, ReportWriter};
pub(crate) use summary::{counts, FileDigest, Summary};
pub(crate) use undo::{UndoWriter, UNDO_HEADER};
