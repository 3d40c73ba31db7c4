//! Test support: the binary, a scripted HTTP server on port 0, the project's simulator,
//! temporary directories and report parsing.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use drata_svcacct::config::{Rate, SimulatorConfig};
use drata_svcacct::simulator::{self, RunningSimulator};

pub const BIN: &str = env!("CARGO_BIN_EXE_drata-svcacct");
pub const SIM_TOKEN: &str = "sim-token";

/// One runtime for every server the tests start.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("test runtime")
    })
}

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

/// The project's simulator on an ephemeral loopback port, fast and unlimited by default.
pub fn simulator(configure: impl FnOnce(&mut SimulatorConfig)) -> RunningSimulator {
    let mut config = SimulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        rate_limit: Rate::Unlimited,
        ..SimulatorConfig::default()
    };
    configure(&mut config);
    runtime()
        .block_on(simulator::start(config))
        .expect("simulator")
}

/// A temporary working directory.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Every file in the directory, as text (lossy), for leak searches.
    pub fn all_file_text(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        text
    }
}

/// What a finished run of the binary printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A command for the binary in `dir`, with a clean environment for our variables.
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_remove("DRATA_API_KEY")
        .env_remove("DRATA_BASE_URL")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

pub fn finish(child: Child) -> Run {
    let output = child.wait_with_output().expect("wait");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the binary to completion.
pub fn drata(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_with_stdin(dir, args, env, None)
}

pub fn run_with_stdin(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut command = command(dir, args);
    command.envs(env.iter().copied());
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("spawn");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    finish(child)
}

/// A parsed report: one map per row, keyed by column name.
pub fn read_report(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("report");
    let headers = reader.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        drata_svcacct::report::COLUMNS.to_vec(),
        "report columns"
    );
    reader
        .records()
        .map(|r| {
            let record = r.expect("record");
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// Report rows by input line; asserts each line appears once.
pub fn by_line(rows: &[HashMap<String, String>]) -> HashMap<u64, HashMap<String, String>> {
    let mut map = HashMap::new();
    for row in rows {
        let line: u64 = row["line"].parse().expect("line");
        assert!(map.insert(line, row.clone()).is_none(), "line {line} twice");
    }
    map
}

/// `(line, outcome)` pairs, sorted, for compact assertions.
pub fn outcomes(rows: &[HashMap<String, String>]) -> Vec<(u64, String)> {
    let mut pairs: Vec<(u64, String)> = rows
        .iter()
        .map(|r| (r["line"].parse().unwrap(), r["outcome"].clone()))
        .collect();
    pairs.sort();
    pairs
}

/// A CSV of `n` rows with ids `first..first+n`, all `true` with a reason.
pub fn rows_csv(first: u64, n: u64) -> String {
    let mut text = String::from("id,serviceAccount,serviceAccountReason\n");
    for id in first..first + n {
        text.push_str(&format!("{id},true,automation account {id}\n"));
    }
    text
}

/// Polls `condition` every 20 ms until it holds; panics after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Data rows written so far to a report that may still be growing.
pub fn report_rows_so_far(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|text| text.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// Sends a signal to a child process.
#[cfg(unix)]
pub fn signal(child: &Child, signal: i32) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) with a child's pid has no memory-safety preconditions.
    let status = unsafe { libc::kill(pid, signal) };
    assert_eq!(status, 0, "kill failed");
}

/// Ids whose report row has `outcome`.
pub fn ids_with(rows: &[HashMap<String, String>], outcome: &str) -> Vec<u64> {
    rows.iter()
        .filter(|r| r["outcome"] == outcome)
        .map(|r| r["id"].parse().unwrap())
        .collect()
}
