//! The Drata API client: one keep-alive HTTPS client per run. It tells what happened on
//! the wire (an answer, its status, its body); the engine decides what that means.

use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

use super::is_loopback_host;
use super::tls::{certificate_error, certificate_failure, CertProblem};
use super::wire::{Identity, Page, UserPage};
use crate::model::IdentityKind;
use crate::secret::{redact_secret, ApiKey};
use crate::text::{one_line, shorten};

/// Answers larger than this are cut: an identity is a few KiB, an error less.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Error bodies that are not the API's JSON are quoted up to this many characters.
const EXCERPT_CHARS: usize = 200;

mod evidence;
pub(crate) use evidence::{EvidenceForm, EvidenceItem};

pub(crate) const USER_AGENT: &str = concat!("drata-svcacct/", env!("CARGO_PKG_VERSION"));

/// What went wrong with one attempt, as seen on the wire; what it means for the row
/// and the run is the engine's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// No answer: a timeout, a refused or dropped connection.
    Transport,
    /// The server's TLS certificate was refused: no request can succeed until the trust
    /// store is fixed.
    Certificate(CertProblem),
    /// The proxy refused the tunnel's credentials (407), or its scheme is one this tool
    /// cannot use: every request would fail the same way, and a proxy may lock the
    /// account after a few wrong passwords.
    Proxy,
    /// An answer with a status that is not 2xx.
    Status(u16),
    /// A 2xx answer whose body cannot be read as what was asked for (listing only).
    Unreadable(u16),
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub cause: Cause,
    pub retry_after: Option<Duration>,
    /// One line, for humans; never contains the key.
    pub message: String,
}

/// Its one line: a run-fatal failure is the reason a run stops.
impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl Failure {
    /// The HTTP status, when there was an answer.
    pub(crate) fn status(&self) -> Option<u16> {
        match self.cause {
            Cause::Transport | Cause::Certificate(_) | Cause::Proxy => None,
            Cause::Status(status) | Cause::Unreadable(status) => Some(status),
        }
    }
}

/// The largest page the API serves.
pub(crate) const PAGE_LIMIT: u64 = 50;

/// The body of `PUT …/connect`: a user's id, or null to unlink.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectBody {
    user_id: Option<u64>,
}

/// The body of `PUT …/toggle`: which access, on or off.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToggleBody<'a> {
    toggle: bool,
    toggle_field: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody<'a> {
    service_account: bool,
    service_account_reason: &'a str,
}

/// The client of one run.
#[derive(Debug, Clone)]
pub(crate) struct ApiClient {
    http: reqwest::Client,
    base: Url,
    kind: IdentityKind,
    /// Kept only to scrub it from whatever the server sends back.
    key: ApiKey,
    /// Credentials of proxies named in the environment, scrubbed from messages too.
    proxy_secrets: ProxySecrets,
    /// The server's host (and port), as certificate failures name it.
    host: String,
    /// The proxy variable that applies to this base URL, when one is set.
    proxy: Option<ProxySetting>,
}

/// The proxy variable that applies to an HTTPS request, and the scheme it names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProxySetting {
    variable: &'static str,
    /// `None` for `http`, `https` or no scheme (read as `http`), which are supported.
    unsupported_scheme: Option<String>,
}

impl ProxySetting {
    /// The proxy used for HTTPS, as the HTTP stack picks it: `HTTPS_PROXY` (either
    /// case), else `ALL_PROXY` (either case).
    fn from_env() -> Option<Self> {
        let names = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];
        names.into_iter().find_map(|variable| {
            let value = std::env::var(variable)
                .ok()
                .filter(|v| !v.trim().is_empty())?;
            Some(Self::of(variable, &value))
        })
    }

    fn of(variable: &'static str, value: &str) -> Self {
        let scheme = value
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        Self {
            variable,
            unsupported_scheme: scheme.filter(|s| s != "http" && s != "https"),
        }
    }

    /// The failure every request would meet, found before any is sent.
    fn unsupported(&self) -> Option<Failure> {
        let scheme = self.unsupported_scheme.as_ref()?;
        Some(Failure {
            cause: Cause::Proxy,
            retry_after: None,
            message: format!(
                "the proxy in {} is a {}:// proxy, which this tool cannot use: \
                 set {} to an http:// or https:// proxy",
                self.variable,
                crate::text::printable(&shorten(scheme, 16)),
                self.variable
            ),
        })
    }
}

/// Proxy credentials, held so that `Debug` never prints them.
#[derive(Clone)]
struct ProxySecrets(Vec<String>);

impl std::fmt::Debug for ProxySecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxySecrets(<{} redacted>)", self.0.len())
    }
}

/// What the client of one run is built from, besides the base URL and the key.
#[derive(Debug, Clone)]
pub(crate) struct ClientOptions {
    pub kind: IdentityKind,
    pub timeout: Duration,
    pub connections: usize,
    /// The roots that replace the system store (`SSL_CERT_FILE`, `SSL_CERT_DIR`), read
    /// here rather than by reqwest so that a certificate that cannot serve is skipped;
    /// `None`: the system store.
    pub store_roots: Option<Vec<reqwest::Certificate>>,
    /// CA certificates trusted besides the store (`--ca-cert`).
    pub extra_roots: Vec<reqwest::Certificate>,
}

impl ApiClient {
    /// `base` must already be checked (https, or http to loopback). The server's
    /// certificate is checked against the system store (or `store_roots`, which replace
    /// it) plus `extra_roots`; never skipped.
    pub(crate) fn new(
        base: Url,
        key: &ApiKey,
        options: ClientOptions,
    ) -> Result<Self, reqwest::Error> {
        let ClientOptions {
            kind,
            timeout,
            connections,
            store_roots,
            extra_roots,
        } = options;
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
        if let Some(roots) = store_roots {
            builder = builder.tls_built_in_root_certs(false);
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        for root in extra_roots {
            builder = builder.add_root_certificate(root);
        }
        if is_loopback_host(&base) {
            // A proxy from the environment must not see loopback traffic (tests, simulator).
            builder = builder.no_proxy();
        }
        let host = match (base.host_str(), base.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (host, _) => host.unwrap_or_default().to_owned(),
        };
        Ok(Self {
            http: builder.build()?,
            base: base.clone(),
            kind,
            key: key.clone(),
            proxy_secrets: ProxySecrets(proxy_secrets_from_env()),
            host,
            // Loopback traffic never goes through a proxy (see `no_proxy` above).
            proxy: ProxySetting::from_env().filter(|_| !is_loopback_host(&base)),
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
        self.action_url(id, "service-account")
    }

    /// `…/user-identities/{kind}/{id}/{action}`.
    fn action_url(&self, id: u64, action: &str) -> Url {
        let mut url = self.collection_url();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(&id.to_string()).push(action);
        }
        url
    }

    /// `PUT …/user-identities/{kind}/{id}/connect`, one attempt: links the identity to the
    /// Drata user `user`, or unlinks it (`None`). Any 2xx means Drata applied it.
    pub(crate) async fn connect(
        &self,
        id: u64,
        user: Option<u64>,
    ) -> Result<(u16, Identity), Failure> {
        let body = serde_json::to_vec(&ConnectBody { user_id: user }).unwrap_or_default();
        self.put_action(id, "connect", body).await
    }

    /// `PUT …/user-identities/{kind}/{id}/toggle`, one attempt: turns one access toggle
    /// (`toggleField`) on or off. Any 2xx means Drata applied it.
    pub(crate) async fn toggle(
        &self,
        id: u64,
        toggle_field: &str,
        on: bool,
    ) -> Result<(u16, Identity), Failure> {
        let body = serde_json::to_vec(&ToggleBody {
            toggle: on,
            toggle_field,
        })
        .unwrap_or_default();
        self.put_action(id, "toggle", body).await
    }

    /// `PUT …/{id}/{action}` with a JSON body, one attempt; the answer's identity is read
    /// best-effort and scrubbed of the key.
    async fn put_action(
        &self,
        id: u64,
        action: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Identity), Failure> {
        let request = self
            .http
            .put(self.action_url(id, action))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        let answer = async {
            let (status, headers, bytes) = self.send(request).await?;
            check_status(status, &headers, &bytes, |t| self.key.redact(t))?;
            let mut identity = Identity::from_answer(&bytes);
            identity.scrub(&self.key);
            Ok((status.as_u16(), identity))
        };
        answer.await.map_err(|failure| self.scrubbed(failure))
    }

    /// `GET …/users?page=P&limit=L`, one attempt: the people identities are linked to.
    pub(crate) async fn users_page(
        &self,
        page: u64,
        limit: u64,
    ) -> Result<(u16, UserPage), Failure> {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("users");
        }
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("limit", &limit.to_string());
        let answer = async {
            let (status, headers, bytes) = self.send(self.http.get(url)).await?;
            check_status(status, &headers, &bytes, |t| self.key.redact(t))?;
            match UserPage::from_body(&bytes) {
                Some(mut page) => {
                    for user in &mut page.users {
                        user.email = self.key.redact(&user.email);
                    }
                    Ok((status.as_u16(), page))
                }
                None => Err(self.unreadable(status, "a page of users", &bytes)),
            }
        };
        answer.await.map_err(|failure| self.scrubbed(failure))
    }

    /// `PUT …/user-identities/{kind}/{id}/service-account`, one attempt. Any 2xx means
    /// Drata applied it, whatever the body holds: the identity is read best-effort.
    pub(crate) async fn set_service_account(
        &self,
        id: u64,
        flag: bool,
        reason: &str,
    ) -> Result<(u16, Identity), Failure> {
        let body = serde_json::to_vec(&UpdateBody {
            service_account: flag,
            service_account_reason: reason,
        })
        .unwrap_or_default();
        let request = self
            .http
            .put(self.identity_url(id))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        let answer = async {
            let (status, headers, bytes) = self.send(request).await?;
            check_status(status, &headers, &bytes, |t| self.key.redact(t))?;
            let mut identity = Identity::from_answer(&bytes);
            identity.scrub(&self.key);
            Ok((status.as_u16(), identity))
        };
        answer.await.map_err(|failure| self.scrubbed(failure))
    }

    /// `GET …/user-identities/{kind}?page=P&limit=L`, one attempt.
    pub(crate) async fn list_page(&self, page: u64, limit: u64) -> Result<(u16, Page), Failure> {
        let mut url = self.collection_url();
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("limit", &limit.to_string());
        let answer = async {
            let (status, headers, bytes) = self.send(self.http.get(url)).await?;
            check_status(status, &headers, &bytes, |t| self.key.redact(t))?;
            match Page::from_body(&bytes) {
                Some(mut page) => {
                    page.identities.iter_mut().for_each(|i| i.scrub(&self.key));
                    Ok((status.as_u16(), page))
                }
                None => Err(self.unreadable(status, "a page of identities", &bytes)),
            }
        };
        answer.await.map_err(|failure| self.scrubbed(failure))
    }

    /// A 2xx whose body is not what was asked for: `what` names it ("a page of users").
    fn unreadable(&self, status: StatusCode, what: &str, bytes: &[u8]) -> Failure {
        Failure {
            cause: Cause::Unreadable(status.as_u16()),
            retry_after: None,
            message: format!(
                "HTTP {status}: the answer is not {what}: {}",
                excerpt(&self.key.redact(&String::from_utf8_lossy(bytes)))
            ),
        }
    }

    fn scrubbed(&self, mut failure: Failure) -> Failure {
        let mut message = self.key.redact(&failure.message);
        for secret in &self.proxy_secrets.0 {
            message = redact_secret(&message, secret);
        }
        failure.message = message;
        failure
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), Failure> {
        if let Some(failure) = self.proxy.as_ref().and_then(ProxySetting::unsupported) {
            return Err(failure);
        }
        let response = request.send().await.map_err(|e| {
            let variable = self.proxy.as_ref().map_or("HTTPS_PROXY", |p| p.variable);
            transport_failure(e, &self.host, variable)
        })?;
        read_answer(response).await
    }
}

/// The user information of proxy URLs in the environment (`user:password`, and the
/// password alone, as written and percent-decoded): never to be shown.
fn proxy_secrets_from_env() -> Vec<String> {
    let names = [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ];
    proxy_secrets(names.iter().filter_map(|name| std::env::var(name).ok()))
}

/// The secrets of proxy URLs, longest first, so that `user:password` is scrubbed whole
/// before `password` alone.
fn proxy_secrets(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut secrets = Vec::new();
    for value in values {
        let with_scheme = if value.contains("://") {
            value
        } else {
            format!("http://{value}")
        };
        let Ok(url) = Url::parse(&with_scheme) else {
            continue;
        };
        if let Some(password) = url.password() {
            secrets.push(format!("{}:{password}", url.username()));
            secrets.push(percent_decoded(password));
            secrets.push(password.to_owned());
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort();
    secrets.dedup();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

/// `%XX` sequences decoded, as a proxy URL's password is sent; others kept as written.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status, headers and body (up to [`MAX_BODY_BYTES`]) of an answer.
async fn read_answer(
    mut response: reqwest::Response,
) -> Result<(StatusCode, HeaderMap, Vec<u8>), Failure> {
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
            // The status says what happened; a body cut short is read as far as it came.
            Err(_) => break,
        }
    }
    Ok((status, headers, bytes))
}

/// Timeouts, refused connections, resets, described without the URL; a refused
/// certificate is told apart, naming `host`, the problem and the fix, and so is a proxy
/// that refused its credentials, naming the variable `proxy_variable` to fix.
fn transport_failure(error: reqwest::Error, host: &str, proxy_variable: &str) -> Failure {
    let error = error.without_url();
    // The tunnel's error type is private to the HTTP stack: its words are all there is.
    if error_chain(&error).contains("proxy authorization required") {
        return Failure {
            cause: Cause::Proxy,
            retry_after: None,
            message: format!(
                "the proxy refused its credentials (HTTP 407 Proxy Authentication Required): \
                 check the proxy user and password in {proxy_variable}"
            ),
        };
    }
    if let Some(cert) = certificate_error(&error) {
        let (problem, message) = certificate_failure(host, &cert);
        return Failure {
            cause: Cause::Certificate(problem),
            retry_after: None,
            message,
        };
    }
    let what = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        format!("cannot connect: {}", error_chain(&error))
    } else {
        format!("connection error: {}", error_chain(&error))
    };
    Failure {
        cause: Cause::Transport,
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

/// A 2xx passes; anything else is a failure carrying the status, the API's message
/// and the `Retry-After` the server asked for.
/// What the server sent is decoded first (JSON, and `redact` undoes escapes), then
/// `redact` removes the key, then it is shortened: a key still escaped would not be
/// found, and one cut in half by a shortening neither.
fn check_status(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    redact: impl Fn(&str) -> String,
) -> Result<(), Failure> {
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    let detail = if status.is_redirection() {
        let location = headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("nowhere");
        format!(
            "redirect to {} not followed (check --base-url)",
            excerpt(&redact(location))
        )
    } else {
        api_message(body, redact)
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
        cause: Cause::Status(code),
        retry_after,
        message: one_line(message.trim()),
    })
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (relative to `now`).
/// A date in the past means "now".
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        // Not allowed by RFC 9110 but sent by some servers; clamp instead of refusing.
        if seconds.is_finite() && seconds >= 0.0 {
            return Some(Duration::from_secs_f64(seconds.min(86_400.0)));
        }
        return None;
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The API's `message` (a string or an array of strings), else an excerpt of the body;
/// decoded, then passed through `redact`, then shortened.
pub(crate) fn api_message(body: &[u8], redact: impl Fn(&str) -> String) -> String {
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
    let text = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            message: Message::One(text),
        }) => text,
        Ok(ErrorBody {
            message: Message::Many(list),
        }) => list.join("; "),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    excerpt(&redact(&text))
}

fn excerpt(text: &str) -> String {
    shorten(&one_line(text.trim()), EXCERPT_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_credentials_are_known_in_every_form_and_never_debug_printed() {
        let secrets = proxy_secrets(
            [
                "http://me:p%40ss-w0rd-long@proxy:3128".to_owned(),
                "proxy.corp:8080".to_owned(),
                "not a url".to_owned(),
            ]
            .into_iter(),
        );
        assert_eq!(
            secrets,
            vec!["me:p%40ss-w0rd-long", "p%40ss-w0rd-long", "p@ss-w0rd-long"]
        );
        let shown = format!("{:?}", ProxySecrets(secrets));
        assert!(!shown.contains("w0rd"), "{shown}");
        assert_eq!(percent_decoded("a%2Fb%zz%"), "a/b%zz%");
    }

    #[test]
    fn only_http_proxies_are_usable() {
        let socks = ProxySetting::of("HTTPS_PROXY", "socks5://me:pw@proxy:1080");
        let failure = socks.unsupported().unwrap();
        assert_eq!(failure.cause, Cause::Proxy);
        assert!(failure.message.contains("socks5://"), "{failure}");
        assert!(!failure.message.contains("pw@"), "{failure}");
        for usable in ["http://proxy:3128", "HTTPS://proxy", "proxy.corp:8080"] {
            assert!(ProxySetting::of("ALL_PROXY", usable)
                .unsupported()
                .is_none());
        }
    }

    #[test]
    fn api_messages_are_read_in_both_shapes() {
        assert_eq!(
            api_message(br#"{"message":"Not found"}"#, str::to_owned),
            "Not found"
        );
        assert_eq!(
            api_message(
                br#"{"message":["a must be x","b must be y"],"statusCode":400}"#,
                str::to_owned
            ),
            "a must be x; b must be y"
        );
        assert_eq!(
            api_message(b"<html>\nBad\ngateway</html>", str::to_owned),
            "<html> Bad gateway</html>"
        );
        assert_eq!(
            api_message(&[b'x'; 500], str::to_owned).chars().count(),
            EXCERPT_CHARS + 1
        );
    }

    #[test]
    fn only_2xx_passes_and_failures_keep_their_status() {
        let headers = HeaderMap::new();
        for ok in [200, 201, 204] {
            let status = StatusCode::from_u16(ok).unwrap();
            assert!(check_status(status, &headers, b"", str::to_owned).is_ok());
        }
        for code in [301, 400, 401, 404, 429, 500] {
            let failure = check_status(
                StatusCode::from_u16(code).unwrap(),
                &headers,
                b"{}",
                str::to_owned,
            )
            .unwrap_err();
            assert_eq!(failure.cause, Cause::Status(code));
            assert_eq!(failure.status(), Some(code));
        }
    }

    /// `key` with each character written as it is, JSON-escaped (`\u0068`) or
    /// percent-encoded, as `forms` picks (0, 1, 2 by character).
    fn encoded(key: &str, forms: &[u8]) -> String {
        key.chars()
            .zip(forms.iter().cycle())
            .map(|(c, form)| match form % 3 {
                0 => c.to_string(),
                1 => format!("\\u{:04x}", u32::from(c)),
                _ => format!("%{:02X}", u32::from(c)),
            })
            .collect()
    }

    /// Any run of 8 characters of `key` in `text`, as written or once decoded.
    fn leaks(text: &str, key: &str) -> bool {
        let plain: String = text.chars().collect();
        let decoded = crate::secret::scrub_key(&plain, key) != plain;
        let windows = key.as_bytes().windows(crate::secret::LEAK_CHARS);
        decoded
            || windows
                .map(|w| std::str::from_utf8(w).unwrap_or(""))
                .any(|w| text.contains(w))
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(KEY_CASES))]
        /// Keys at random places of an error message or a redirect, in any mix of
        /// encodings, inside or around the 200-character cut: never 8 characters of
        /// them in a row reach the message.
        #[test]
        fn no_piece_of_the_key_survives_an_echo(
            key in "[A-Za-z0-9_-]{16,48}",
            before in 0usize..260,
            after in 0usize..40,
            forms in proptest::collection::vec(0u8..3, 1..48),
            json_escaped_twice in proptest::bool::ANY,
            as_list in proptest::bool::ANY,
        ) {
            let api_key = ApiKey::new(&key).unwrap();
            let written = encoded(&key, &forms);
            let echo = format!("{}{written}{}", "X".repeat(before), "y".repeat(after));
            // Inside a JSON string, `\u0068` is decoded by the parser; written as
            // `\\u0068` it reaches the message still escaped.
            let in_json = if json_escaped_twice { echo.replace('\\', "\\\\") } else { echo.clone() };
            let body = if as_list {
                format!(r#"{{"message":["first","{in_json}"]}}"#)
            } else {
                format!(r#"{{"message":"{in_json}"}}"#)
            };
            for (status, headers, body) in [
                (400, HeaderMap::new(), body.into_bytes()),
                (502, HeaderMap::new(), echo.clone().into_bytes()),
                (307, location(&echo), Vec::new()),
            ] {
                let failure = check_status(
                    StatusCode::from_u16(status).unwrap(),
                    &headers,
                    &body,
                    |t| api_key.redact(t),
                )
                .unwrap_err();
                proptest::prop_assert!(!leaks(&failure.message, &key), "{}", failure.message);
            }
        }
    }

    /// Cases of the property test above.
    const KEY_CASES: u32 = 256;

    fn location(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("https://elsewhere.example/cb?k={value}");
        headers.insert(header::LOCATION, HeaderValue::from_str(&value).unwrap());
        headers
    }

    #[test]
    fn the_escaped_echo_of_the_review_is_scrubbed() {
        let key = "holdout-abcdefghijklmnop";
        let api_key = ApiKey::new(key).unwrap();
        let body = format!(r#"{{"message":"{}\u0068{}"}}"#, "X".repeat(176), &key[1..]);
        let failure = check_status(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            body.as_bytes(),
            |t| api_key.redact(t),
        )
        .unwrap_err();
        assert!(
            failure.message.ends_with("X<redacted>"),
            "{}",
            failure.message
        );
        let failure = check_status(
            StatusCode::TEMPORARY_REDIRECT,
            &location("%68oldout-abcdefghijklmnop"),
            b"",
            |t| api_key.redact(t),
        )
        .unwrap_err();
        assert!(
            failure.message.contains("?k=<redacted>"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 29 Nov 2026 01:00:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 29 Nov 2026 01:00:42 GMT", now),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            parse_retry_after("Sun, 29 Nov 2026 00:59:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }
}
