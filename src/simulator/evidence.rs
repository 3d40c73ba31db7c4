//! The evidence endpoints: workspaces, users, controls and the Evidence Library, as
//! Drata's v1 reference describes them. `POST …/evidence-library` parses the multipart
//! form, checks the required fields, the enums, the dates and the file type as the
//! reference lists them, answers 413 over [`SimulatorConfig::evidence_max_bytes`], and
//! keeps what it stored for the tests ([`RunningSimulator::evidence`]).

use std::sync::atomic::Ordering;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{error, Shared, FIRST_NAMES, LAST_NAMES};

/// An item of the simulated Evidence Library, with every field as it was received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredEvidence {
    pub id: u64,
    pub workspace_id: u64,
    pub name: String,
    pub description: Option<String>,
    pub renewal_date: String,
    pub renewal_schedule_type: String,
    pub source: String,
    pub filed_at: String,
    pub owner_id: u64,
    pub control_ids: Vec<u64>,
    pub file_name: Option<String>,
    pub file: Vec<u8>,
}

/// The workspaces: the first is primary (unless `no_primary_workspace`).
const WORKSPACES: [(u64, &str); 2] = [(1, "Acme (primary)"), (2, "Acme EU")];

/// Controls of every workspace: id, code, name.
const CONTROLS: [(u64, &str, &str); 4] = [
    (2, "DCF-2", "Asset Inventory"),
    (24, "DCF-24", "User Access Reviews"),
    (240, "DCF-240", "Access Review Evidence Retention"),
    (71, "DCF-71", "Service Account Management"),
];

const RENEWAL_TYPES: [&str; 7] = [
    "ONE_MONTH",
    "TWO_MONTHS",
    "THREE_MONTHS",
    "SIX_MONTHS",
    "ONE_YEAR",
    "CUSTOM",
    "NONE",
];
const SOURCES: [&str; 10] = [
    "URL",
    "S3_FILE",
    "TICKET_PROVIDER",
    "NONE",
    "GOOGLE_DRIVE",
    "ONE_DRIVE",
    "BOX",
    "DROPBOX",
    "SHARE_POINT",
    "TEST_RESULT",
];
const FILE_TYPES: [&str; 22] = [
    "pdf", "docx", "odt", "doc", "xlsx", "ods", "pptx", "odp", "gif", "jpg", "jpeg", "png", "json",
    "csv", "md", "markdown", "txt", "html", "log", "zip", "msg", "mp4",
];

pub(super) fn routes(router: Router<Shared>) -> Router<Shared> {
    let library = get(list_evidence)
        .post(create_evidence)
        // The size limit is ours (413 with the API's message), not the extractor's.
        .layer(axum::extract::DefaultBodyLimit::disable());
    router
        .route("/public/workspaces", get(workspaces))
        .route("/public/users", get(users))
        .route("/public/controls", get(controls))
        .route("/public/workspaces/{id}/evidence-library", library)
}

#[derive(Deserialize)]
struct Search {
    q: Option<String>,
}

fn page(data: Vec<Value>) -> Response {
    let total = data.len();
    Json(json!({ "data": data, "page": 1, "limit": 50, "total": total })).into_response()
}

fn matches(query: &Option<String>, fields: &[&str]) -> bool {
    let query = query.as_deref().unwrap_or("").trim().to_lowercase();
    query.is_empty() || fields.iter().any(|f| f.to_lowercase().contains(&query))
}

async fn workspaces(State(sim): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(response) = sim.gate(&headers).await {
        return response;
    }
    let primary = !sim.config.no_primary_workspace;
    page(
        WORKSPACES
            .iter()
            .map(|(id, name)| json!({ "id": id, "name": name, "primary": primary && *id == 1 }))
            .collect(),
    )
}

/// The people behind the seeded identities: user `n` is person `n - 1`.
async fn users(
    State(sim): State<Shared>,
    Query(search): Query<Search>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = sim.gate(&headers).await {
        return response;
    }
    let people = sim.config.identities.div_ceil(3).min(1000);
    let data = (0..people)
        .filter_map(|person| {
            let first = FIRST_NAMES[(person % 10) as usize];
            let last = LAST_NAMES[((person / 10) % 10) as usize];
            let suffix = match person / 100 {
                0 => String::new(),
                n => n.to_string(),
            };
            let email = format!("{first}.{last}{suffix}@example.com");
            matches(&search.q, &[&email, first, last]).then(|| {
                json!({ "id": person + 1, "email": email, "firstName": first, "lastName": last })
            })
        })
        .take(50)
        .collect();
    page(data)
}

async fn controls(
    State(sim): State<Shared>,
    Query(search): Query<Search>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = sim.gate(&headers).await {
        return response;
    }
    page(
        CONTROLS
            .iter()
            .filter(|(_, code, name)| matches(&search.q, &[code, name]))
            .map(|(id, code, name)| json!({ "id": id, "code": code, "name": name, "workspaceId": 1 }))
            .collect(),
    )
}

fn known_workspace(id: &str) -> Option<u64> {
    id.parse()
        .ok()
        .filter(|id| WORKSPACES.iter().any(|(known, _)| known == id))
}

fn rendered(item: &StoredEvidence) -> Value {
    json!({
        "id": item.id,
        "name": item.name,
        "description": item.description,
        "renewalDate": item.renewal_date,
        "renewalScheduleType": item.renewal_schedule_type,
        "source": item.source,
        "filedAt": item.filed_at,
        "ownerId": item.owner_id,
        "controls": item.control_ids.iter().map(|id| json!({ "id": id })).collect::<Vec<_>>(),
        "fileName": item.file_name,
    })
}

async fn list_evidence(
    State(sim): State<Shared>,
    Path(workspace): Path<String>,
    Query(search): Query<Search>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = sim.gate(&headers).await {
        return response;
    }
    let Some(workspace) = known_workspace(&workspace) else {
        return error(StatusCode::NOT_FOUND, json!("Workspace not found"));
    };
    let Ok(library) = sim.evidence.lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, json!("lock"));
    };
    page(
        library
            .iter()
            .filter(|item| item.workspace_id == workspace && matches(&search.q, &[&item.name]))
            .map(rendered)
            .collect(),
    )
}

fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// The form's fields as received; the file's bytes and name.
async fn read_form(mut form: Multipart) -> Result<StoredEvidence, Vec<String>> {
    let mut item = StoredEvidence::default();
    let mut seen = Vec::new();
    let mut problems = Vec::new();
    while let Some(field) = form.next_field().await.map_err(|e| vec![e.body_text()])? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            item.file_name = field.file_name().map(str::to_owned);
            item.file = field
                .bytes()
                .await
                .map_err(|e| vec![e.body_text()])?
                .to_vec();
            seen.push(name);
            continue;
        }
        let value = field.text().await.map_err(|e| vec![e.body_text()])?;
        let number = |what: &str, problems: &mut Vec<String>| match value.trim().parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                problems.push(format!("{what} must be a number"));
                0
            }
        };
        match name.as_str() {
            "name" => item.name = value.clone(),
            "description" => item.description = Some(value.clone()),
            "renewalDate" => item.renewal_date = value.clone(),
            "renewalScheduleType" => item.renewal_schedule_type = value.clone(),
            "source" => item.source = value.clone(),
            "filedAt" => item.filed_at = value.clone(),
            "ownerId" => item.owner_id = number("ownerId", &mut problems),
            "controlIds" => item
                .control_ids
                .push(number("each value in controlIds", &mut problems)),
            _ => {}
        }
        seen.push(name);
    }
    check(&item, &seen, &mut problems);
    if problems.is_empty() {
        Ok(item)
    } else {
        Err(problems)
    }
}

/// The reference's validation: required fields, enums, dates, name length, file type.
fn check(item: &StoredEvidence, seen: &[String], problems: &mut Vec<String>) {
    for required in [
        "name",
        "renewalDate",
        "renewalScheduleType",
        "source",
        "filedAt",
        "ownerId",
    ] {
        if !seen.iter().any(|s| s == required) {
            problems.push(format!("{required} should not be empty"));
        }
    }
    if item.name.trim().is_empty() || item.name.chars().count() > 191 {
        problems.push("name must be shorter than or equal to 191 characters".to_owned());
    }
    for (field, value) in [
        ("renewalDate", &item.renewal_date),
        ("filedAt", &item.filed_at),
    ] {
        if !is_date(value) {
            problems.push(format!("{field} must be a valid ISO 8601 date string"));
        }
    }
    if !RENEWAL_TYPES.contains(&item.renewal_schedule_type.as_str()) {
        problems.push(format!(
            "renewalScheduleType must be one of: {}",
            RENEWAL_TYPES.join(", ")
        ));
    }
    if !SOURCES.contains(&item.source.as_str()) {
        problems.push(format!("source must be one of: {}", SOURCES.join(", ")));
    }
    if item.source == "S3_FILE" {
        let extension = item
            .file_name
            .as_deref()
            .and_then(|n| n.rsplit_once('.'))
            .map(|(_, e)| e.to_ascii_lowercase());
        match extension {
            _ if item.file_name.is_none() => problems.push("file should not be empty".to_owned()),
            Some(e) if FILE_TYPES.contains(&e.as_str()) => {}
            _ => problems.push("file must be one of the accepted file types".to_owned()),
        }
    }
}

async fn create_evidence(
    State(sim): State<Shared>,
    Path(workspace): Path<String>,
    headers: HeaderMap,
    form: Multipart,
) -> Response {
    if let Err(response) = sim.gate(&headers).await {
        return response;
    }
    let earlier_posts = sim.stats.evidence_posts.fetch_add(1, Ordering::Relaxed);
    let Some(workspace) = known_workspace(&workspace) else {
        return error(StatusCode::NOT_FOUND, json!("Workspace not found"));
    };
    let mut item = match read_form(form).await {
        Ok(item) => item,
        Err(problems) => {
            sim.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            return error(StatusCode::BAD_REQUEST, json!(problems));
        }
    };
    if item.file.len() as u64 > sim.config.evidence_max_bytes {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!(format!(
                "File too large: the limit is {} bytes",
                sim.config.evidence_max_bytes
            )),
        );
    }
    let body = {
        let Ok(mut library) = sim.evidence.lock() else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, json!("lock"));
        };
        item.id = library.len() as u64 + 1;
        item.workspace_id = workspace;
        library.push(item);
        library.last().map(rendered).unwrap_or(Value::Null)
    };
    // Fault injection: the item is stored, the answer comes too late for the client.
    if earlier_posts < sim.config.evidence_stalled_posts {
        tokio::time::sleep(sim.config.slow_delay).await;
    }
    (StatusCode::CREATED, Json(body)).into_response()
}
