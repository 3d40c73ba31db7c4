//! Running the binary in a temporary directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bin;

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
        self.write_bytes(name, contents.as_bytes())
    }

    pub fn write_bytes(&self, name: &str, contents: &[u8]) -> PathBuf {
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

/// Variables of the machine that change where a run connects or what it trusts: removed,
/// so that a developer's proxy or CA bundle cannot change a test.
const NETWORK_VARIABLES: [&str; 10] = [
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// A command for the binary in `dir`, with a clean environment for our variables.
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin());
    for name in NETWORK_VARIABLES {
        command.env_remove(name);
    }
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

/// Writes `text` to the child's standard input and closes it.
pub fn feed(child: &mut Child, text: &str) {
    let written = child.stdin.take().unwrap().write_all(text.as_bytes());
    // A program may stop reading before the end (a refused input): that is its answer.
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
}

/// Polls `condition` every 20 ms until it holds; panics after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends a signal to a child process.
#[cfg(unix)]
pub fn signal(child: &Child, signal: i32) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) with a child's pid has no memory-safety preconditions.
    let status = unsafe { libc::kill(pid, signal) };
    assert_eq!(status, 0, "kill failed");
}

/// The login name of the account the tests run as, as the system's user database has it.
pub fn system_account() -> String {
    let output = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Set by `.ci/run`, which installs the tools: there a missing one fails instead of skipping.
const REQUIRE_TOOLS: &str = "DRATA_SVCACCT_TEST_REQUIRE_TOOLS";

/// Whether `tool` can be run (with `probe`, an argument that makes it print its version).
/// Where it cannot (a developer's machine without it), the check that needs it is skipped
/// with a printed reason, unless `REQUIRE_TOOLS` is set.
pub fn tool_available(tool: &str, probe: &str) -> bool {
    let found = Command::new(tool).arg(probe).output().is_ok();
    if !found {
        assert!(
            std::env::var_os(REQUIRE_TOOLS).is_none(),
            "{tool} is not installed, and {REQUIRE_TOOLS} requires it"
        );
        eprintln!("skipped: {tool} is not installed (.ci/run installs it)");
    }
    found
}
