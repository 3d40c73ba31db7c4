//! Test support for the integration tests in `tests/cli/`: running the binary in a temporary
//! directory, a scripted HTTP server on port 0, the project's simulator, a TLS server with
//! certificates made at test time and a CONNECT proxy, reading reports, and the builder
//! every test runs the binary with (`Apply::on(&sim).input(csv).run()`, in `invoke.rs`).
//!
//! Every library path the tests use is named in this file and nowhere else, so that moving a
//! type in `src/` means one place to fix here, not one per topic file.

mod invoke;
mod report;
mod run;
mod server;
mod tls;

use std::sync::OnceLock;

use drata_svcacct::simulator::start as start_simulator;
pub use drata_svcacct::simulator::{RunningSimulator, SimulatorConfig};
pub use drata_svcacct::Cli;
pub use drata_svcacct::Rate;

/// The report's columns, in order, as `docs/contract.md` fixes them: written out here so
/// that a change in the code cannot silently change what the tests expect.
const REPORT_COLUMNS: [&str; 20] = [
    "line",
    "id",
    "service_account",
    "reason",
    "outcome",
    "http_status",
    "attempts",
    "error",
    "username",
    "email",
    "service_account_at",
    "finished_at",
    "previous_service_account",
    "previous_reason",
    "kind",
    "api",
    "source",
    "verified",
    "baseline_service_account",
    "baseline_reason",
];

pub use invoke::*;
pub use report::*;
pub use run::*;
pub use server::*;
pub use tls::*;

/// The binary under test: cargo's build, or the one `DRATA_SVCACCT_TEST_BIN` names (a
/// release or cross-built binary, such as the static musl build).
pub fn bin() -> &'static std::path::Path {
    static BIN: OnceLock<std::path::PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var_os("DRATA_SVCACCT_TEST_BIN")
            .filter(|path| !path.is_empty())
            .map_or_else(|| env!("CARGO_BIN_EXE_drata-svcacct").into(), Into::into)
    })
}
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

/// The project's simulator on an ephemeral loopback port, fast and unlimited by default.
pub fn simulator(configure: impl FnOnce(&mut SimulatorConfig)) -> RunningSimulator {
    let mut config = SimulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        rate_limit: Rate::Unlimited,
        ..SimulatorConfig::default()
    };
    configure(&mut config);
    runtime()
        .block_on(start_simulator(config))
        .expect("simulator")
}
