//! `upload-evidence`: a local check of the file and the options, then the workspace, the
//! owner and the controls resolved, then one `multipart/form-data` POST into the Evidence
//! Library. The POST is not idempotent: after an answer that may hide a stored item (a
//! timeout, a 5xx), the name is looked up before anything is sent again, so one upload
//! never makes two items.

use std::cell::Cell;
use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use super::session::Session;
use crate::config::{ControlRef, Owner, UploadConfig, MAX_NAME_CHARS, MAX_UPLOAD_BYTES};
use crate::drata::{ApiClient, Cause, EvidenceForm, EvidenceItem, Failure};
use crate::engine::{
    classify, may_have_applied, ConcurrencyMode, Ended, Engine, Request, RunControl,
};
use crate::error::{Error, UploadError};
use crate::exit;
use crate::input::evidence_summary;
use crate::model::{FailureKind, StopReason};
use crate::text::{sha256_reader, shorten};

/// Descriptions are cut to this many characters: the reference states no limit, and a
/// summary needs far less.
const MAX_DESCRIPTION_CHARS: usize = 2000;

/// Runs `upload-evidence` and returns the exit code.
pub(super) async fn run(config: UploadConfig) -> Result<u8, Error> {
    let today = civil_date(SystemTime::now());
    let bytes = read_file(&config)?;
    let form_name = item_name(&config, &today);
    let description = describe(&config, &bytes);
    let control = Arc::new(RunControl::default());
    // One request at a time: the steps depend on each other.
    let one_at_a_time = ConcurrencyMode::Fixed(std::num::NonZeroUsize::MIN);
    let session = Session::connect(&config.connect, one_at_a_time, 0, &control).await?;
    let engine = &session.engine;
    let workspace = match config.workspace {
        Some(id) => id,
        None => primary_workspace(engine).await?,
    };
    let owner_id = owner(engine, &config.owner).await?;
    let mut control_ids = Vec::new();
    for wanted in &config.controls {
        control_ids.push(control_id(engine, wanted, workspace).await?);
    }
    let form = EvidenceForm {
        name: form_name,
        description,
        renewal_date: add_months(today, config.renewal.months()).to_string(),
        renewal_schedule_type: config.renewal.schedule_type(),
        source: "S3_FILE",
        filed_at: today.to_string(),
        owner_id,
        control_ids,
        file_name: file_name(&config),
        bytes,
    };
    let item = upload(engine, workspace, &form).await?;
    tracing::info!(
        id = item.id,
        name = %form.name,
        workspace,
        owner = owner_id,
        controls = ?form.control_ids,
        "evidence uploaded"
    );
    // The item's id alone on standard output, for scripts.
    let mut out = config.log.console().stdout();
    writeln!(out, "{}", item.id)
        .and_then(|()| out.flush())
        .map_err(Error::Stdout)?;
    Ok(exit::SUCCESS)
}

fn file_name(config: &UploadConfig) -> String {
    config.file.file_name().map_or_else(
        || "evidence".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The file's bytes, after checking it is a regular, non-empty file of a size Drata can
/// take.
fn read_file(config: &UploadConfig) -> Result<Vec<u8>, UploadError> {
    let path = config.file.display().to_string();
    let read = |source| UploadError::Read {
        path: path.clone(),
        source,
    };
    let metadata = std::fs::metadata(&config.file).map_err(read)?;
    let problem = if !metadata.is_file() {
        Some("not a regular file".to_owned())
    } else if metadata.len() == 0 {
        Some("the file is empty".to_owned())
    } else if metadata.len() > MAX_UPLOAD_BYTES {
        Some(format!(
            "{} bytes: larger than the {} MiB this tool sends",
            metadata.len(),
            MAX_UPLOAD_BYTES / (1024 * 1024)
        ))
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(UploadError::File { path, problem });
    }
    std::fs::read(&config.file).map_err(read)
}

/// `--name`, or the file's name and the date, cut to what the reference accepts.
fn item_name(config: &UploadConfig, today: &CivilDate) -> String {
    match &config.name {
        Some(name) => name.clone(),
        None => {
            let date = today.to_string();
            let room = MAX_NAME_CHARS - date.chars().count() - 1;
            let file: String = file_name(config).chars().take(room).collect();
            format!("{file} {date}")
        }
    }
}

/// The run's summary when the file is an evidence workbook, and in any case the tool,
/// its version and the file's SHA-256.
fn describe(config: &UploadConfig, bytes: &[u8]) -> String {
    let digest = sha256_reader(&mut &bytes[..]).unwrap_or_default();
    let mut lines = vec![format!(
        "Uploaded by drata-svcacct {}; file SHA-256 {digest}.",
        env!("CARGO_PKG_VERSION")
    )];
    for (fact, value) in evidence_summary(&config.file) {
        lines.push(format!("{fact}: {value}"));
    }
    shorten(&lines.join("\n"), MAX_DESCRIPTION_CHARS)
}

/// One GET with the engine's retries; a refusal is fatal (exit 3), anything else that
/// gives up fails (exit 1).
async fn get<T, F, Fut>(engine: &Engine, what: &'static str, attempt: F) -> Result<T, UploadError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(u16, T), Failure>>,
{
    // Lists of workspaces, users and controls: read like listing pages.
    let attempted = engine
        .with_retries(what, Request::ListingPage, attempt)
        .await;
    ended(engine, what, attempted.ended)
}

fn ended<T>(engine: &Engine, what: &'static str, ended: Ended<T>) -> Result<T, UploadError> {
    match ended {
        Ended::Done(value) => Ok(value),
        Ended::Failed(failure) if classify(failure.cause) == FailureKind::Fatal => {
            Err(UploadError::Refused {
                what,
                message: failure.message,
            })
        }
        Ended::Failed(failure) => Err(UploadError::Failed {
            what,
            message: failure.message,
        }),
        Ended::Stopped(_) => match engine.control.reason() {
            Some(StopReason::Interrupted(signal)) => {
                Err(UploadError::Interrupted(exit::for_signal(signal)))
            }
            Some(reason) => Err(UploadError::Refused {
                what,
                message: reason.cause(),
            }),
            None => Err(UploadError::Interrupted(exit::INTERRUPTED)),
        },
    }
}

/// The workspace Drata marks primary; with none marked, the only one there is.
async fn primary_workspace(engine: &Engine) -> Result<u64, UploadError> {
    let client = &engine.client;
    let workspaces = get(engine, "listing the workspaces", || client.workspaces()).await?;
    if let Some(primary) = workspaces.iter().find(|w| w.primary) {
        return Ok(primary.id);
    }
    match workspaces.as_slice() {
        [] => Err(UploadError::NoWorkspace),
        [only] => Ok(only.id),
        several => Err(UploadError::NoPrimaryWorkspace(
            several
                .iter()
                .map(|w| format!("{} ({})", w.id, crate::text::printable(&w.name)))
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

/// The owner's user id: the one user whose email is the one given, any case.
async fn owner(engine: &Engine, owner: &Owner) -> Result<u64, UploadError> {
    let email = match owner {
        Owner::Id(id) => return Ok(*id),
        Owner::Email(email) => email,
    };
    let client = &engine.client;
    let users = get(engine, "looking up the owner", || client.users(email)).await?;
    let matching: Vec<u64> = users
        .iter()
        .filter(|user| user.email.trim().eq_ignore_ascii_case(email))
        .map(|user| user.id)
        .collect();
    match matching.as_slice() {
        [id] => Ok(*id),
        [] => Err(UploadError::NoSuchOwner(email.clone())),
        several => Err(UploadError::SeveralOwners {
            email: email.clone(),
            count: several.len(),
            ids: several
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// A control's id: the control of the workspace whose code is the one given, any case.
async fn control_id(
    engine: &Engine,
    wanted: &ControlRef,
    workspace: u64,
) -> Result<u64, UploadError> {
    let code = match wanted {
        ControlRef::Id(id) => return Ok(*id),
        ControlRef::Code(code) => code,
    };
    let client = &engine.client;
    let found = get(engine, "looking up a control", || {
        client.controls(code, workspace)
    })
    .await?;
    if let Some(control) = found.iter().find(|c| c.code.eq_ignore_ascii_case(code)) {
        return Ok(control.id);
    }
    let nearby: Vec<String> = found
        .iter()
        .take(5)
        .map(|c| crate::text::printable(&format!("{} {}", c.code, c.name)))
        .collect();
    Err(UploadError::NoSuchControl {
        code: code.clone(),
        workspace,
        nearby: if nearby.is_empty() {
            String::new()
        } else {
            format!(" (the search found: {})", nearby.join("; "))
        },
    })
}

/// The POST, retried by the engine; after an attempt that may have stored the item, the
/// next attempt first looks the name up and stops there when the item is found.
async fn upload(
    engine: &Engine,
    workspace: u64,
    form: &EvidenceForm,
) -> Result<EvidenceItem, UploadError> {
    let client: &ApiClient = &engine.client;
    let look_first = Cell::new(false);
    let attempted = engine
        .with_retries("uploading the evidence", Request::Update, || {
            let look_first = &look_first;
            async move {
                if look_first.get() {
                    let (status, items) = client.evidence_items(workspace, &form.name).await?;
                    if let Some(item) = items.into_iter().find(|i| i.name == form.name) {
                        tracing::info!(
                            id = item.id,
                            "the item an earlier attempt sent is in the library: not sent again"
                        );
                        return Ok((status, item));
                    }
                    // The look-up took this attempt's permit; the POST takes its own.
                    if !engine.permit().await {
                        return Err(Failure {
                            cause: Cause::Transport,
                            retry_after: None,
                            message: "stopped before sending again".to_owned(),
                        });
                    }
                }
                let result = client.create_evidence(workspace, form).await;
                if let Err(failure) = &result {
                    look_first.set(look_first.get() || may_have_applied(failure.cause));
                }
                result
            }
        })
        .await;
    ended(engine, "uploading the evidence", attempted.ended)
}

/// A day of the proleptic Gregorian calendar (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CivilDate {
    year: i64,
    month: u32,
    day: u32,
}

impl std::fmt::Display for CivilDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// The UTC date of `time` (days since 1970 to a civil date, H. Hinnant's algorithm).
pub(super) fn civil_date(time: SystemTime) -> CivilDate {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (seconds / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    CivilDate { year, month, day }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `date` plus `months`, the day kept or, past the month's end, its last day (Nov 30 +
/// 3 months is Feb 28 or 29).
pub(super) fn add_months(date: CivilDate, months: u32) -> CivilDate {
    let index = date.year * 12 + i64::from(date.month - 1) + i64::from(months);
    let year = index.div_euclid(12);
    let month = (index.rem_euclid(12) + 1) as u32;
    CivilDate {
        year,
        month,
        day: date.day.min(days_in_month(year, month)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(days: u64) -> CivilDate {
        civil_date(SystemTime::UNIX_EPOCH + Duration::from_secs(days * 86_400 + 3600))
    }

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(at(0).to_string(), "1970-01-01");
        assert_eq!(at(11_016).to_string(), "2000-02-29");
        assert_eq!(at(20_819).to_string(), "2027-01-01");
    }

    #[test]
    fn months_are_added_with_the_day_clamped() {
        let date = |year, month, day| CivilDate { year, month, day };
        assert_eq!(add_months(date(2026, 11, 30), 3), date(2027, 2, 28));
        assert_eq!(add_months(date(2027, 11, 30), 3), date(2028, 2, 29));
        assert_eq!(add_months(date(2026, 10, 5), 12), date(2027, 10, 5));
        assert_eq!(add_months(date(2026, 10, 5), 0), date(2026, 10, 5));
        assert_eq!(add_months(date(2026, 12, 31), 1), date(2027, 1, 31));
    }
}
