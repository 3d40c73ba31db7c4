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
    /// The numeric id in `/…/user-identities/{kind}/{id}/service-account`.
    pub fn id(&self) -> Option<u64> {
        let parts: Vec<&str> = self.path.split('/').collect();
        parts
            .iter()
            .position(|p| *p == "service-account")
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
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
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
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TestServer {
    pub fn start(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let counter = Arc::new(AtomicUsize::new(0));
        let log = Arc::clone(&seen);
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                let index = counter.fetch_add(1, Ordering::SeqCst);
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
                    let reply = handler(&request, index);
                    log.lock().unwrap().push(request);
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
            _stop: stop,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// PUT requests per id.
    #[allow(dead_code)] // No test uses it at present.
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
