//! A local stand-in for the Drata public API: the identity endpoints (listing,
//! service-account PUT, `connect`), seeded identities (some linked to a user, some not),
//! a bearer check, validation like the real API, a leaky-bucket rate limit
//! answering 429 with `Retry-After`, and injected faults.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::model::{utf16_len, IdentityKind, Rate, MAX_REASON_UNITS};

mod access;
mod evidence;
pub use evidence::StoredEvidence;

/// The simulator keeps every identity in memory (two kinds): keep that bounded.
pub const MAX_IDENTITIES: u64 = 10_000_000;

/// The simulator's settings.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    pub listen: SocketAddr,
    pub identities: u64,
    pub token: String,
    pub rate_limit: Rate,
    /// How many requests the leaky bucket holds before it answers 429.
    pub bucket_capacity: u32,
    /// Share of PUTs answered 500.
    pub error_rate: f64,
    pub latency: Duration,
    /// Each request's latency is drawn evenly from `latency` ± this (a server whose answers
    /// spread).
    pub latency_spread: Duration,
    /// Share of requests whose connection is closed without an answer.
    pub drop_rate: f64,
    /// Share of requests answered only after `slow_delay`.
    pub slow_rate: f64,
    pub slow_delay: Duration,
    /// Requests worked on at once; beyond that, answered 503 (a server that admits few).
    pub max_in_flight: Option<u64>,
    /// When set, requests are worked on one at a time, each taking this long: the latency
    /// grows with the requests in flight (a server that queues).
    pub queue_delay: Duration,
    pub seed: u64,
    /// Evidence files larger than this are answered 413.
    pub evidence_max_bytes: u64,
    /// The first N evidence POSTs are stored, then answered only after `slow_delay`
    /// (a timeout for the client: the item exists though it saw no answer).
    pub evidence_stalled_posts: u64,
    /// No workspace is marked primary.
    pub no_primary_workspace: bool,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            identities: 1000,
            token: "sim-token".to_owned(),
            // Drata's limit: 500 requests per minute per IP.
            rate_limit: Rate::Limited {
                count: std::num::NonZeroU32::new(500).unwrap_or(std::num::NonZeroU32::MIN),
                per: Duration::from_secs(60),
            },
            bucket_capacity: 5,
            error_rate: 0.0,
            latency: Duration::ZERO,
            latency_spread: Duration::ZERO,
            drop_rate: 0.0,
            slow_rate: 0.0,
            // Beyond the client's default 30 s timeout.
            slow_delay: Duration::from_secs(35),
            max_in_flight: None,
            queue_delay: Duration::ZERO,
            seed: 1,
            evidence_max_bytes: 25 * 1024 * 1024,
            evidence_stalled_posts: 0,
            no_primary_workspace: false,
        }
    }
}

const FIRST_NAMES: [&str; 10] = [
    "alice", "bruno", "chen", "dana", "emeka", "farah", "goran", "hana", "ivan", "julia",
];
const LAST_NAMES: [&str; 10] = [
    "nguyen", "okafor", "smith", "tanaka", "garcia", "kowalski", "haddad", "larsen", "patel",
    "rossi",
];
const BOT_WORDS: [&str; 5] = ["deploy", "ci", "backup", "terraform", "monitor"];
/// Usernames of the automation accounts nobody marked yet (`id % 50 == 44`, not a
/// multiple of 7): what `export` should suggest.
const UNMARKED_BOT_NAMES: [&str; 5] = [
    "deploy-bot",
    "ci-runner",
    "github-actions",
    "terraform-ci",
    "backup-bot",
];
const SEEDED_AT: &str = "2026-01-15T09:30:00.000Z";
/// When the identities the simulator shows as disconnected (`id % 97 == 0`) went away.
const DISCONNECTED_AT: &str = "2026-09-30T17:00:00.000Z";

/// When an identity was first seen: a day of 2025 from its id, deterministic.
fn connected_at(id: u64) -> String {
    let day = id % 28 + 1;
    let month = (id / 28) % 12 + 1;
    format!("2025-{month:02}-{day:02}T08:00:00.000Z")
}
const SEEDED_REASON: &str = "Seeded: automation account";

/// What the simulator counted; served at `/_sim/stats`.
#[derive(Debug, Default, Serialize)]
pub struct SimStats {
    pub requests: AtomicU64,
    pub puts: AtomicU64,
    /// PUTs answered 200: the updates really applied.
    pub applied: AtomicU64,
    /// `PUT …/connect` requests received, and those answered 200.
    pub connects: AtomicU64,
    pub links_applied: AtomicU64,
    /// `PUT …/toggle` requests received, and those answered 200.
    pub toggles: AtomicU64,
    pub toggles_applied: AtomicU64,
    pub lists: AtomicU64,
    pub rate_limited: AtomicU64,
    pub injected_errors: AtomicU64,
    pub unauthorized: AtomicU64,
    pub bad_requests: AtomicU64,
    pub not_found: AtomicU64,
    /// Connections closed without an answer (`--drop-rate`).
    pub dropped: AtomicU64,
    /// Answers held back by `--slow-ms` (`--slow-rate`).
    pub slowed: AtomicU64,
    /// `POST …/evidence-library` requests received.
    pub evidence_posts: AtomicU64,
    /// Requests answered 503 because `--max-in-flight` were being worked on.
    pub overloaded: AtomicU64,
    /// Microseconds from the simulator's start to the first request received (0 before
    /// any); with `last_request_us` and `requests`, the request rate the server saw.
    pub first_request_us: AtomicU64,
    /// Microseconds from the simulator's start to the last request received.
    pub last_request_us: AtomicU64,
    /// The same for PUTs alone: the rate of updates, without the listing reads around them.
    pub first_put_us: AtomicU64,
    pub last_put_us: AtomicU64,
    /// The most requests worked on at once: shows whether a listing was read a page at a
    /// time or several pages together.
    pub max_in_flight: AtomicU64,
}

#[derive(Debug, Clone, Default)]
struct StoredIdentity {
    service_account_at: Option<String>,
    reason: Option<String>,
    /// The Drata user (a person) it is linked to.
    user: Option<u64>,
    /// When each access toggle was turned on (`model::Access` order); `None` when off.
    access: [Option<String>; 4],
    applied_puts: u32,
}

struct LeakyBucket {
    level: f64,
    last: Instant,
    per_second: f64,
    capacity: f64,
}

impl LeakyBucket {
    /// Admits a request, or says how long until one fits.
    fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        let leaked = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.level = (self.level - leaked).max(0.0);
        self.last = now;
        if self.level + 1.0 <= self.capacity {
            self.level += 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (self.level + 1.0 - self.capacity) / self.per_second,
            ))
        }
    }
}

struct Sim {
    config: SimulatorConfig,
    started: Instant,
    stats: Arc<SimStats>,
    infrastructure: Mutex<Vec<StoredIdentity>>,
    version_control: Mutex<Vec<StoredIdentity>>,
    bucket: Option<Mutex<LeakyBucket>>,
    rng: Mutex<fastrand::Rng>,
    /// The Evidence Library, every workspace's items in the order they were stored.
    evidence: Mutex<Vec<StoredEvidence>>,
    /// Requests being worked on (`--max-in-flight`).
    in_flight: AtomicU64,
    /// Held while a request is worked on (`--queue-ms`).
    queue: tokio::sync::Mutex<()>,
}

type Shared = Arc<Sim>;

/// A simulator serving in the background; stops when dropped.
pub struct RunningSimulator {
    pub addr: SocketAddr,
    pub stats: Arc<SimStats>,
    sim: Shared,
    shutdown: Option<oneshot::Sender<()>>,
}

impl RunningSimulator {
    /// The base URL to give the client: `http://ADDR/public`.
    pub fn base_url(&self) -> String {
        format!("http://{}/public", self.addr)
    }

    /// Applied PUTs per infrastructure id, for ids updated at least once.
    pub fn applied(&self) -> std::collections::HashMap<u64, u32> {
        self.sim.applied_counts()
    }

    /// Every item of the Evidence Library, with its fields as they were received.
    pub fn evidence(&self) -> Vec<StoredEvidence> {
        self.sim
            .evidence
            .lock()
            .map(|library| library.clone())
            .unwrap_or_default()
    }
}

/// A request answered by closing the connection (`--drop-rate`).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// Serves one connection; a `Dropped` error from the service makes hyper close it
/// without an answer, which is how `--drop-rate` looks to a client.
async fn serve_connection(stream: tokio::net::TcpStream, app: Router, sim: Shared) {
    use tower_service::Service;
    let service =
        hyper::service::service_fn(move |request: axum::http::Request<hyper::body::Incoming>| {
            let mut app = app.clone();
            let sim = Arc::clone(&sim);
            async move {
                if !request.uri().path().starts_with("/_sim/") {
                    if sim.chance(sim.config.drop_rate) {
                        sim.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        return Err(Dropped);
                    }
                    if sim.chance(sim.config.slow_rate) {
                        sim.stats.slowed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(sim.config.slow_delay).await;
                    }
                }
                match app.call(request.map(axum::body::Body::new)).await {
                    Ok(response) => Ok(response),
                    Err(never) => match never {},
                }
            }
        });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }
}

/// The seeded state: every 7th identity a marked automation account; every 50th
/// (`id % 50 == 44`) an automation account nobody marked; the people linked to their
/// Drata user, but for `id % 50 == 19` (people nobody linked yet).
fn seeded(count: u64) -> Vec<StoredIdentity> {
    (1..=count)
        .map(|id| StoredIdentity {
            access: access::seeded(id),
            ..seeded_identity(id)
        })
        .collect()
}

/// Identity `id` as seeded, but for its access toggles.
fn seeded_identity(id: u64) -> StoredIdentity {
    if id.is_multiple_of(7) {
        StoredIdentity {
            service_account_at: Some(SEEDED_AT.to_owned()),
            reason: Some(SEEDED_REASON.to_owned()),
            ..StoredIdentity::default()
        }
    } else if id % 50 == 44 || id % 50 == 19 {
        StoredIdentity::default()
    } else {
        StoredIdentity {
            user: Some(person_of(id) + 1),
            ..StoredIdentity::default()
        }
    }
}

/// The person behind identity `id`: three identities each.
fn person_of(id: u64) -> u64 {
    (id - 1) / 3
}

/// The first name, last name and email of person `person` (Drata user `person + 1`).
pub(super) fn person(person: u64) -> (&'static str, &'static str, String) {
    let first = FIRST_NAMES[(person % 10) as usize];
    let last = LAST_NAMES[((person / 10) % 10) as usize];
    let suffix = match person / 100 {
        0 => String::new(),
        n => n.to_string(),
    };
    (first, last, format!("{first}.{last}{suffix}@example.com"))
}

/// A Drata user as an identity's `user` shows it.
fn user_json(user: u64) -> Value {
    let (first, last, email) = person(user - 1);
    json!({ "id": user, "email": email, "firstName": first, "lastName": last })
}

/// Binds and serves in the background.
pub async fn start(config: SimulatorConfig) -> std::io::Result<RunningSimulator> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(SimStats::default());
    let bucket = match config.rate_limit {
        Rate::Unlimited => None,
        Rate::Limited { count, per } => Some(Mutex::new(LeakyBucket {
            level: 0.0,
            last: Instant::now(),
            per_second: count.get() as f64 / per.as_secs_f64(),
            capacity: config.bucket_capacity.max(1) as f64,
        })),
    };
    let sim = Arc::new(Sim {
        infrastructure: Mutex::new(seeded(config.identities)),
        version_control: Mutex::new(seeded(config.identities)),
        rng: Mutex::new(fastrand::Rng::with_seed(config.seed)),
        evidence: Mutex::new(Vec::new()),
        bucket,
        stats: Arc::clone(&stats),
        config,
        started: Instant::now(),
        in_flight: AtomicU64::new(0),
        queue: tokio::sync::Mutex::new(()),
    });
    let app = evidence::routes(Router::new())
        .route("/public/user-identities/{kind}", get(list))
        .route(
            "/public/user-identities/{kind}/{id}/service-account",
            put(update),
        )
        .route("/public/user-identities/{kind}/{id}/connect", put(connect))
        .route(
            "/public/user-identities/{kind}/{id}/toggle",
            put(access::toggle),
        )
        // Also without the `/public` prefix, for a base URL given as the bare host.
        .route("/user-identities/{kind}", get(list))
        .route("/user-identities/{kind}/{id}/service-account", put(update))
        .route("/user-identities/{kind}/{id}/connect", put(connect))
        .route("/user-identities/{kind}/{id}/toggle", put(access::toggle))
        .route("/_sim/stats", get(stats_handler))
        .route("/_sim/applied", get(applied_handler))
        .with_state(Arc::clone(&sim));
    let (stop, mut stopped) = oneshot::channel::<()>();
    let shared = Arc::clone(&sim);
    tokio::spawn(async move {
        // Dropping the set when the loop ends closes every connection.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        connections.spawn(serve_connection(stream, app.clone(), Arc::clone(&shared)));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the simulator could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    Ok(RunningSimulator {
        addr,
        stats,
        sim,
        shutdown: Some(stop),
    })
}

fn error(status: StatusCode, message: Value) -> Response {
    let body = json!({ "statusCode": status.as_u16(), "message": message });
    (status, Json(body)).into_response()
}

fn parse_kind(segment: &str) -> Option<IdentityKind> {
    match segment {
        "infrastructure" => Some(IdentityKind::Infrastructure),
        "version-control" => Some(IdentityKind::VersionControl),
        _ => None,
    }
}

impl Sim {
    /// What every `PUT` of an identity's action goes through before its body is read: the
    /// gate, its count, the kind in the path, and `--error-rate`.
    async fn admit_put(
        &self,
        headers: &HeaderMap,
        kind: &str,
        counter: &AtomicU64,
    ) -> Result<IdentityKind, Response> {
        self.gate(headers).await?;
        counter.fetch_add(1, Ordering::Relaxed);
        let Some(kind) = parse_kind(kind) else {
            return Err(error(StatusCode::NOT_FOUND, json!("Cannot PUT this path")));
        };
        if self.chance(self.config.error_rate) {
            self.stats.injected_errors.fetch_add(1, Ordering::Relaxed);
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!("Internal server error"),
            ));
        }
        Ok(kind)
    }

    /// The API's 404 for an id it does not hold.
    fn identity_not_found(&self, id: u64) -> Response {
        self.stats.not_found.fetch_add(1, Ordering::Relaxed);
        error(
            StatusCode::NOT_FOUND,
            json!(format!("User identity with id {id} was not found")),
        )
    }

    fn store(&self, kind: IdentityKind) -> &Mutex<Vec<StoredIdentity>> {
        match kind {
            IdentityKind::Infrastructure => &self.infrastructure,
            IdentityKind::VersionControl => &self.version_control,
        }
    }

    /// Rate limit, then the bearer check, then latency: the order a gateway applies them.
    async fn gate(&self, headers: &HeaderMap) -> Result<(), Response> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let at = (self.started.elapsed().as_micros() as u64).max(1);
        let _ = self.stats.first_request_us.compare_exchange(
            0,
            at,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.stats.last_request_us.fetch_max(at, Ordering::Relaxed);
        if let Some(bucket) = &self.bucket {
            let admitted = bucket
                .lock()
                .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, json!("lock")))?
                .admit(Instant::now());
            if let Err(wait) = admitted {
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
                let mut response = error(StatusCode::TOO_MANY_REQUESTS, json!("Too Many Requests"));
                if let Ok(value) = seconds.to_string().parse() {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                return Err(response);
            }
        }
        let expected = format!("Bearer {}", self.config.token);
        let authorized = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected);
        if !authorized {
            self.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
            return Err(error(StatusCode::UNAUTHORIZED, json!("Unauthorized")));
        }
        self.work().await
    }

    /// The time a request takes: the latency, one at a time with `--queue-ms`, refused
    /// with a 503 beyond `--max-in-flight`.
    async fn work(&self) -> Result<(), Response> {
        let at_once = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.stats
            .max_in_flight
            .fetch_max(at_once, Ordering::Relaxed);
        if self.config.max_in_flight.is_some_and(|max| at_once > max) {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.stats.overloaded.fetch_add(1, Ordering::Relaxed);
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                json!("Service Unavailable"),
            ));
        }
        let latency = self.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if !self.config.queue_delay.is_zero() {
            let _one_at_a_time = self.queue.lock().await;
            tokio::time::sleep(self.config.queue_delay).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }

    fn render(&self, kind: IdentityKind, id: u64, stored: &StoredIdentity) -> Value {
        let (first, last, email) = person(person_of(id));
        let (connection_id, client_type, alias) = match (kind, (id - 1) % 3) {
            (IdentityKind::Infrastructure, 0) => (1, "AWS", "aws-prod"),
            (IdentityKind::Infrastructure, 1) => (2, "GCP", "gcp-main"),
            (IdentityKind::Infrastructure, _) => (3, "AZURE", "azure-corp"),
            (IdentityKind::VersionControl, 0) => (4, "GITHUB", "github-org"),
            (IdentityKind::VersionControl, _) => (5, "GITLAB", "gitlab-org"),
        };
        let is_bot = id.is_multiple_of(7);
        // Automation accounts nobody marked yet, and people not linked to a Drata user:
        // what a review starting from `export` has to find.
        let unmarked_bot = !is_bot && id % 50 == 44;
        let (username, email) = if is_bot || unmarked_bot {
            let username = if is_bot {
                format!("svc-{}-{id}", BOT_WORDS[(id % 5) as usize])
            } else {
                format!("{}-{id}", UNMARKED_BOT_NAMES[((id / 50) % 5) as usize])
            };
            (username, Value::Null)
        } else {
            let username = email.split('@').next().unwrap_or_default().to_owned();
            (username, json!(email))
        };
        let user = stored.user.map_or(Value::Null, user_json);
        let human = !is_bot && !unmarked_bot;
        let mut rendered = json!({
            "id": id,
            "identityId": format!("{client_type}-{:012}", id * 7919),
            "username": username,
            "email": email,
            "firstName": if human { json!(first) } else { Value::Null },
            "lastName": if human { json!(last) } else { Value::Null },
            "serviceAccount": stored.service_account_at,
            "serviceAccountReason": stored.reason,
            "hasMfa": human && !id.is_multiple_of(4),
            "isContractor": false,
            "user": user,
            "connection": {
                "id": connection_id,
                "clientType": client_type,
                "clientAlias": alias,
                "state": "ACTIVE",
            },
            "connectedAt": connected_at(id),
            "disconnectedAt": if id.is_multiple_of(97) { json!(DISCONNECTED_AT) } else { Value::Null },
            "createdAt": "2025-06-01T12:00:00.000Z",
            "updatedAt": stored.service_account_at.clone().unwrap_or_else(|| "2025-06-01T12:00:00.000Z".to_owned()),
        });
        access::render(kind, stored, &mut rendered);
        rendered
    }

    /// The latency of one request: `--latency`, spread evenly by `--latency-spread`.
    fn latency(&self) -> Duration {
        let (mid, spread) = (self.config.latency, self.config.latency_spread);
        if spread.is_zero() {
            return mid;
        }
        let low = mid.saturating_sub(spread).as_micros() as u64;
        let high = (mid + spread).as_micros() as u64;
        let micros = self.rng.lock().map_or(low, |mut rng| rng.u64(low..=high));
        Duration::from_micros(micros)
    }

    /// True with probability `share`, from the seeded generator.
    fn chance(&self, share: f64) -> bool {
        share > 0.0 && self.rng.lock().is_ok_and(|mut rng| rng.f64() < share)
    }

    /// How many Drata users there are: one per three identities.
    fn users(&self) -> u64 {
        self.config.identities.div_ceil(3)
    }

    fn applied_counts(&self) -> std::collections::HashMap<u64, u32> {
        self.infrastructure
            .lock()
            .map(|store| {
                store
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.applied_puts > 0)
                    .map(|(index, s)| (index as u64 + 1, s.applied_puts))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Checks a PUT body as the real API does; the message list mirrors its validation.
fn validate_body(body: &[u8]) -> Result<(bool, String), Vec<String>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| vec!["the body must be a JSON object".to_owned()])?;
    let mut problems = Vec::new();
    let flag = value.get("serviceAccount").and_then(Value::as_bool);
    if flag.is_none() {
        problems.push("serviceAccount must be a boolean value".to_owned());
    }
    let reason = value.get("serviceAccountReason").and_then(Value::as_str);
    match reason {
        None => problems.push("serviceAccountReason must be a string".to_owned()),
        Some(text) if utf16_len(text) > MAX_REASON_UNITS => problems.push(format!(
            "serviceAccountReason must be shorter than or equal to {MAX_REASON_UNITS} characters"
        )),
        Some(_) => {}
    }
    match (flag, reason, problems.is_empty()) {
        (Some(flag), Some(reason), true) => Ok((flag, reason.to_owned())),
        _ => Err(problems),
    }
}

async fn update(
    State(sim): State<Shared>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let at = (sim.started.elapsed().as_micros() as u64).max(1);
    let _ = sim
        .stats
        .first_put_us
        .compare_exchange(0, at, Ordering::Relaxed, Ordering::Relaxed);
    sim.stats.last_put_us.fetch_max(at, Ordering::Relaxed);
    let kind = match sim.admit_put(&headers, &kind, &sim.stats.puts).await {
        Ok(kind) => kind,
        Err(response) => return response,
    };
    let Ok(id) = id.parse::<u64>() else {
        sim.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
        return error(StatusCode::BAD_REQUEST, json!(["id must be a number"]));
    };
    let (flag, reason) = match validate_body(&body) {
        Ok(parsed) => parsed,
        Err(problems) => {
            sim.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            return error(StatusCode::BAD_REQUEST, json!(problems));
        }
    };
    let Ok(mut store) = sim.store(kind).lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, json!("lock"));
    };
    let Some(stored) = id
        .checked_sub(1)
        .and_then(|index| store.get_mut(index as usize))
    else {
        return sim.identity_not_found(id);
    };
    if flag {
        if stored.service_account_at.is_none() {
            stored.service_account_at =
                Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string());
        }
        stored.reason = Some(reason);
    } else {
        stored.service_account_at = None;
        stored.reason = None;
    }
    stored.applied_puts += 1;
    sim.stats.applied.fetch_add(1, Ordering::Relaxed);
    let body = sim.render(kind, id, stored);
    (StatusCode::OK, Json(body)).into_response()
}

/// Checks a `connect` body as the real API does: `{"userId": <number>}` or
/// `{"userId": null}`.
fn validate_connect(body: &[u8]) -> Result<Option<u64>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| "the body must be a JSON object".to_owned())?;
    match value.get("userId") {
        Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => number
            .as_u64()
            .filter(|id| *id >= 1)
            .map(Some)
            .ok_or_else(|| "userId must be a positive number".to_owned()),
        _ => Err("userId must be a number or null".to_owned()),
    }
}

/// `PUT …/user-identities/{kind}/{id}/connect`: links the identity to a Drata user, or
/// unlinks it. Drata refuses to link an identity marked as a service account.
async fn connect(
    State(sim): State<Shared>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let kind = match sim.admit_put(&headers, &kind, &sim.stats.connects).await {
        Ok(kind) => kind,
        Err(response) => return response,
    };
    let (Ok(id), Ok(user)) = (id.parse::<u64>(), validate_connect(&body)) else {
        sim.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
        let problem = validate_connect(&body).err();
        return error(
            StatusCode::BAD_REQUEST,
            json!([problem.unwrap_or_else(|| "id must be a number".to_owned())]),
        );
    };
    if user.is_some_and(|user| user > sim.users()) {
        sim.stats.not_found.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::NOT_FOUND,
            json!(format!("User with id {} was not found", user.unwrap_or(0))),
        );
    }
    let Ok(mut store) = sim.store(kind).lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, json!("lock"));
    };
    let Some(stored) = id
        .checked_sub(1)
        .and_then(|index| store.get_mut(index as usize))
    else {
        return sim.identity_not_found(id);
    };
    if user.is_some() && stored.service_account_at.is_some() {
        sim.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::BAD_REQUEST,
            json!(["A service account cannot be linked to a user: unmark it first"]),
        );
    }
    stored.user = user;
    stored.applied_puts += 1;
    sim.stats.links_applied.fetch_add(1, Ordering::Relaxed);
    let body = sim.render(kind, id, stored);
    (StatusCode::OK, Json(body)).into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    page: Option<String>,
    limit: Option<String>,
}

async fn list(
    State(sim): State<Shared>,
    Path(kind): Path<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = sim.gate(&headers).await {
        return response;
    }
    sim.stats.lists.fetch_add(1, Ordering::Relaxed);
    let Some(kind) = parse_kind(&kind) else {
        return error(StatusCode::NOT_FOUND, json!("Cannot GET this path"));
    };
    let page = query.page.as_deref().unwrap_or("1").parse::<u64>();
    let limit = query.limit.as_deref().unwrap_or("20").parse::<u64>();
    let (Ok(page @ 1..), Ok(limit @ 1..=50)) = (page, limit) else {
        sim.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::BAD_REQUEST,
            json!(["page must be at least 1", "limit must be between 1 and 50"]),
        );
    };
    let Ok(store) = sim.store(kind).lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, json!("lock"));
    };
    let total = store.len() as u64;
    let start = (page - 1).saturating_mul(limit);
    let data: Vec<Value> = (start..total.min(start.saturating_add(limit)))
        .map(|index| sim.render(kind, index + 1, &store[index as usize]))
        .collect();
    Json(json!({ "data": data, "page": page, "limit": limit, "total": total })).into_response()
}

async fn stats_handler(State(sim): State<Shared>) -> Response {
    Json(&*sim.stats).into_response()
}

/// `{"id": applied PUT count}` for every infrastructure identity updated at least once.
async fn applied_handler(State(sim): State<Shared>) -> Response {
    let applied: serde_json::Map<String, Value> = sim
        .applied_counts()
        .into_iter()
        .map(|(id, count)| (id.to_string(), json!(count)))
        .collect();
    Json(applied).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_spread_evenly_around_the_latency() {
        let config = SimulatorConfig {
            latency: Duration::from_millis(5_000),
            latency_spread: Duration::from_millis(2_500),
            ..SimulatorConfig::default()
        };
        let sim = Sim {
            infrastructure: Mutex::new(Vec::new()),
            version_control: Mutex::new(Vec::new()),
            rng: Mutex::new(fastrand::Rng::with_seed(config.seed)),
            evidence: Mutex::new(Vec::new()),
            bucket: None,
            stats: Arc::new(SimStats::default()),
            config,
            started: Instant::now(),
            in_flight: AtomicU64::new(0),
            queue: tokio::sync::Mutex::new(()),
        };
        let latencies: Vec<Duration> = (0..1_000).map(|_| sim.latency()).collect();
        let (low, high) = (Duration::from_millis(2_500), Duration::from_millis(7_500));
        assert!(latencies.iter().all(|l| (low..=high).contains(l)));
        let below_4s = latencies
            .iter()
            .filter(|l| **l < Duration::from_secs(4))
            .count();
        assert!(
            (250..=350).contains(&below_4s),
            "{below_4s} of 1000 under 4 s"
        );
    }

    #[test]
    fn bodies_are_validated_like_the_api() {
        assert_eq!(
            validate_body(br#"{"serviceAccount":true,"serviceAccountReason":"ci"}"#),
            Ok((true, "ci".to_owned()))
        );
        assert!(
            validate_body(br#"{"serviceAccount":"true","serviceAccountReason":"ci"}"#).is_err()
        );
        assert!(validate_body(br#"{"serviceAccount":true}"#).is_err());
        let long = format!(
            r#"{{"serviceAccount":true,"serviceAccountReason":"{}"}}"#,
            "😀".repeat(15_001)
        );
        assert!(validate_body(long.as_bytes()).is_err());
        assert!(validate_body(b"not json").is_err());
    }

    #[test]
    fn connect_bodies_are_validated_like_the_api() {
        assert_eq!(validate_connect(br#"{"userId":3}"#), Ok(Some(3)));
        assert_eq!(validate_connect(br#"{"userId":null}"#), Ok(None));
        for wrong in [
            &br#"{"userId":"3"}"#[..],
            br#"{"userId":-1}"#,
            br#"{"userId":0}"#,
            br#"{"userId":1.5}"#,
            br#"{}"#,
            b"not json",
        ] {
            assert!(validate_connect(wrong).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn the_bucket_leaks_at_its_rate() {
        let start = Instant::now();
        let mut bucket = LeakyBucket {
            level: 0.0,
            last: start,
            per_second: 10.0,
            capacity: 2.0,
        };
        assert!(bucket.admit(start).is_ok());
        assert!(bucket.admit(start).is_ok());
        let wait = bucket.admit(start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9);
        assert!(bucket.admit(start + Duration::from_millis(100)).is_ok());
    }
}
