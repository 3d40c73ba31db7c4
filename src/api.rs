//! The Drata API client: one keep-alive HTTPS client per run, and the classification of
//! every answer into success, a retryable failure, a row failure or a run-fatal one.

use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

use crate::config::{is_loopback_host, IdentityKind};
use crate::retry::{is_retryable_status, is_run_fatal_status, parse_retry_after};
use crate::secret::ApiKey;

/// Answers larger than this are cut: an identity is a few KiB, an error less.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Error bodies that are not the API's JSON are quoted up to this many characters.
const EXCERPT_CHARS: usize = 200;

pub const USER_AGENT: &str = concat!("drata-svcacct/", env!("CARGO_PKG_VERSION"));

/// What a failed attempt means for the row and the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Try again after a backoff (5xx, 408, 429, timeouts, connection errors).
    Retryable,
    /// This row cannot succeed (400, 404, other 4xx, 3xx); the run goes on.
    Row,
    /// Nothing can succeed (401, 402, 403, 412); the run stops.
    Fatal,
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    /// One line, for humans; never contains the key.
    pub message: String,
}

/// The fields of an identity this tool reads; unknown fields are ignored, nulls tolerated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// When the identity was marked as a service account; null when it is not one.
    #[serde(default)]
    pub service_account: Option<String>,
    #[serde(default)]
    pub service_account_reason: Option<String>,
    #[serde(default)]
    pub connection: Option<Connection>,
}

/// The connection an identity was discovered through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub client_type: Option<String>,
    #[serde(default)]
    pub client_alias: Option<String>,
}

/// One page of `GET /user-identities/{kind}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub data: Vec<Identity>,
    #[serde(default)]
    pub total: u64,
}

/// The largest page the API serves.
pub const PAGE_LIMIT: u64 = 50;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody<'a> {
    service_account: bool,
    service_account_reason: &'a str,
}

/// The client of one run.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    kind: IdentityKind,
    /// Kept only to scrub it from whatever the server sends back.
    key: ApiKey,
}

impl ApiClient {
    /// `base` must already be checked by [`crate::config::parse_base_url`].
    pub fn new(
        base: Url,
        key: &ApiKey,
        kind: IdentityKind,
        timeout: Duration,
        connections: usize,
    ) -> Result<Self, reqwest::Error> {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, key.bearer_header());
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!is_loopback_host(&base))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true);
        if is_loopback_host(&base) {
            // A proxy from the environment must not see loopback traffic (tests, simulator).
            builder = builder.no_proxy();
        }
        Ok(Self {
            http: builder.build()?,
            base,
            kind,
            key: key.clone(),
        })
    }

    /// `{base}user-identities/{kind}`, the listing and the parent of every identity.
    fn collection_url(&self) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .push("user-identities")
                .push(self.kind.path_segment());
        }
        url
    }

    /// Built by pushing path segments: no re-parse of the whole URL per request.
    fn identity_url(&self, id: u64) -> Url {
        let mut url = self.collection_url();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(&id.to_string()).push("service-account");
        }
        url
    }

    /// `PUT …/user-identities/{kind}/{id}/service-account`, one attempt. Returns the
    /// success status and the identity Drata answered with.
    pub async fn set_service_account(
        &self,
        id: u64,
        flag: bool,
        reason: &str,
    ) -> Result<(u16, Identity), Failure> {
        self.put_once(id, flag, reason)
            .await
            .map_err(|mut failure| {
                failure.message = self.key.redact(&failure.message);
                failure
            })
    }

    /// `GET …/user-identities/{kind}?page=P&limit=L`, one attempt.
    pub async fn list_page(&self, page: u64, limit: u64) -> Result<(u16, Page), Failure> {
        let mut url = self.collection_url();
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("limit", &limit.to_string());
        let result = async {
            let (status, headers, bytes) = send(self.http.get(url)).await?;
            check_status(status, &headers, &bytes)?;
            serde_json::from_slice::<Page>(&bytes)
                .map(|page| (status.as_u16(), page))
                .map_err(|e| Failure {
                    kind: FailureKind::Retryable,
                    status: Some(status.as_u16()),
                    retry_after: None,
                    message: format!("the answer is not a page of identities: {e}"),
                })
        }
        .await;
        result.map_err(|mut failure| {
            failure.message = self.key.redact(&failure.message);
            failure
        })
    }

    async fn put_once(
        &self,
        id: u64,
        flag: bool,
        reason: &str,
    ) -> Result<(u16, Identity), Failure> {
        let body = serde_json::to_vec(&UpdateBody {
            service_account: flag,
            service_account_reason: reason,
        })
        .map_err(|e| Failure {
            kind: FailureKind::Row,
            status: None,
            retry_after: None,
            message: format!("cannot encode the request: {e}"),
        })?;
        let request = self
            .http
            .put(self.identity_url(id))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        let (status, headers, bytes) = send(request).await?;
        check_status(status, &headers, &bytes)?;
        serde_json::from_slice::<Identity>(&bytes)
            .map(|identity| (status.as_u16(), identity))
            .map_err(|e| Failure {
                kind: FailureKind::Retryable,
                status: Some(status.as_u16()),
                retry_after: None,
                message: format!("the answer is not an identity: {e}"),
            })
    }
}

async fn send(
    request: reqwest::RequestBuilder,
) -> Result<(StatusCode, HeaderMap, Vec<u8>), Failure> {
    let mut response = request.send().await.map_err(transport_failure)?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY_BYTES.saturating_sub(bytes.len());
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            // An error status says enough on its own; a cut success body is retried.
            Err(_) if !status.is_success() => break,
            Err(e) => {
                let mut failure = transport_failure(e);
                failure.status = Some(status.as_u16());
                return Err(failure);
            }
        }
    }
    Ok((status, headers, bytes))
}

/// Timeouts, refused connections, resets: all retryable, described without the URL.
fn transport_failure(error: reqwest::Error) -> Failure {
    let error = error.without_url();
    let what = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        format!("cannot connect: {}", error_chain(&error))
    } else {
        format!("connection error: {}", error_chain(&error))
    };
    Failure {
        kind: FailureKind::Retryable,
        status: None,
        retry_after: None,
        message: what,
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut current = error.source();
    while let Some(source) = current {
        parts.push(source.to_string());
        current = source.source();
    }
    if parts.is_empty() {
        parts.push(error.to_string());
    }
    one_line(&parts.join(": "))
}

fn check_status(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<(), Failure> {
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    let kind = if is_retryable_status(code) {
        FailureKind::Retryable
    } else if is_run_fatal_status(code) {
        FailureKind::Fatal
    } else {
        FailureKind::Row
    };
    let detail = if status.is_redirection() {
        let location = headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("nowhere");
        format!(
            "redirect to {} not followed (check --base-url)",
            excerpt(location)
        )
    } else {
        api_message(body)
    };
    let retry_after = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let reason = status.canonical_reason().unwrap_or("");
    let message = match (reason.is_empty(), detail.is_empty()) {
        (_, true) => format!("HTTP {code} {reason}"),
        _ => format!("HTTP {code} {reason}: {detail}"),
    };
    Err(Failure {
        kind,
        status: Some(code),
        retry_after,
        message: one_line(message.trim()),
    })
}

/// The API's `message` (a string or an array of strings), else an excerpt of the body.
pub fn api_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Message {
        One(String),
        Many(Vec<String>),
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Message,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            message: Message::One(text),
        }) => excerpt(&text),
        Ok(ErrorBody {
            message: Message::Many(list),
        }) => excerpt(&list.join("; ")),
        Err(_) => excerpt(&String::from_utf8_lossy(body)),
    }
}

fn excerpt(text: &str) -> String {
    let flat = one_line(text.trim());
    match flat.char_indices().nth(EXCERPT_CHARS) {
        None => flat,
        Some((cut, _)) => format!("{}…", &flat[..cut]),
    }
}

/// Collapses line breaks and control characters so a message fits one report cell.
pub fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_messages_are_read_in_both_shapes() {
        assert_eq!(api_message(br#"{"message":"Not found"}"#), "Not found");
        assert_eq!(
            api_message(br#"{"message":["a must be x","b must be y"],"statusCode":400}"#),
            "a must be x; b must be y"
        );
        assert_eq!(
            api_message(b"<html>\nBad\ngateway</html>"),
            "<html> Bad gateway</html>"
        );
        assert_eq!(api_message(&[b'x'; 500]).chars().count(), EXCERPT_CHARS + 1);
    }

    #[test]
    fn statuses_map_to_failure_kinds() {
        let headers = HeaderMap::new();
        let kind = |code| {
            check_status(StatusCode::from_u16(code).unwrap(), &headers, b"{}")
                .unwrap_err()
                .kind
        };
        assert_eq!(kind(500), FailureKind::Retryable);
        assert_eq!(kind(429), FailureKind::Retryable);
        assert_eq!(kind(404), FailureKind::Row);
        assert_eq!(kind(301), FailureKind::Row);
        assert_eq!(kind(401), FailureKind::Fatal);
        assert_eq!(kind(412), FailureKind::Fatal);
        assert!(check_status(StatusCode::OK, &headers, b"").is_ok());
    }

    #[test]
    fn identities_tolerate_nulls_and_unknown_fields() {
        let identity: Identity = serde_json::from_str(
            r#"{"id":3,"username":null,"email":"a@b.c","serviceAccount":null,"user":{"x":1},"extra":[1]}"#,
        )
        .unwrap();
        assert_eq!(identity.id, Some(3));
        assert_eq!(identity.email.as_deref(), Some("a@b.c"));
        assert_eq!(identity.service_account, None);
    }
}
