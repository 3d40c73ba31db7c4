//! The output files of a run, created before anything is sent: all or nothing, never the
//! input, never two outputs on one path, `-` for standard output where it makes sense.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Run;
use crate::config::{resumed_name, Mode, RunConfig};
use crate::error::Error;
use crate::input::InputSource;
use crate::output::{
    journal_path, same_file, undo_header, CreatedFile, EarlierUndo, Journal, OutputLock,
    ReportWriter, Sink, UndoColumns,
};

/// The output files, created (0600, exclusively) before anything is sent.
pub(super) struct Files {
    /// The outputs' paths, held until the run ends.
    pub locks: Vec<OutputLock>,
    /// The journal of the requests (`apply`), beside the report.
    pub journal: Option<Arc<Journal>>,
    pub report_path: PathBuf,
    pub report: ReportWriter,
    pub summary: Option<Sink>,
    pub undo: Option<Undo>,
    pub evidence: Option<Sink>,
}

/// The undo file, new or an earlier run's to add to, and where it is.
pub(super) enum Undo {
    New(File, PathBuf),
    Append(File, PathBuf, EarlierUndo),
}

/// A file made and not yet kept, or standard output.
enum Pending {
    File(CreatedFile),
    Stdout,
}

impl Pending {
    fn keep(self) -> std::io::Result<Sink> {
        match self {
            Pending::File(file) => file.keep().map(Sink::File),
            Pending::Stdout => Ok(Sink::Stdout),
        }
    }

    /// A file written whole at the end (the summary, the evidence): it stays under its
    /// temporary name until [`Sink::finish`] renames it.
    fn staged(self) -> Sink {
        match self {
            Pending::File(file) => Sink::Staged(file),
            Pending::Stdout => Sink::Stdout,
        }
    }
}

fn output_error(what: &'static str, path: &Path, message: &str) -> Error {
    Error::Output {
        what,
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, message.to_owned()),
    }
}

/// Every output must be a path of its own, and none the input (compared as written and
/// as the file it names).
fn check_paths(config: &RunConfig) -> Result<(), Error> {
    let outputs = [
        ("report", &config.options.report),
        ("summary", &config.options.summary_json),
        ("undo file", &config.apply.undo),
        ("evidence file", &config.options.evidence),
    ];
    let given: Vec<(&'static str, &PathBuf)> = outputs
        .iter()
        .filter_map(|(what, path)| path.as_ref().map(|path| (*what, path)))
        .collect();
    let absolute =
        |path: &Path| lexical(&std::path::absolute(path).unwrap_or_else(|_| path.to_owned()));
    let to_stdout = given
        .iter()
        .filter(|(_, p)| CreatedFile::is_stdout(p))
        .count();
    if to_stdout > 1 || (to_stdout == 1 && config.plan.json) {
        return Err(output_error(
            "summary",
            Path::new("-"),
            "standard output holds one document: the summary, the evidence or plan --json",
        ));
    }
    for (i, (what, path)) in given.iter().enumerate() {
        if CreatedFile::is_stdout(path) && matches!(*what, "report" | "undo file") {
            return Err(output_error(
                what,
                path,
                "only --summary-json and --evidence can go to standard output",
            ));
        }
        if given[..i]
            .iter()
            .any(|(_, earlier)| absolute(earlier) == absolute(path))
        {
            return Err(output_error(
                what,
                path,
                "another output of this run has the same path",
            ));
        }
        if let InputSource::File(input) = &config.input.source {
            if absolute(input) == absolute(path) || same_file(input, path) {
                return Err(output_error(what, path, "it is the input file"));
            }
        }
    }
    Ok(())
}

/// Creates an output. A resumed run (`--resume-from`) whose file name is taken, by an
/// earlier run of the same printed command, takes the next free name instead of
/// failing: `x.resumed.csv`, then `x.resumed-2.csv`, ...
/// A path with `.` and `..` folded away, as written (links are compared as files).
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut folded = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                folded.pop();
            }
            other => folded.push(other),
        }
    }
    folded
}

fn create(config: &RunConfig, path: &Path, what: &'static str) -> Result<Pending, Error> {
    if CreatedFile::is_stdout(path) {
        return Ok(Pending::Stdout);
    }
    // The summary and the evidence are written whole at the end: beside their final
    // name until then, so that a run killed before leaves nothing half-made under it.
    let whole_at_the_end = matches!(what, "summary" | "evidence file");
    let mut candidate = path.to_owned();
    for _ in 0..100 {
        let created = if whole_at_the_end {
            CreatedFile::staged(&candidate, config.options.force)
        } else {
            CreatedFile::create(&candidate, config.options.force)
        };
        match created {
            Ok(file) => return Ok(Pending::File(file)),
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists
                    && config.apply.resume_from.is_some()
                    && is_resumed_name(&candidate)
                    && std::fs::symlink_metadata(&candidate).is_ok_and(|m| m.is_file()) =>
            {
                candidate = resumed_name(&candidate);
            }
            Err(source) => {
                return Err(Error::Output {
                    what,
                    path: candidate,
                    source,
                })
            }
        }
    }
    Err(output_error(
        what,
        path,
        "no free name for a resumed run's file",
    ))
}

/// True for the names the printed resume command gives (`x.resumed.csv`,
/// `x.resumed-2.csv`): only those move to the next free name; a name the user chose is
/// never silently changed.
fn is_resumed_name(path: &Path) -> bool {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .and_then(|stem| stem.rsplit_once(".resumed"))
        .is_some_and(|(_, count)| {
            count.is_empty()
                || count
                    .strip_prefix('-')
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Refuses, before anything is created or replaced, an output whose folder is missing:
/// with `--force`, creating one file replaces it, and a later failure would leave the
/// old one lost.
fn check_folders(config: &RunConfig) -> Result<(), Error> {
    let outputs = [
        ("report", &config.options.report),
        ("summary", &config.options.summary_json),
        ("undo file", &config.apply.undo),
        ("evidence file", &config.options.evidence),
    ];
    for (what, path) in outputs {
        let Some(path) = path.as_ref().filter(|p| !CreatedFile::is_stdout(p)) else {
            continue;
        };
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(output_error(what, path, "its folder does not exist"));
        }
    }
    Ok(())
}

/// The journal of an `apply` beside its report (`NAME.journal.jsonl`).
fn create_journal(config: &RunConfig, report: &Path) -> Result<Option<Arc<Journal>>, Error> {
    if config.mode != Mode::Apply || CreatedFile::is_stdout(report) {
        return Ok(None);
    }
    let path = journal_path(report);
    match Journal::create(&path, config.options.force) {
        Ok(journal) => Ok(Some(Arc::new(journal))),
        Err(source) => Err(Error::Output {
            what: "journal",
            path,
            source,
        }),
    }
}

/// Holds every output the run names (the report, undo file, evidence and summary) for the
/// run, before any is created: a second run naming one is refused, nothing sent.
fn lock_outputs(config: &RunConfig) -> Result<Vec<OutputLock>, Error> {
    let named = [
        ("report", &config.options.report),
        ("undo file", &config.apply.undo),
        ("evidence file", &config.options.evidence),
        ("summary", &config.options.summary_json),
    ];
    let mut locks = Vec::new();
    let mut held: Vec<&PathBuf> = Vec::new();
    for (what, path) in named {
        let Some(path) = path else { continue };
        // One path named twice is the check of the outputs' to refuse, not a second run.
        if held.contains(&path) {
            continue;
        }
        held.push(path);
        match OutputLock::acquire(path) {
            Ok(lock) => locks.extend(lock),
            Err(source) => {
                return Err(Error::Output {
                    what,
                    path: path.clone(),
                    source,
                })
            }
        }
    }
    Ok(locks)
}

/// The undo file: a resumed run appends to the one of the run it resumes, so that one
/// command rolls every resumed part back.
fn undo_file(config: &RunConfig, columns: &UndoColumns) -> Result<Option<UndoTarget>, Error> {
    let Some(path) = &config.apply.undo else {
        return Ok(None);
    };
    if config.apply.resume_from.is_some() {
        match append_to_undo(path, columns) {
            Ok(Some((file, earlier))) => {
                return Ok(Some(UndoTarget::Append(file, path.clone(), earlier)))
            }
            Ok(None) => {}
            Err(source) => {
                return Err(Error::Output {
                    what: "undo file",
                    path: path.clone(),
                    source,
                })
            }
        }
    }
    create(config, path, "undo file").map(|pending| Some(UndoTarget::New(pending)))
}

/// Opens an existing undo file of ours for appending, with its rows and whether they
/// carry the baseline (an earlier version's do not); `None` when there is none. A file
/// whose columns are not this run's (it decided links and this run does not, or the
/// other way round), or with a row of another width, is refused: adding to it would
/// drop rows or write a second, contradicting row for an identity.
fn append_to_undo(
    path: &Path,
    columns: &UndoColumns,
) -> std::io::Result<Option<(File, EarlierUndo)>> {
    let links = columns.links;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => {}
        _ => return Ok(None),
    }
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidData, message);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .map_err(std::io::Error::other)?;
    let mut records = reader.records();
    let header = match records.next() {
        Some(record) => record.map_err(std::io::Error::other)?,
        None => csv::StringRecord::new(),
    };
    let header: Vec<&str> = header.iter().collect();
    let ours = |baseline| undo_header(columns, baseline) == header;
    let theirs = |baseline| {
        let other = UndoColumns {
            links: !links,
            ..columns.clone()
        };
        undo_header(&other, baseline) == header
    };
    let baseline = match (ours(true), ours(false)) {
        (true, _) => true,
        (_, true) => false,
        _ if theirs(true) || theirs(false) => {
            let (it, this) = if links {
                ("does not", "does")
            } else {
                ("does", "does not")
            };
            return Err(invalid(format!(
                "its columns are not this run's: it {it} put links back and this run {this} decide links; refusing to add to it (give --undo a new file)"
            )));
        }
        _ => {
            return Err(invalid(
                "it is not an undo file of drata-svcacct; refusing to add to it".to_owned(),
            ))
        }
    };
    let mut rows = Vec::new();
    for record in records {
        let record = record.map_err(std::io::Error::other)?;
        if record.len() != header.len() {
            let line = record.position().map_or(0, csv::Position::line);
            return Err(invalid(format!(
                "its line {line} has {} cells, its header {}; refusing to add to it",
                record.len(),
                header.len()
            )));
        }
        rows.push(record.iter().map(str::to_owned).collect());
    }
    let earlier = EarlierUndo { rows, baseline };
    let mut options = std::fs::OpenOptions::new();
    options.append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).map(|file| Some((file, earlier)))
}

/// The undo file to write: new, or an earlier one to add to.
enum UndoTarget {
    New(Pending),
    /// The file, where it is, its rows and whether they carry the baseline.
    Append(File, PathBuf, EarlierUndo),
}

/// Creates every output file, all or nothing: the optional files first, so that a path
/// that cannot be written stops the run before the report exists; a guard removes the
/// files already made when a later one fails.
pub(super) fn create_files(config: &RunConfig, run: &Run) -> Result<Files, Error> {
    let locks = lock_outputs(config)?;
    check_paths(config)?;
    check_folders(config)?;
    let optional = |path: &Option<PathBuf>, what| {
        path.as_ref()
            .map(|path| create(config, path, what))
            .transpose()
    };
    let summary = optional(&config.options.summary_json, "summary")?;
    let undo = undo_file(config, &run.undo_columns())?;
    let evidence = optional(&config.options.evidence, "evidence file")?;
    let report = match &config.options.report {
        Some(path) => create(config, path, "report")?,
        None => CreatedFile::default_report(&config.input.source.stem(), run.started_at)
            .map(Pending::File)
            .map_err(|source| Error::Output {
                what: "report",
                path: std::env::current_dir()
                    .unwrap_or_default()
                    .join(config.input.source.stem()),
                source,
            })?,
    };
    let report_path = match &report {
        Pending::File(file) => file.path().to_owned(),
        Pending::Stdout => PathBuf::from("-"),
    };
    // Beside the report, before anything is kept: a journal that cannot be made leaves no
    // report behind.
    let journal = create_journal(config, &report_path)?;
    let kept = (|| -> std::io::Result<_> {
        let Sink::File(report) = report.keep()? else {
            return Err(std::io::Error::other("the report must be a file"));
        };
        let writer = ReportWriter::new(
            report,
            config.connect.kind,
            run.api().to_owned(),
            run.access_fields.clone(),
        )?;
        let undo = match undo {
            Some(UndoTarget::New(pending)) => {
                let path = match &pending {
                    Pending::File(file) => file.path().to_owned(),
                    Pending::Stdout => PathBuf::from("-"),
                };
                match pending.keep()? {
                    Sink::File(file) => Some(Undo::New(file, path)),
                    Sink::Staged(_) | Sink::Stdout => None,
                }
            }
            Some(UndoTarget::Append(file, path, earlier)) => {
                Some(Undo::Append(file, path, earlier))
            }
            None => None,
        };
        Ok((
            writer,
            summary.map(Pending::staged),
            undo,
            evidence.map(Pending::staged),
        ))
    })()
    .map_err(|source| Error::Output {
        what: "report",
        path: report_path.clone(),
        source,
    })?;
    let (report, summary, undo, evidence) = kept;
    Ok(Files {
        journal,
        locks,
        report_path,
        report,
        summary,
        undo,
        evidence,
    })
}
