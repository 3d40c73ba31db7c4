//! The run's stop switch, and the signals that pull it.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::exit;
use crate::model::{Signal, StopReason};

/// The run's stop switch: the first reason wins, and every task sees the token.
#[derive(Debug, Default)]
pub(crate) struct RunControl {
    token: CancellationToken,
    reason: Mutex<Option<StopReason>>,
}

impl RunControl {
    /// Stops the run; true when this call gave the reason (the first stop wins).
    pub(crate) fn stop(&self, reason: StopReason) -> bool {
        let mut first = false;
        if let Ok(mut slot) = self.reason.lock() {
            if slot.is_none() {
                // Said once, as it happens, at the level a human must see; the summary
                // repeats it at the end.
                if reason.is_abort() {
                    tracing::error!("run aborted: {}", reason.cause());
                } else {
                    tracing::debug!(?reason, "stopping the run");
                }
                *slot = Some(reason);
                first = true;
            }
        }
        self.token.cancel();
        first
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    pub(crate) fn reason(&self) -> Option<StopReason> {
        self.reason.lock().ok().and_then(|slot| slot.clone())
    }

    pub(crate) async fn stopped(&self) {
        self.token.cancelled().await
    }

    /// The `error` cell of a row the run's stop left unsent.
    pub(crate) fn stop_message(&self) -> String {
        self.reason()
            .map_or_else(|| "not sent".to_owned(), |r| r.row_error())
    }
}

/// SIGINT and SIGTERM on Unix; on Windows, Ctrl-C as SIGINT and Ctrl-Break, closing the
/// console, log-off and shutdown as SIGTERM. Installed when this is made so that no
/// signal sent after that point is missed.
pub(crate) struct Signals {
    streams: Option<Streams>,
}

#[cfg(unix)]
struct Streams {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Streams {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::Interrupt,
            _ = self.terminate.recv() => Signal::Terminate,
        }
    }
}

#[cfg(windows)]
struct Streams {
    ctrl_c: tokio::signal::windows::CtrlC,
    ctrl_break: tokio::signal::windows::CtrlBreak,
    close: tokio::signal::windows::CtrlClose,
    logoff: tokio::signal::windows::CtrlLogoff,
    shutdown: tokio::signal::windows::CtrlShutdown,
}

#[cfg(windows)]
impl Streams {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::windows;
        Ok(Self {
            ctrl_c: windows::ctrl_c()?,
            ctrl_break: windows::ctrl_break()?,
            close: windows::ctrl_close()?,
            logoff: windows::ctrl_logoff()?,
            shutdown: windows::ctrl_shutdown()?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.ctrl_c.recv() => Signal::Interrupt,
            _ = self.ctrl_break.recv() => Signal::Terminate,
            _ = self.close.recv() => Signal::Terminate,
            _ = self.logoff.recv() => Signal::Terminate,
            _ = self.shutdown.recv() => Signal::Terminate,
        }
    }
}

impl Signals {
    /// Must run inside the runtime.
    pub(crate) fn install() -> Self {
        match Streams::install() {
            Ok(streams) => Self {
                streams: Some(streams),
            },
            Err(_) => {
                tracing::warn!("cannot install signal handlers; a signal will stop abruptly");
                Self { streams: None }
            }
        }
    }

    /// The next signal; never resolves when none could be installed.
    pub(crate) async fn next(&mut self) -> Signal {
        match &mut self.streams {
            Some(streams) => streams.next().await,
            None => std::future::pending().await,
        }
    }
}

/// The first signal stops the run gracefully; the second exits at once, with the code
/// of that signal.
pub(crate) fn watch_signals(
    mut signals: Signals,
    control: Arc<RunControl>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let first = signals.next().await;
        tracing::warn!("interrupted: finishing the requests in flight (again to exit now)");
        control.stop(StopReason::Interrupted(first));
        let second = signals.next().await;
        std::process::exit(exit::for_signal(second).into());
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_stop_reason_wins() {
        let control = RunControl::default();
        assert!(!control.is_stopped());
        control.stop(StopReason::Interrupted(Signal::Interrupt));
        control.stop(StopReason::Fatal(crate::model::StopSource::new(
            std::fmt::Error,
        )));
        assert!(control.is_stopped());
        assert!(matches!(
            control.reason(),
            Some(StopReason::Interrupted(Signal::Interrupt))
        ));
    }

    #[test]
    fn only_the_first_stop_gives_the_reason_unsent_rows_carry() {
        let control = RunControl::default();
        assert_eq!(control.stop_message(), "not sent");
        assert!(control.stop(StopReason::Interrupted(Signal::Interrupt)));
        assert!(!control.stop(StopReason::Interrupted(Signal::Terminate)));
        assert_eq!(
            control.stop_message(),
            StopReason::Interrupted(Signal::Interrupt).row_error()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stopped_resolves_once_the_run_is_stopped() {
        let control = RunControl::default();
        tokio::select! {
            biased;
            () = control.stopped() => panic!("resolved before any stop"),
            () = std::future::ready(()) => {}
        }
        control.stop(StopReason::Interrupted(Signal::Interrupt));
        // Paused time: a `stopped` that never resolves fails at once rather than hanging.
        let waited = tokio::time::timeout(std::time::Duration::from_secs(1), control.stopped());
        assert!(waited.await.is_ok(), "still waiting after the stop");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn an_installed_handler_hears_the_signal() {
        let mut signals = Signals::install();
        // SAFETY: raise only sends a signal to this process, whose handler is installed.
        assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
        let heard = tokio::time::timeout(std::time::Duration::from_secs(10), signals.next()).await;
        assert_eq!(heard.ok(), Some(Signal::Terminate));
    }

    /// Records the level of every event logged.
    struct Levels(Arc<Mutex<Vec<tracing::Level>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Levels {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0.lock().unwrap().push(*event.metadata().level());
        }
    }

    #[test]
    fn an_abort_is_logged_as_an_error_and_a_signal_is_not() {
        use tracing_subscriber::layer::SubscriberExt;
        let levels = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Levels(levels.clone()));
        tracing::subscriber::with_default(subscriber, || {
            RunControl::default().stop(StopReason::Interrupted(Signal::Interrupt));
            RunControl::default().stop(StopReason::Fatal(crate::model::StopSource::new(
                std::fmt::Error,
            )));
        });
        assert_eq!(
            *levels.lock().unwrap(),
            [tracing::Level::DEBUG, tracing::Level::ERROR]
        );
    }
}
