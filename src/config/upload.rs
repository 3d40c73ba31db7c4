//! `upload-evidence`: what to upload, where, for whom and how often it is renewed,
//! checked before any I/O (the file's size and contents are read by the command).

use std::path::PathBuf;

use thiserror::Error;

use super::{Connect, OutputOptions};

/// The file types the Evidence Library accepts, per Drata's reference; any other is
/// refused before anything is sent.
pub(crate) const ACCEPTED_EXTENSIONS: [&str; 22] = [
    "pdf", "docx", "odt", "doc", "xlsx", "ods", "pptx", "odp", "gif", "jpg", "jpeg", "png", "json",
    "csv", "md", "markdown", "txt", "html", "log", "zip", "msg", "mp4",
];

/// The longest item name the reference accepts, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 191;

/// The largest file sent. The reference states no limit: this keeps a mistaken upload (a
/// disk image, a backup) from leaving the machine; Drata's own limit answers 413.
pub(crate) const MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;

#[derive(Debug, Error, PartialEq)]
pub enum UploadOptionError {
    #[error(
        "{file}: the Evidence Library does not accept this file type; it accepts .{}",
        ACCEPTED_EXTENSIONS.join(" .")
    )]
    FileType { file: String },
    #[error("--owner {0:?} is neither an email nor a Drata user id")]
    Owner(String),
    #[error("--control {0:?} is neither a control code (DCF-24) nor a control id")]
    Control(String),
    #[error("--name is empty or longer than {MAX_NAME_CHARS} characters ({0})")]
    Name(usize),
}

/// `--renewal`: how often the evidence is to be renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Renewal {
    #[value(name = "1m")]
    OneMonth,
    #[value(name = "2m")]
    TwoMonths,
    /// Every quarter, as access reviews are.
    #[default]
    #[value(name = "3m")]
    ThreeMonths,
    #[value(name = "6m")]
    SixMonths,
    #[value(name = "1y")]
    OneYear,
    None,
}

impl Renewal {
    /// The reference's `renewalScheduleType`.
    pub(crate) fn schedule_type(self) -> &'static str {
        match self {
            Renewal::OneMonth => "ONE_MONTH",
            Renewal::TwoMonths => "TWO_MONTHS",
            Renewal::ThreeMonths => "THREE_MONTHS",
            Renewal::SixMonths => "SIX_MONTHS",
            Renewal::OneYear => "ONE_YEAR",
            Renewal::None => "NONE",
        }
    }

    /// Months until the renewal date; 0 for `none` (the date is then the filing date).
    pub(crate) fn months(self) -> u32 {
        match self {
            Renewal::OneMonth => 1,
            Renewal::TwoMonths => 2,
            Renewal::ThreeMonths => 3,
            Renewal::SixMonths => 6,
            Renewal::OneYear => 12,
            Renewal::None => 0,
        }
    }
}

/// `--owner`: a user by email (resolved through the users listing) or by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Owner {
    Email(String),
    Id(u64),
}

impl Owner {
    pub(crate) fn parse(text: &str) -> Result<Self, UploadOptionError> {
        let text = text.trim();
        if let Ok(id) = text.parse::<u64>() {
            return Ok(Owner::Id(id));
        }
        match text.split_once('@') {
            Some((user, domain)) if !user.is_empty() && !domain.is_empty() => {
                Ok(Owner::Email(text.to_owned()))
            }
            _ => Err(UploadOptionError::Owner(text.to_owned())),
        }
    }
}

/// `--control`: a control by code (resolved in the workspace) or by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ControlRef {
    Code(String),
    Id(u64),
}

impl ControlRef {
    pub(crate) fn parse(text: &str) -> Result<Self, UploadOptionError> {
        let text = text.trim();
        if let Ok(id) = text.parse::<u64>() {
            return Ok(ControlRef::Id(id));
        }
        if text.is_empty() || text.chars().any(char::is_whitespace) {
            return Err(UploadOptionError::Control(text.to_owned()));
        }
        Ok(ControlRef::Code(text.to_owned()))
    }
}

/// True when the Evidence Library accepts a file of this name.
pub(crate) fn accepted_file(path: &std::path::Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| ACCEPTED_EXTENSIONS.contains(&e.as_str()))
}

/// Checks `--name` when given: not blank, at most [`MAX_NAME_CHARS`].
pub(crate) fn check_name(name: Option<String>) -> Result<Option<String>, UploadOptionError> {
    match name {
        None => Ok(None),
        Some(name) => {
            let name = name.trim().to_owned();
            let chars = name.chars().count();
            if chars == 0 || chars > MAX_NAME_CHARS {
                return Err(UploadOptionError::Name(chars));
            }
            Ok(Some(name))
        }
    }
}

/// The checked configuration of `upload-evidence`.
#[derive(Debug)]
pub(crate) struct UploadConfig {
    pub file: PathBuf,
    pub owner: Owner,
    /// `None`: the workspace Drata marks primary.
    pub workspace: Option<u64>,
    pub controls: Vec<ControlRef>,
    /// `None`: the file's name and the date.
    pub name: Option<String>,
    pub renewal: Renewal,
    /// How to reach Drata, as every command that talks to it.
    pub connect: Connect,
    pub log: OutputOptions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_and_controls_are_ids_or_names() {
        assert_eq!(Owner::parse("42"), Ok(Owner::Id(42)));
        assert_eq!(
            Owner::parse(" Alice@Example.com "),
            Ok(Owner::Email("Alice@Example.com".to_owned()))
        );
        assert!(Owner::parse("alice").is_err());
        assert_eq!(ControlRef::parse("24"), Ok(ControlRef::Id(24)));
        assert_eq!(
            ControlRef::parse("dcf-24"),
            Ok(ControlRef::Code("dcf-24".to_owned()))
        );
        assert!(ControlRef::parse("two words").is_err());
    }

    #[test]
    fn file_types_are_the_references() {
        assert!(accepted_file(std::path::Path::new("q4.XLSX")));
        assert!(accepted_file(std::path::Path::new("q4-evidence.md")));
        assert!(!accepted_file(std::path::Path::new("q4.exe")));
        assert!(!accepted_file(std::path::Path::new("noextension")));
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(check_name(None), Ok(None));
        assert_eq!(check_name(Some(" x ".into())), Ok(Some("x".into())));
        assert!(check_name(Some("é".repeat(191))).is_ok());
        assert!(check_name(Some("é".repeat(192))).is_err());
        assert!(check_name(Some("  ".into())).is_err());
    }
}
