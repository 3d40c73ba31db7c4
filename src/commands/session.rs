//! The server side of a command that talks to Drata (`plan`, `apply`, `export`,
//! `upload-evidence`): the engine every request goes through, and what keeps the
//! in-process simulator of `--simulate` alive.

use std::sync::Arc;

use super::blocking::read_unless_stopped;
use crate::config::{parse_base_url, Connect, KeySource, Target};
use crate::drata::{
    is_loopback_host, read_ca_bundle, roots_from_env, ApiClient, ClientOptions, Roots,
};
use crate::engine::{ConcurrencyMode, Engine, RunControl};
use crate::error::Error;
use crate::secret::ApiKey;

/// Share of PUTs the in-process simulator of `--simulate` answers 500: enough that a
/// newcomer sees retries.
#[cfg(feature = "simulator")]
const SIMULATED_ERROR_RATE: f64 = 0.04;
/// Latency of the in-process simulator: enough that the progress bar moves visibly.
#[cfg(feature = "simulator")]
const SIMULATED_LATENCY_MS: u64 = 40;

pub(super) struct Session {
    pub base_url: String,
    pub engine: Arc<Engine>,
    #[cfg(feature = "simulator")]
    _simulator: Option<crate::simulator::RunningSimulator>,
}

impl Session {
    /// Connects as `connect` says, with `concurrency` requests in flight at most. With
    /// `--simulate`, the in-process simulator holds at least `simulated_identities`, so that
    /// every id of the input exists there.
    pub(super) async fn connect(
        connect: &Connect,
        concurrency: ConcurrencyMode,
        simulated_identities: u64,
        control: &Arc<RunControl>,
    ) -> Result<Self, Error> {
        #[cfg(feature = "simulator")]
        let mut simulator = None;
        let (base_url, key) = match &connect.target {
            #[cfg(feature = "simulator")]
            Target::Simulated => {
                let (sim, base_url, key) = start_simulator(simulated_identities).await?;
                simulator = Some(sim);
                (base_url, key)
            }
            Target::Remote {
                region,
                base_url,
                key,
            } => {
                let base_url = match base_url {
                    Some(url) => url.clone(),
                    None => parse_base_url(region.base_url())?,
                };
                let key = read_key(key, control).await?;
                if !is_loopback_host(&base_url) {
                    key.check_length()?;
                }
                (base_url, key)
            }
        };
        let (store_roots, extra_roots) = trusted_roots(connect, &base_url)?;
        let options = ClientOptions {
            kind: connect.kind,
            timeout: connect.timeout,
            connections: concurrency.ceiling(),
            store_roots,
            extra_roots,
        };
        let client = ApiClient::new(base_url.clone(), &key, options)
            .map_err(|e| Error::Client(e.without_url()))?;
        let engine = Engine::new(
            client,
            connect.rate,
            connect.burst,
            connect.retry,
            Arc::clone(control),
            concurrency,
        );
        Ok(Self {
            base_url: base_url.to_string(),
            engine: Arc::new(engine),
            #[cfg(feature = "simulator")]
            _simulator: simulator,
        })
    }
}

/// The store of `SSL_CERT_FILE` and `SSL_CERT_DIR` when set (`None`: the system's), read
/// for an https server only, and the CAs of `--ca-cert`: a store with no usable
/// certificate, or a `--ca-cert` that cannot be used, is a usage error before anything is
/// sent.
fn trusted_roots(
    connect: &Connect,
    base_url: &reqwest::Url,
) -> Result<(Option<Vec<reqwest::Certificate>>, Vec<reqwest::Certificate>), Error> {
    let store = match base_url.scheme() {
        "https" => match roots_from_env()? {
            Roots::System => None,
            Roots::Replaced(store) => {
                for skipped in &store.skipped {
                    tracing::debug!("{skipped}");
                }
                let (trusted, skipped) = (store.certificates.len(), store.skipped.len());
                let sources = &store.sources;
                if skipped > 0 {
                    tracing::info!(
                        "{sources}: {trusted} CA certificates trusted, {skipped} skipped \
                         (expired, not valid yet or unparsable; -v names each)"
                    );
                } else {
                    tracing::debug!("{sources}: {trusted} CA certificates trusted");
                }
                Some(store.certificates)
            }
        },
        _ => None,
    };
    let extra = match &connect.ca_cert {
        Some(path) => read_ca_bundle("--ca-cert", path)?,
        None => Vec::new(),
    };
    Ok((store, extra))
}

/// The key from the environment, or from `--token-file`, read so that a signal is heard
/// while a FIFO's writer never comes (`--token-file <(pass show drata)`).
async fn read_key(source: &KeySource, control: &RunControl) -> Result<ApiKey, Error> {
    match source {
        KeySource::Env(Ok(key)) => Ok(key.clone()),
        KeySource::Env(Err(e)) => Err(Error::Key(e.clone())),
        KeySource::File(path) => {
            let file = path.clone();
            let (key, warning) = read_unless_stopped(control, "the token file", path, move || {
                ApiKey::from_file(&file)
            })
            .await?;
            if let Some(warning) = warning {
                tracing::warn!("{warning}");
            }
            Ok(key)
        }
    }
}

/// Starts the in-process simulator with a random token.
#[cfg(feature = "simulator")]
async fn start_simulator(
    identities: u64,
) -> Result<(crate::simulator::RunningSimulator, reqwest::Url, ApiKey), Error> {
    use crate::simulator::{self, SimulatorConfig};
    let token: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(32)
        .collect();
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let sim = simulator::start(SimulatorConfig {
        listen,
        identities: identities
            .max(SimulatorConfig::default().identities)
            .min(simulator::MAX_IDENTITIES),
        token: token.clone(),
        error_rate: SIMULATED_ERROR_RATE,
        latency: std::time::Duration::from_millis(SIMULATED_LATENCY_MS),
        seed: fastrand::u64(..),
        ..SimulatorConfig::default()
    })
    .await
    .map_err(|source| Error::Simulator {
        addr: listen,
        source,
    })?;
    let base = parse_base_url(&sim.base_url())?;
    let key = ApiKey::new(&token)?;
    tracing::info!(base_url = %base, "simulator started");
    Ok((sim, base, key))
}
