//! The server side of a run: the engine every request goes through, and what keeps the
//! in-process simulator of `--simulate` alive.

use std::sync::Arc;

use crate::config::{parse_base_url, KeySource, RunConfig, Target};
use crate::drata::ApiClient;
use crate::engine::{Engine, RunControl};
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
    pub(super) async fn connect(
        config: &RunConfig,
        control: &Arc<RunControl>,
    ) -> Result<Self, Error> {
        #[cfg(feature = "simulator")]
        let mut simulator = None;
        let (base_url, key) = match &config.target {
            #[cfg(feature = "simulator")]
            Target::Simulated => {
                let (sim, base_url, key) = start_simulator().await?;
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
                (base_url, read_key(key)?)
            }
        };
        let client = ApiClient::new(
            base_url.clone(),
            &key,
            config.kind,
            config.timeout,
            config.concurrency.ceiling(),
        )
        .map_err(|e| Error::Client(e.without_url()))?;
        let engine = Engine::new(
            client,
            config.rate,
            config.burst,
            config.retry,
            Arc::clone(control),
            config.concurrency,
        );
        Ok(Self {
            base_url: base_url.to_string(),
            engine: Arc::new(engine),
            #[cfg(feature = "simulator")]
            _simulator: simulator,
        })
    }
}

fn read_key(source: &KeySource) -> Result<ApiKey, Error> {
    match source {
        KeySource::Env(Ok(key)) => Ok(key.clone()),
        KeySource::Env(Err(e)) => Err(Error::Key(e.clone())),
        KeySource::File(path) => {
            let (key, warning) = ApiKey::from_file(path)?;
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
) -> Result<(crate::simulator::RunningSimulator, reqwest::Url, ApiKey), Error> {
    use crate::simulator::{self, SimulatorConfig};
    let token: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(32)
        .collect();
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let sim = simulator::start(SimulatorConfig {
        listen,
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
