//! The output files of a run, created before anything is sent: all or nothing, never the
//! input, never two outputs on one path, `-` for standard output where it makes sense.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::Run;
use crate::config::RunConfig;
use crate::error::Error;
use crate::input::InputSource;
use crate::output::{same_file, CreatedFile, ReportWriter, Sink};

/// The output files, created (0600, exclusively) before anything is sent.
pub(super) struct Files {
    pub report_path: PathBuf,
    pub report: ReportWriter,
    pub summary: Option<Sink>,
    pub undo: Option<File>,
    pub evidence: Option<Sink>,
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
        ("report", &config.report),
        ("summary", &config.summary_json),
        ("undo file", &config.undo),
        ("evidence file", &config.evidence),
    ];
    let given: Vec<(&'static str, &PathBuf)> = outputs
        .iter()
        .filter_map(|(what, path)| path.as_ref().map(|path| (*what, path)))
        .collect();
    let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
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

fn create(path: &Path, force: bool, what: &'static str) -> Result<Pending, Error> {
    if CreatedFile::is_stdout(path) {
        return Ok(Pending::Stdout);
    }
    CreatedFile::create(path, force)
        .map(Pending::File)
        .map_err(|source| Error::Output {
            what,
            path: path.to_owned(),
            source,
        })
}

/// Creates every output file, all or nothing: the optional files first, so that a path
/// that cannot be written stops the run before the report exists; a guard removes the
/// files already made when a later one fails.
pub(super) fn create_files(config: &RunConfig, run: &Run) -> Result<Files, Error> {
    check_paths(config)?;
    let optional = |path: &Option<PathBuf>, what| {
        path.as_ref()
            .map(|path| create(path, config.force, what))
            .transpose()
    };
    let summary = optional(&config.summary_json, "summary")?;
    let undo = optional(&config.undo, "undo file")?;
    let evidence = optional(&config.evidence, "evidence file")?;
    let report = match &config.report {
        Some(path) => CreatedFile::create(path, config.force),
        None => CreatedFile::default_report(&config.input.source.stem(), run.started_at),
    }
    .map_err(|source| Error::Output {
        what: "report",
        path: config.report.clone().unwrap_or_else(|| {
            std::env::current_dir()
                .unwrap_or_default()
                .join(config.input.source.stem())
        }),
        source,
    })?;
    let report_path = report.path().to_owned();
    let keep = |file: Option<Pending>| file.map(Pending::keep).transpose();
    let kept = (|| -> std::io::Result<_> {
        let writer = ReportWriter::new(report.keep()?, config.kind, run.api().to_owned())?;
        let undo = match keep(undo)? {
            Some(Sink::File(file)) => Some(file),
            _ => None,
        };
        Ok((writer, keep(summary)?, undo, keep(evidence)?))
    })()
    .map_err(|source| Error::Output {
        what: "report",
        path: report_path.clone(),
        source,
    })?;
    let (report, summary, undo, evidence) = kept;
    Ok(Files {
        report_path,
        report,
        summary,
        undo,
        evidence,
    })
}
