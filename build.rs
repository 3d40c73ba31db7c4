//! Names the commit the binary is built from in `--version`: `0.1.0 (abc1234)`, or
//! `0.1.0 (unknown)` when built without git or outside a clone (from a package).

use std::path::Path;
use std::process::Command;

fn main() {
    // Only a clone's own commit: a package unpacked inside another repository (cargo
    // package's check builds in target/) is not that repository's commit.
    let in_clone = Path::new(env!("CARGO_MANIFEST_DIR")).join(".git").exists();
    // A build without the clone's .git (a container's context) may name it instead.
    println!("cargo:rerun-if-env-changed=DRATA_SVCACCT_COMMIT");
    let given = std::env::var("DRATA_SVCACCT_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty());
    let commit = given.or_else(|| {
        in_clone
            .then(|| git(&["rev-parse", "--short", "HEAD"]))
            .flatten()
    });
    println!(
        "cargo:rustc-env=DRATA_SVCACCT_VERSION={} ({})",
        env!("CARGO_PKG_VERSION"),
        commit.as_deref().unwrap_or("unknown")
    );
    // Built again when HEAD moves: a checkout (HEAD) or a commit (the branch's ref, loose
    // or packed). Cargo takes a watched file that does not exist for a change on every
    // build, so only files that exist are watched; a branch whose ref is only packed is
    // watched through the folder its loose ref will be written to.
    println!("cargo:rerun-if-changed=build.rs");
    if commit.is_some() {
        let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
        watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
        for name in watched {
            let Some(path) = git(&["rev-parse", "--git-path", &name]) else {
                continue;
            };
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
            let existing = if path.exists() {
                Some(path.as_path())
            } else if name.starts_with("refs/") {
                path.parent().filter(|folder| folder.exists())
            } else {
                None
            };
            if let Some(existing) = existing {
                println!("cargo:rerun-if-changed={}", existing.display());
            }
        }
    }
}

/// The trimmed output of a git command that succeeded, run in the package's directory.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}
