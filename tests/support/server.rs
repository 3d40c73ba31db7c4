//! A scripted HTTP server on 127.0.0.1:0 that records every request it sees.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::runtime;

/// A request the scripted server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Seen {
    /// The numeric id in `/…/user-identities/{kind}/{id}/service-account` (or `…/connect`).
    pub fn id(&self) -> Option<u64> {
        let parts: Vec<&str> = self.path.split('/').collect();
        parts
            .iter()
            .position(|p| *p == "service-account" || *p == "connect")
            .and_then(|i| parts.get(i - 1))
            .and_then(|id| id.parse().ok())
    }
}

/// The scripted answer to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
    /// Whether a PUT answered this way changed the server's state (what its listing shows
    /// afterwards); `None`: when the answer is 2xx.
    pub applied: Option<bool>,
    /// The body the server applies instead of the request's: a server that answers 2xx
    /// and stores something else.
    pub stores: Option<String>,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_owned(),
            delay: Duration::ZERO,
            applied: None,
            stores: None,
        }
    }

    /// Says whether the PUT answered this way changed the state, whatever the status: a
    /// server that commits and then answers 502, or answers 200 without committing.
    pub fn applied(mut self, applied: bool) -> Self {
        self.applied = Some(applied);
        self
    }

    /// A 200 with an identity like the API's, echoing the id.
    pub fn identity(id: u64) -> Self {
        Self::json(
            200,
            &format!(
                r#"{{"id":{id},"identityId":"x","username":"user{id}","email":"user{id}@example.com","serviceAccount":"2026-11-29T00:00:00.000Z","serviceAccountReason":"r","user":null,"connection":{{"id":1}}}}"#
            ),
        )
    }

    /// Applies `body` in place of the request's body (`{"userId": 10}`), whatever was sent.
    pub fn storing(mut self, body: &str) -> Self {
        self.stores = Some(body.to_owned());
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// A scripted HTTP server on 127.0.0.1:0. The handler gets each request and its
/// zero-based index among all requests.
pub struct TestServer {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    state: Arc<Mutex<Applied>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// What the PUTs a server answered changed, as its own listing shows it.
#[derive(Default)]
struct Applied {
    /// When false, the handler answers the listing too.
    serves_listing: bool,
    identities: std::collections::BTreeMap<u64, serde_json::Value>,
    /// The people `GET /users` lists, by id: their emails.
    users: std::collections::BTreeMap<u64, String>,
    listings: usize,
}

impl Applied {
    /// Applies a PUT as answered: when the reply says it changed the state (by default a
    /// 2xx), with the body the reply stores in place of the request's.
    fn answered(&mut self, request: &Seen, reply: &Reply) {
        let ok = (200..300).contains(&reply.status);
        if request.method != "PUT" || !reply.applied.unwrap_or(ok) {
            return;
        }
        let mut stored = request.clone();
        if let Some(body) = &reply.stores {
            stored.body = body.clone();
        }
        self.apply(&stored);
    }

    fn apply(&mut self, request: &Seen) {
        let (Some(id), Ok(body)) = (
            request.id(),
            serde_json::from_str::<serde_json::Value>(&request.body),
        ) else {
            return;
        };
        let identity = self
            .identities
            .entry(id)
            .or_insert_with(|| serde_json::json!({"id": id, "username": format!("user{id}")}));
        if request.path.contains("/connect") {
            // `connect` links the identity to a user, or to nobody.
            identity["user"] = match body["userId"].as_u64() {
                // A stored body may name the email the listing shows (a user the users
                // listing does not hold).
                Some(user) => serde_json::json!({"id": user,
                    "email": body["email"].as_str().or(self.users.get(&user).map(String::as_str))}),
                None => serde_json::Value::Null,
            };
            return;
        }
        let marked = body["serviceAccount"].as_bool().unwrap_or(false);
        identity["serviceAccount"] = if marked {
            serde_json::json!("2026-11-29T00:00:00.000Z")
        } else {
            serde_json::Value::Null
        };
        identity["serviceAccountReason"] = if marked {
            body["serviceAccountReason"].clone()
        } else {
            serde_json::Value::Null
        };
    }

    /// A listing page of what was applied (50 a page).
    fn page(&mut self, uri: &str) -> Reply {
        self.listings += 1;
        let number: usize = uri
            .split(['?', '&'])
            .find_map(|part| part.strip_prefix("page="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let all: Vec<serde_json::Value> = if uri.contains("/users?") {
            { self.users.iter() }
                .map(|(id, email)| serde_json::json!({"id": id, "email": email}))
                .collect()
        } else {
            self.identities.values().cloned().collect()
        };
        let items: Vec<&serde_json::Value> =
            all.iter().skip((number.max(1) - 1) * 50).take(50).collect();
        let page = serde_json::json!({
            "data": items, "page": number, "limit": 50, "total": all.len(),
        });
        Reply::json(200, &page.to_string())
    }
}

impl TestServer {
    /// A server whose handler answers the PUTs; its listing shows what they applied
    /// (nothing at first), so that `apply` reads a state before and checks it after.
    pub fn start(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        Self::serve(handler, true)
    }

    /// A server whose handler answers every request, listing pages included.
    pub fn scripted(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        Self::serve(handler, false)
    }

    /// Identities the server's own listing holds before any PUT: unmarked, `user{id}`.
    pub fn seed(self, ids: impl IntoIterator<Item = u64>) -> Self {
        let mut state = self.state.lock().unwrap();
        for id in ids {
            state.identities.insert(
                id,
                serde_json::json!({"id": id, "username": format!("user{id}"), "serviceAccount": null}),
            );
        }
        drop(state);
        self
    }

    /// Takes an identity out of the listing, as when it is deleted in Drata.
    pub fn forget(&self, id: u64) {
        self.state.lock().unwrap().identities.remove(&id);
    }

    /// Identities as the server's own listing shows them before any PUT (each with its
    /// `id`), and the people its users listing holds: `(id, email)`.
    pub fn seed_with(
        self,
        identities: impl IntoIterator<Item = serde_json::Value>,
        users: &[(u64, &str)],
    ) -> Self {
        let mut state = self.state.lock().unwrap();
        for identity in identities {
            let id = identity["id"]
                .as_u64()
                .expect("a seeded identity has an id");
            state.identities.insert(id, identity);
        }
        for (id, email) in users {
            state.users.insert(*id, (*email).to_owned());
        }
        drop(state);
        self
    }

    /// An identity as the server's listing shows it now.
    pub fn identity(&self, id: u64) -> Option<serde_json::Value> {
        self.state.lock().unwrap().identities.get(&id).cloned()
    }

    /// Listing pages the server answered itself.
    pub fn listings(&self) -> usize {
        self.state.lock().unwrap().listings
    }

    fn serve(
        handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
        serves_listing: bool,
    ) -> Self {
        let state = Arc::new(Mutex::new(Applied {
            serves_listing,
            ..Applied::default()
        }));
        let applied = Arc::clone(&state);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let counter = Arc::new(AtomicUsize::new(0));
        let log = Arc::clone(&seen);
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                let applied = Arc::clone(&applied);
                let counter = Arc::clone(&counter);
                async move {
                    let request = Seen {
                        at: Instant::now(),
                        method: method.to_string(),
                        path: uri.to_string(),
                        headers: headers
                            .iter()
                            .map(|(k, v)| {
                                (k.to_string(), v.to_str().unwrap_or_default().to_owned())
                            })
                            .collect(),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    };
                    let listing = request.method == "GET" && request.path.contains("page=");
                    let reply = {
                        let mut state = applied.lock().unwrap();
                        if listing && state.serves_listing {
                            state.page(&request.path)
                        } else {
                            let index = counter.fetch_add(1, Ordering::SeqCst);
                            let reply = handler(&request, index);
                            state.answered(&request, &reply);
                            log.lock().unwrap().push(request);
                            reply
                        }
                    };
                    if !reply.delay.is_zero() {
                        tokio::time::sleep(reply.delay).await;
                    }
                    let mut response: Response =
                        (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
                    for (name, value) in reply.headers {
                        response.headers_mut().insert(
                            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                            value.parse().unwrap(),
                        );
                    }
                    response
                }
            },
        );
        let listener = runtime()
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime().spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            url: format!("http://{addr}/public"),
            seen,
            state,
            _stop: stop,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// PUTs received: (connect, service-account).
    pub fn puts_by_endpoint(&self) -> (usize, usize) {
        let seen = self.seen();
        let put = |tail: &str| {
            seen.iter()
                .filter(|s| s.method == "PUT" && s.path.ends_with(tail))
                .count()
        };
        (put("/connect"), put("/service-account"))
    }

    /// PUT requests per id.
    pub fn puts_per_id(&self) -> HashMap<u64, usize> {
        let mut counts = HashMap::new();
        for request in self.seen().iter().filter(|s| s.method == "PUT") {
            if let Some(id) = request.id() {
                *counts.entry(id).or_default() += 1;
            }
        }
        counts
    }
}
