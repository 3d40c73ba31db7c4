//! Real TLS on loopback: a certificate authority made at test time (`rcgen`), a TLS server
//! (`tokio-rustls`) serving the one call a run needs (a PUT answered 200 with an identity),
//! and a CONNECT proxy that pipes bytes to that server whatever host it is asked for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use super::runtime;

/// A test certificate authority: its certificate as PEM, and what it takes to sign.
pub struct TestCa {
    pub pem: String,
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A server certificate and its private key.
pub struct Leaf {
    der: CertificateDer<'static>,
    key: Vec<u8>,
    /// The certificate as PEM (to pass where a CA is expected, wrongly).
    pub pem: String,
}

/// How a server certificate is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Valid now.
    Current,
    /// Valid only during 2020.
    Expired,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        Self::valid(name, Validity::Current)
    }

    /// A CA valid now, or only during 2020.
    pub fn valid(name: &str, validity: Validity) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("ca key");
        let cert = params.self_signed(&key).expect("ca cert");
        Self {
            pem: cert.pem(),
            cert,
            key,
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed by this CA.
    pub fn leaf(&self, names: &[&str], validity: Validity) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, "drata-svcacct test server");
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf cert");
        Leaf {
            pem: cert.pem(),
            der: cert.der().clone(),
            key: key.serialize_der(),
        }
    }
}

/// A TLS server on 127.0.0.1:0 that answers every PUT with 200 and an identity, and a
/// listing of the identities its PUTs marked (so that `apply` reads a state before and
/// checks it after). It counts TCP connections (each one a TLS handshake attempt) and
/// records request lines.
pub struct TlsServer {
    pub port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsServer {
    pub fn start(leaf: Leaf) -> Self {
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key)),
            )
            .expect("server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = runtime()
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count, log) = (Arc::clone(&connections), Arc::clone(&requests));
        let marked = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
        let task = runtime().spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (acceptor, log) = (acceptor.clone(), Arc::clone(&log));
                let marked = Arc::clone(&marked);
                tokio::spawn(async move {
                    // A refused handshake ends here: the client closed the connection.
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve_http(tls, log, marked).await;
                    }
                });
            }
        });
        Self {
            port,
            connections,
            requests,
            task,
        }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Request lines (`PUT /public/... HTTP/1.1`) served so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// HTTP/1.1 keep-alive over one TLS stream: each request is read whole; a listing page is
/// answered with the identities marked so far (one page holds them all), any other request
/// with an identity echoing the id in its path, marked.
async fn serve_http<S>(
    stream: S,
    log: Arc<Mutex<Vec<String>>>,
    marked: Arc<Mutex<std::collections::BTreeMap<u64, String>>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut stream = BufReader::new(stream);
    loop {
        let Some((request_line, length)) = read_head(&mut stream).await else {
            return;
        };
        let mut body = vec![0; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let id = request_line
            .split('/')
            .skip_while(|part| *part != "infrastructure")
            .nth(1)
            .and_then(|id| id.parse::<u64>().ok())
            .unwrap_or(0);
        let identity = |id: u64, reason: &str| {
            serde_json::json!({
                "id": id, "identityId": "x", "username": format!("user{id}"),
                "email": format!("user{id}@example.com"),
                "serviceAccount": "2026-11-29T00:00:00.000Z", "serviceAccountReason": reason,
                "user": null, "connection": {"id": 1},
            })
        };
        let answer = if request_line.starts_with("GET ") && request_line.contains("page=") {
            let marked = marked.lock().unwrap();
            let data: Vec<_> = marked.iter().map(|(id, r)| identity(*id, r)).collect();
            serde_json::json!({"data": data, "page": 1, "limit": 50, "total": data.len()})
                .to_string()
        } else {
            let reason = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|b| b["serviceAccountReason"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "r".to_owned());
            marked.lock().unwrap().insert(id, reason.clone());
            identity(id, &reason).to_string()
        };
        log.lock().unwrap().push(request_line);
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

/// The request line and the content length of the next request; `None` at the end.
async fn read_head<S>(stream: &mut BufReader<S>) -> Option<(String, usize)>
where
    S: tokio::io::AsyncRead + Unpin,
{
    let mut request_line = String::new();
    if stream.read_line(&mut request_line).await.ok()? == 0 {
        return None;
    }
    let mut length = 0;
    loop {
        let mut header = String::new();
        if stream.read_line(&mut header).await.ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            return Some((request_line.trim_end().to_owned(), length));
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
}

/// An HTTP CONNECT proxy on 127.0.0.1:0 that records each CONNECT head and tunnels every
/// one to `127.0.0.1:target_port`, whatever host it names: so that a base URL such as
/// `https://drata.test:PORT` can only be reached through it.
pub struct ConnectProxy {
    pub port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ConnectProxy {
    pub fn start(target_port: u16) -> Self {
        Self::serving(target_port, false)
    }

    /// A proxy that answers every CONNECT 407, as one does to wrong credentials.
    pub fn refusing_credentials() -> Self {
        Self::serving(0, true)
    }

    fn serving(target_port: u16, refuse: bool) -> Self {
        let listener = runtime()
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&heads);
        let task = runtime().spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(tunnel(client, target_port, log, refuse));
            }
        });
        Self { port, heads, task }
    }

    /// Every CONNECT head received: the request line and the headers, one per line.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tunnel(client: TcpStream, target_port: u16, log: Arc<Mutex<Vec<String>>>, refuse: bool) {
    let mut client = BufReader::new(client);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match client.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) if line.trim_end().is_empty() => break,
            Ok(_) => head.push_str(&line),
        }
    }
    log.lock().unwrap().push(head.clone());
    if !head.starts_with("CONNECT ") {
        let _ = client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    }
    if refuse {
        let _ = client
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic realm=\"corp\"\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", target_port)).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
