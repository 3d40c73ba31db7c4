//! `simulate`: serve the stand-in of the API until SIGINT or SIGTERM.

use crate::engine::Signals;
use crate::error::Error;
use crate::exit;
use crate::simulator::{self, SimulatorConfig};

pub(super) async fn run(config: SimulatorConfig) -> Result<u8, Error> {
    // Before the banner: whoever reads it may send SIGTERM at once.
    let mut signals = Signals::install();
    if !config.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %config.listen,
            "THE SIMULATOR IS LISTENING BEYOND LOOPBACK: anyone who can reach this address can use it"
        );
    }
    let running = simulator::start(config.clone())
        .await
        .map_err(|source| Error::Simulator {
            addr: config.listen,
            source,
        })?;
    tracing::info!(
        base_url = %running.base_url(),
        identities = config.identities,
        "simulator listening on {} with {} identities (token {:?}); Ctrl-C stops it",
        running.base_url(),
        config.identities,
        config.token
    );
    signals.next().await;
    Ok(exit::SUCCESS)
}
