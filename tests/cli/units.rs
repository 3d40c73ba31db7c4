//! The systemd units in contrib/: they verify, and the service's command line works as an
//! unprivileged user with the key and the input handed over as credentials.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::*;

const UNITS: [&str; 3] = [
    "drata-svcacct.service",
    "drata-svcacct.timer",
    "drata-svcacct-alert@.service",
];

fn contrib(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(name)
}

#[test]
fn the_systemd_units_verify() {
    if !tool_available("systemd-analyze", "--version") {
        return;
    }
    let paths: Vec<_> = UNITS.iter().map(|unit| contrib(unit)).collect();
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .expect("systemd-analyze (installed by .ci/run)");
    assert!(
        verified.status.success() && verified.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let service = std::fs::read_to_string(contrib(UNITS[0])).unwrap();
    assert!(service.contains("OnFailure=drata-svcacct-alert@%n.service"));
    assert!(!service.contains("SuccessExitStatus"), "it changed nothing");
}

/// The service's command line, as the shell systemd starts would run it.
fn exec_start(binary: &Path) -> String {
    let service = std::fs::read_to_string(contrib(UNITS[0])).unwrap();
    let line = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/bin/sh -c '"))
        .expect("an ExecStart through sh -c");
    line.trim_end_matches('\'').replace("%%", "%").replace(
        "/usr/local/bin/drata-svcacct",
        &binary.display().to_string(),
    )
}

/// The ids the simulator applied a PUT to, sorted.
fn applied_ids(sim: &RunningSimulator) -> Vec<u64> {
    let mut ids: Vec<u64> = sim.applied().into_keys().collect();
    ids.sort_unstable();
    ids
}

/// The night's rules in the service's test: two of the simulator's unmarked bots.
const NIGHTLY_RULES: &str = "[[rule]]\nname = \"bots\"\nservice_account = true\n\
    reason = \"bot {username}\"\n[rule.match]\nusername = \"^(deploy-bot-44|ci-runner-94)$\"\n";

#[test]
fn the_service_command_runs_as_an_unprivileged_user_against_the_simulator() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: switching to an unprivileged user needs root (CI runs as root)");
        return;
    }
    if !tool_available("setpriv", "--version") {
        return;
    }
    const NOBODY: u32 = 65534;
    let sim = simulator(|_| {});
    let work = Workdir::new();
    let open = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    open(work.dir.path(), 0o755);
    // The binary where the dynamic user can run it.
    let binary = work.path("drata-svcacct");
    std::fs::copy(bin(), &binary).unwrap();
    open(&binary, 0o755);
    // What systemd prepares: a state directory the user owns, credentials it can read.
    let state = work.path("state");
    let credentials = work.path("credentials");
    for dir in [&state, &credentials] {
        std::fs::create_dir(dir).unwrap();
        std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
        open(dir, 0o700);
    }
    for (name, text) in [
        ("drata-key", SIM_TOKEN.to_owned()),
        ("rules.toml", NIGHTLY_RULES.to_owned()),
    ] {
        let path = credentials.join(name);
        std::fs::write(&path, text).unwrap();
        std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
        open(&path, 0o400);
    }
    let run = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/bin/sh",
        ])
        .args(["-c"])
        .arg(exec_start(&binary))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("STATE_DIRECTORY", &state)
        .env("CREDENTIALS_DIRECTORY", &credentials)
        .env("DRATA_BASE_URL", sim.base_url())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(applied_ids(&sim), [44, 94], "decided by the rules");
    let day = std::fs::read_dir(&state)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut names: Vec<String> = std::fs::read_dir(&day)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    let stamp = names[0]
        .trim_start_matches("evidence-")
        .trim_end_matches(".md");
    assert_eq!(
        names,
        [
            format!("evidence-{stamp}.md"),
            format!("report-{stamp}.csv"),
            format!("report-{stamp}.journal.jsonl"),
            format!("summary-{stamp}.json"),
        ],
        "one time stamp names the night's files"
    );
}
