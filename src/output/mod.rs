//! Everything the tool writes: the report, progress, the undo file, the summary, the
//! evidence record, the plan, the export, and the private files they go to. Text for
//! humans and cells for files are made here and nowhere else, and the console is the one
//! writer of standard output (through the writer it hands out, `stdout.rs`) and of
//! standard error.

mod console;
mod evidence;
mod export;
mod files;
mod journal;
mod plan;
mod progress;
mod report;
mod stdout;
mod summary;
mod undo;

pub use console::Console;
pub(crate) use console::{InvalidRows, RowProblem};
pub(crate) use evidence::{EvidenceFormat, EvidenceRecorder, RunContext};
pub(crate) use export::{write_csv, xlsx_bytes, ExportLayout, ExportRow};
pub(crate) use files::{same_file, CreatedFile, OutputLock, Sink};
pub(crate) use journal::{journal_path, Journal};
pub(crate) use plan::{
    column_mapping_line, AccessChange, Change, CurrentView, ExportAge, LinkChange, PlanView,
    CHANGES_SHOWN,
};
pub(crate) use progress::Progress;
pub(crate) use report::{checked_key, rewrite_checked, ReportWriter};
pub(crate) use summary::{counts, FileDigest, Summary};
pub(crate) use undo::{undo_header, EarlierUndo, UndoColumns, UndoWriter};
