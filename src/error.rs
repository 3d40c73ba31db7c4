//! The one error type a command can end with, and the exit code each maps to. A run
//! that got as far as its report ends with an exit code, not an error: its outcome is
//! in the report and the summary.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::config::ConfigError;
use crate::drata::CaFileError;
use crate::exit;
use crate::input::rules::RulesError;
use crate::input::{InputError, ResumeError};
use crate::secret::KeyError;

#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Resume(#[from] ResumeError),
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    CaFile(#[from] CaFileError),
    #[error("cannot create the {what} {}: {source}", path.display())]
    Output {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("cannot start the runtime: {0}")]
    Runtime(io::Error),
    #[cfg(feature = "simulator")]
    #[error("cannot start the simulator on {addr}: {source}")]
    Simulator {
        addr: std::net::SocketAddr,
        source: io::Error,
    },
    #[error("cannot write to standard output: {0}")]
    Stdout(io::Error),
    #[error("cannot read the identities from Drata: {0}")]
    Listing(String),
    /// A signal came while a file an option names was read (it may be a FIFO whose
    /// writer never comes): nothing was sent; the exit code is the signal's.
    #[error("interrupted while reading {what} {}: nothing was sent", path.display())]
    Interrupted {
        what: &'static str,
        path: PathBuf,
        code: u8,
    },
    #[error(transparent)]
    Upload(#[from] UploadError),
}

/// Why `upload-evidence` put nothing into the Evidence Library.
#[derive(Debug, Error)]
pub enum UploadError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path}: {problem}")]
    File { path: String, problem: String },
    #[error("no Drata user has the email {0} (--owner takes a user's email or id)")]
    NoSuchOwner(String),
    #[error("{count} Drata users have the email {email}: give --owner one user id of {ids}")]
    SeveralOwners {
        email: String,
        count: usize,
        ids: String,
    },
    #[error("no control has the code {code} in workspace {workspace}{nearby}")]
    NoSuchControl {
        code: String,
        workspace: u64,
        nearby: String,
    },
    #[error("no workspace is marked primary: give --workspace, one of {0}")]
    NoPrimaryWorkspace(String),
    #[error("Drata has no workspace to put the evidence in")]
    NoWorkspace,
    #[error("{what}: refused by Drata: {message}")]
    Refused { what: &'static str, message: String },
    #[error("{what}: {message}")]
    Failed { what: &'static str, message: String },
    #[error("interrupted: nothing was uploaded")]
    Interrupted(u8),
}

impl UploadError {
    fn exit_code(&self) -> u8 {
        match self {
            UploadError::Refused { .. } => exit::ABORTED,
            UploadError::Failed { .. } => exit::ROW_PROBLEMS,
            UploadError::Interrupted(code) => *code,
            _ => exit::USAGE,
        }
    }
}

impl Error {
    /// Every error stops a command before anything was sent: a usage error, except a
    /// listing that cannot be read, which aborts (as a run whose state cannot be read does),
    /// and a signal heard while a file was read, which ends with the signal's code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Listing(_) => exit::ABORTED,
            Error::Interrupted { code, .. } => *code,
            Error::Upload(e) => e.exit_code(),
            _ => exit::USAGE,
        }
    }
}
