//! Promises that hold on every system the tool is built for: the commit in `--version`, the
//! run lock on the input (docs/contract.md, "Platforms", lists how Windows differs).

use std::process::Command;
use std::time::Duration;

use crate::support::*;

#[test]
fn version_names_the_commit_it_was_built_from() {
    let output = Command::new(bin()).arg("--version").output().unwrap();
    assert!(output.status.success());
    let version = String::from_utf8(output.stdout).unwrap();
    let prefix = concat!("drata-svcacct ", env!("CARGO_PKG_VERSION"), " (");
    assert!(version.starts_with(prefix), "{version}");
    let git = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match git {
        Ok(git) if git.status.success() => {
            let commit = String::from_utf8(git.stdout).unwrap();
            assert_eq!(version.trim_end(), format!("{prefix}{})", commit.trim()));
        }
        _ => eprintln!("skipped: the commit check (git or the clone is missing)"),
    }
}

#[test]
fn a_second_apply_of_an_input_being_applied_is_refused_and_sends_nothing() {
    // The first run's one request is answered after a minute: it holds the lock meanwhile.
    let server = TestServer::start(|seen, _| {
        Reply::identity(seen.id().unwrap()).after(Duration::from_secs(60))
    });
    let work = Workdir::new();
    let mut first = Apply::on(&server)
        .within(&work)
        .input(rows_csv(1, 1))
        .report("first.csv")
        .spawn();
    wait_until(Duration::from_secs(20), "the first run's request", || {
        !server.seen().is_empty()
    });
    let second = Apply::on(&server)
        .within(&work)
        .file("input.csv")
        .report("second.csv")
        .run();
    let requests = server.seen().len();
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert_eq!(second.run.code, 2, "{}", second.run.stderr);
    assert_eq!(requests, 1, "the second run sent nothing");
    // Unix: flock refuses the second lock; Windows: the first run's mandatory lock keeps
    // the second from reading the file at all.
    let refusal = if cfg!(windows) {
        "cannot read"
    } else {
        "is being applied by another drata-svcacct run"
    };
    assert!(second.run.stderr.contains(refusal), "{}", second.run.stderr);
}
