//! The Evidence Library and what an upload names: workspaces, users and controls
//! (Drata's v1 reference: `WorkspacesPublicController_listWorkspaces`,
//! `UsersPublicController_listUsers`, `GRCPublicController_getControls`,
//! `EvidenceLibraryPublicController_createEvidence`). Each call is one attempt; lists are
//! read best-effort, like the identities: an item without a readable id is skipped.

use reqwest::multipart::{Form, Part};
use reqwest::Url;
use serde_json::Value;

use super::{check_status, ApiClient, Failure};
use crate::drata::wire::User;

/// The largest page the API serves.
const LIMIT: &str = "50";

/// A workspace of `GET /workspaces`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Workspace {
    pub id: u64,
    pub name: String,
    pub primary: bool,
}

/// A control of `GET /controls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Control {
    pub id: u64,
    pub code: String,
    pub name: String,
}

/// An item of the Evidence Library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EvidenceItem {
    pub id: u64,
    pub name: String,
}

/// The fields of `POST /workspaces/{id}/evidence-library`, as the reference names them.
#[derive(Debug, Clone)]
pub(crate) struct EvidenceForm {
    pub name: String,
    pub description: String,
    /// `YYYY-MM-DD`.
    pub renewal_date: String,
    /// `ONE_MONTH` ... `NONE`.
    pub renewal_schedule_type: &'static str,
    /// `S3_FILE`: the reference's value for a file sent with the form.
    pub source: &'static str,
    /// `YYYY-MM-DD`.
    pub filed_at: String,
    pub owner_id: u64,
    pub control_ids: Vec<u64>,
    pub file_name: String,
    pub bytes: Vec<u8>,
}

fn text(object: &Value, field: &str) -> String {
    object
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// An id sent as a number or as a decimal string.
fn id(object: &Value) -> Option<u64> {
    match object.get("id")? {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

impl ApiClient {
    /// `{base}` with `segments` pushed and `query` appended.
    fn api_url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// The `data` array of a list answer, one attempt.
    async fn list_data(&self, url: Url) -> Result<(u16, Vec<Value>), Failure> {
        let answer = async {
            let (status, headers, bytes) = self.send(self.http.get(url)).await?;
            check_status(status, &headers, &bytes, |t| self.key.redact(t))?;
            let body: Option<Value> = serde_json::from_slice(&bytes).ok();
            match body
                .as_ref()
                .and_then(|b| b.get("data"))
                .and_then(Value::as_array)
            {
                Some(items) => Ok((status.as_u16(), items.clone())),
                None => Err(self.unreadable(status, "a list", &bytes)),
            }
        };
        answer.await.map_err(|failure| self.scrubbed(failure))
    }

    /// `GET /workspaces`, the first page (of 50: an account has a few).
    pub(crate) async fn workspaces(&self) -> Result<(u16, Vec<Workspace>), Failure> {
        let url = self.api_url(&["workspaces"], &[("page", "1"), ("limit", LIMIT)]);
        let (status, items) = self.list_data(url).await?;
        let workspaces = items
            .iter()
            .filter_map(|item| {
                Some(Workspace {
                    id: id(item)?,
                    name: text(item, "name"),
                    primary: item.get("primary").and_then(Value::as_bool) == Some(true),
                })
            })
            .collect();
        Ok((status, workspaces))
    }

    /// `GET /users?q=QUERY`: the users the search finds.
    pub(crate) async fn users(&self, query: &str) -> Result<(u16, Vec<User>), Failure> {
        let url = self.api_url(&["users"], &[("q", query), ("page", "1"), ("limit", LIMIT)]);
        let (status, items) = self.list_data(url).await?;
        let users = items.iter().filter_map(User::from_value).collect();
        Ok((status, users))
    }

    /// `GET /controls?q=QUERY&workspaceId=ID`: the controls the search finds.
    pub(crate) async fn controls(
        &self,
        query: &str,
        workspace: u64,
    ) -> Result<(u16, Vec<Control>), Failure> {
        let workspace = workspace.to_string();
        let query = [
            ("q", query),
            ("workspaceId", workspace.as_str()),
            ("page", "1"),
            ("limit", LIMIT),
        ];
        let (status, items) = self.list_data(self.api_url(&["controls"], &query)).await?;
        let controls = items
            .iter()
            .filter_map(|item| {
                Some(Control {
                    id: id(item)?,
                    code: text(item, "code"),
                    name: text(item, "name"),
                })
            })
            .collect();
        Ok((status, controls))
    }

    fn library_url(&self, workspace: u64, query: &[(&str, &str)]) -> Url {
        let workspace = workspace.to_string();
        self.api_url(&["workspaces", &workspace, "evidence-library"], query)
    }

    /// `GET /workspaces/{id}/evidence-library?q=NAME`: the items the search finds.
    pub(crate) async fn evidence_items(
        &self,
        workspace: u64,
        name: &str,
    ) -> Result<(u16, Vec<EvidenceItem>), Failure> {
        let url = self.library_url(workspace, &[("q", name), ("page", "1"), ("limit", LIMIT)]);
        let (status, items) = self.list_data(url).await?;
        let items = items
            .iter()
            .filter_map(|item| {
                Some(EvidenceItem {
                    id: id(item)?,
                    name: text(item, "name"),
                })
            })
            .collect();
        Ok((status, items))
    }

    /// `POST /workspaces/{id}/evidence-library` as `multipart/form-data`, one attempt.
    /// Not idempotent: the caller looks the name up before sending again.
    pub(crate) async fn create_evidence(
        &self,
        workspace: u64,
        form: &EvidenceForm,
    ) -> Result<(u16, EvidenceItem), Failure> {
        let mut multipart = Form::new()
            .text("name", form.name.clone())
            .text("description", form.description.clone())
            .text("renewalDate", form.renewal_date.clone())
            .text("renewalScheduleType", form.renewal_schedule_type)
            .text("source", form.source)
            .text("filedAt", form.filed_at.clone())
            .text("ownerId", form.owner_id.to_string());
        for control in &form.control_ids {
            multipart = multipart.text("controlIds", control.to_string());
        }
        let file = Part::bytes(form.bytes.clone()).file_name(form.file_name.clone());
        multipart = multipart.part("file", file);
        let request = self
            .http
            .post(self.library_url(workspace, &[]))
            .multipart(multipart);
        let answer = async {
            let (status, headers, bytes) = self.send(request).await?;
            check_status(status, &headers, &bytes, |t| self.key.redact(t))?;
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            // Any 2xx stored the item; an answer without a readable id still did.
            let item = EvidenceItem {
                id: id(&body).unwrap_or(0),
                name: text(&body, "name"),
            };
            Ok((status.as_u16(), item))
        };
        answer.await.map_err(|failure| self.scrubbed(failure))
    }
}
