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
}

impl Error {
    /// Every error stops a command before anything was sent: a usage error, except a
    /// listing that cannot be read, which aborts (as it does `plan` and `--reconcile`).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Listing(_) => exit::ABORTED,
            _ => exit::USAGE,
        }
    }
}
