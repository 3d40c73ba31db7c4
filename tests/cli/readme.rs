//! The README's walkthroughs, run as written: the commands are read out of its fenced `sh`
//! blocks, so a command changed there is a command tested. The quarterly review runs against
//! the project's simulator (with fewer identities than the README starts, so the client's
//! default pace keeps the test short), then the recovery commands of "When something goes
//! wrong"; the nightly job's commands and cron line run against the simulator too, with the
//! walkthrough's environment and the README's system paths moved into a scratch directory;
//! the install commands run with a scratch home directory.

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// The address the README's `export DRATA_BASE_URL=...` points at: the simulator's default.
const README_SIMULATOR_URL: &str = "http://127.0.0.1:8080/public";

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The text from the heading `## {title}` to the next `## ` heading.
fn section(readme: &str, title: &str) -> String {
    let heading = format!("\n## {title}\n");
    let start = readme
        .find(&heading)
        .unwrap_or_else(|| panic!("no section {title:?}"))
        + 1;
    let rest = &readme[start + heading.len() - 1..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// Every command of the ```sh blocks of `text`, in order: indentation removed, lines continued
/// with `\` joined, each split into words as `sh` would (quotes, backslashes, `#` comments).
fn commands(text: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in text.lines().map(str::trim) {
        if !in_block {
            in_block = line == "```sh";
            continue;
        }
        if line == "```" {
            in_block = false;
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        let words = words(&pending);
        pending.clear();
        if !words.is_empty() {
            commands.push(words);
        }
    }
    assert!(!in_block, "an unclosed ```sh block");
    commands
}

fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let text = word.get_or_insert_with(String::new);
                text.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                let text = word.get_or_insert_with(String::new);
                text.extend(chars.by_ref().take_while(|&c| c != '"'));
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            '#' if word.is_none() => break,
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

fn run_tool(work: &Workdir, command: &[String], env: &[(String, String)]) -> Run {
    let run = env
        .iter()
        .fold(
            Invocation::new(&command[1..], None).within(work),
            |invocation, (name, value)| invocation.env(name, value),
        )
        .run()
        .run;
    assert_eq!(run.code, 0, "{command:?}\n{}", run.stderr);
    run
}

/// The variables an `export NAME=VALUE...` line of the README sets, the simulator's
/// address standing for the README's.
fn environment(sim: &RunningSimulator, command: &[String]) -> Vec<(String, String)> {
    command[1..]
        .iter()
        .map(|assignment| {
            let (name, value) = assignment.split_once('=').unwrap();
            let value = if value == README_SIMULATOR_URL {
                sim.base_url()
            } else {
                value.to_owned()
            };
            (name.to_owned(), value)
        })
        .collect()
}

/// What the quarterly walkthrough has set and seen so far.
#[derive(Default)]
struct Walkthrough {
    env: Vec<(String, String)>,
    plan_output: String,
    ran: Vec<String>,
}

impl Walkthrough {
    /// Runs one command of the walkthrough; false when it cannot be run here (no `sed`).
    fn step(&mut self, sim: &RunningSimulator, work: &Workdir, command: &[String]) -> bool {
        match (command[0].as_str(), command.get(1).map(String::as_str)) {
            ("drata-svcacct", Some("simulate")) => {
                assert!(
                    command.iter().any(|word| word == "--identities"),
                    "{command:?}"
                );
            }
            ("export", _) => self.env.extend(environment(sim, command)),
            ("sed", _) => {
                let at = command.len() - 2;
                assert_eq!(command[at], ">", "{command:?}");
                let status = Command::new("sed")
                    .args(&command[1..at - 1])
                    .arg(work.path(&command[at - 1]))
                    .stdout(std::fs::File::create(work.path(&command[at + 1])).unwrap())
                    .status();
                let Ok(status) = status else {
                    eprintln!("no sed here: the review step is not checked");
                    return false;
                };
                assert!(status.success(), "{command:?}");
            }
            ("drata-svcacct", Some(name)) => {
                let run = run_tool(work, command, &self.env);
                if name == "plan" {
                    self.plan_output = run.stdout;
                }
                self.ran.push(name.to_owned());
            }
            _ => panic!("a command this test does not know how to run: {command:?}"),
        }
        true
    }
}

#[test]
fn the_quarterly_review_of_the_readme_runs_on_the_simulator() {
    let readme = readme();
    let review = section(&readme, "The quarterly review");
    let on_simulator = review
        .split_once("**On Drata**")
        .expect("the walkthrough ends where \"On Drata\" starts")
        .0;
    let sim = simulator(|config| config.identities = 100);
    let work = Workdir::new();
    let mut walk = Walkthrough::default();
    for command in commands(on_simulator) {
        if !walk.step(&sim, &work, &command) {
            return;
        }
    }
    let Walkthrough {
        env,
        plan_output,
        ran,
    } = walk;
    assert_eq!(
        ran,
        [
            "export",
            "export",
            "plan",
            "apply",
            "export",
            "upload-evidence"
        ]
    );
    assert!(plan_output.contains("Would update"), "{plan_output}");
    // The columns step 3 says not to touch are there to be left alone.
    let exported = std::fs::read_to_string(work.path("q4-review.csv")).unwrap();
    let header = exported.lines().next().unwrap();
    for column in [
        "drataServiceAccount",
        "drataReason",
        "exportedAt",
        "suggestion",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let changed = sim.applied();
    assert!(!changed.is_empty(), "the review changed something");
    let items = sim.evidence();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].control_ids, [24]);
    assert_eq!(
        items[0].file,
        std::fs::read(work.path("q4-evidence.xlsx")).unwrap()
    );
    // The evidence prints as an auditor files it (checked where LibreOffice is installed;
    // required in CI).
    crate::print::prints_as_filed(&work, &work.path("q4-evidence.xlsx"));

    // Then what "When something goes wrong" shows for this review: resume (nothing left to
    // send), then undo (every change put back: one more PUT per identity changed).
    let recovery = commands(&section(&readme, "When something goes wrong"));
    assert_eq!(recovery.len(), 2, "{recovery:?}");
    for command in &recovery {
        assert_eq!(command[0], "drata-svcacct", "{command:?}");
        run_tool(&work, command, &env);
    }
    let resumed = read_report(&work.path("q4-report.resumed.csv"));
    assert!(resumed.iter().all(|row| row["outcome"] == "skipped"
        || row["outcome"] == "unchanged"
        || row["outcome"] == "drifted"));
    let after_undo = sim.applied();
    assert_eq!(after_undo.len(), changed.len());
    assert!(after_undo.values().all(|&puts| puts == 2), "{after_undo:?}");
}

/// The entries of the ```cron blocks of `text`.
fn cron_entries(text: &str) -> Vec<String> {
    let mut entries = Vec::new();
    let mut in_block = false;
    for line in text.lines().map(str::trim) {
        match line {
            "```cron" => in_block = true,
            "```" => in_block = false,
            entry if in_block && !entry.is_empty() => entries.push(entry.to_owned()),
            _ => {}
        }
    }
    entries
}

/// The README's system paths (`/etc/...`, `/var/log/...`) moved into a scratch directory:
/// the folder of each made, and the key or rules file it names put there, readable by the
/// owner only as the README's `install -m 0600` leaves them.
struct SystemPaths<'a> {
    work: &'a Workdir,
    key: String,
    rules: String,
}

impl SystemPaths<'_> {
    /// `word` with every absolute path in it moved, and the file it names prepared.
    fn moved(&self, word: &str) -> String {
        let Some(path) = word.strip_prefix('/') else {
            return word.to_owned();
        };
        let (folder, name) = path.rsplit_once('/').unwrap();
        let folder = self.work.path(folder);
        std::fs::create_dir_all(&folder).unwrap();
        let contents = match name {
            "key" => Some(&self.key),
            "rules.toml" => Some(&self.rules),
            _ => None,
        };
        if let Some(contents) = contents {
            let file = folder.join(name);
            std::fs::write(&file, contents).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let owner_only = std::fs::Permissions::from_mode(0o600);
                std::fs::set_permissions(&file, owner_only).unwrap();
            }
        }
        format!("{}/{name}", folder.display())
    }
}

/// The nightly job as the README gives it, on the walkthrough's simulator: `plan --rules`
/// on the sample, the nightly `apply` (key from its file), then the cron line, run by `sh`
/// as cron would, which finds nothing left to do and sends nothing.
#[test]
fn the_nightly_job_of_the_readme_runs_on_the_simulator() {
    let readme = readme();
    let sim = simulator(|config| config.identities = 100);
    let work = Workdir::new();
    let env: Vec<(String, String)> = commands(&section(&readme, "The quarterly review"))
        .iter()
        .filter(|command| command[0] == "export")
        .flat_map(|command| environment(&sim, command))
        .collect();
    let key = env.iter().find(|(name, _)| name == "DRATA_API_KEY");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let system = SystemPaths {
        work: &work,
        key: key.expect("the README exports the key").1.clone(),
        rules: std::fs::read_to_string(root.join("samples/rules.toml")).unwrap(),
    };
    std::fs::create_dir(work.path("samples")).unwrap();
    work.write("samples/rules.toml", &system.rules);
    let nightly = section(&readme, "The nightly job");
    let mut ran = Vec::new();
    let mut set_up = String::new();
    for command in commands(&nightly) {
        match command[0].as_str() {
            // Installing for systemd needs root and systemd: `units` runs the service's
            // command; here the set-up must put the files where the nightly command reads.
            "sudo" => set_up.push_str(&format!("{command:?}\n")),
            // The container's example: `the_container_example_runs_the_nightly_job`.
            "docker" => {}
            "drata-svcacct" => {
                let moved: Vec<String> = command.iter().map(|w| system.moved(w)).collect();
                let run = run_tool(&work, &moved, &env);
                ran.push((command[1].clone(), run));
            }
            _ => panic!("a command this test does not know how to run: {command:?}"),
        }
    }
    let names: Vec<&str> = ran.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["plan", "apply"]);
    let plan = &ran[0].1;
    assert!(
        plan.stderr.contains("rule automation: ") && plan.stderr.contains("matched no rule"),
        "{}",
        plan.stderr
    );
    let rows = read_report(&work.path("nightly.csv"));
    assert!(!rows.is_empty(), "the sample's rules decide something");
    let mut reported: Vec<u64> = rows.iter().map(|r| r["id"].parse().unwrap()).collect();
    reported.sort_unstable();
    let mut applied: Vec<u64> = sim.applied().into_keys().collect();
    applied.sort_unstable();
    assert_eq!(
        reported, applied,
        "each row the rules decided was sent once"
    );
    assert!(rows
        .iter()
        .all(|r| r["source"].starts_with("rule:") && r["outcome"] == "updated"));
    assert!(work.path("nightly.xlsx").exists());
    for file in ["/etc/drata-svcacct/key", "/etc/drata-svcacct/rules.toml"] {
        assert!(
            set_up.contains(file),
            "the set-up installs {file}: {set_up}"
        );
    }

    // The cron line, the next night: nothing new, nothing sent, nothing said.
    run_the_cron_line(&sim, &system, &env, &nightly);
}

/// The README's container example, checked against the Dockerfile and its command run on the
/// simulator: it runs as the calling user (who can read the key file, mode 0600, and write to
/// the folder), mounts that folder where the image works, passes the key as a read-only file,
/// and the nightly `apply` after the image's name decides what the rules decide.
#[test]
fn the_container_example_runs_the_nightly_job() {
    let readme = readme();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let docker: Vec<Vec<String>> = commands(&section(&readme, "The nightly job"))
        .into_iter()
        .filter(|command| command[0] == "docker")
        .collect();
    let image = docker[0][3].clone();
    assert_eq!(docker[0][..3], ["docker", "build", "-t"], "{docker:?}");
    let run = &docker[1];
    let at_image = run.iter().position(|word| *word == image).unwrap();
    let options = &run[2..at_image];
    let after = |flag: &str| -> Vec<&str> {
        { options.windows(2) }
            .filter(|pair| pair[0] == flag)
            .map(|pair| pair[1].as_str())
            .collect()
    };
    assert_eq!(after("--user"), ["$(id -u):$(id -g)"], "{run:?}");
    // The final stage's: the image's working folder.
    let workdir = { dockerfile.lines().rev() }
        .find_map(|line| line.strip_prefix("WORKDIR "))
        .unwrap();
    let mounts = after("-v");
    assert!(
        mounts.contains(&format!("$PWD:{workdir}").as_str()),
        "{mounts:?}"
    );
    assert!(dockerfile.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{image}\"]")));
    let tool: Vec<String> = std::iter::once(image.clone())
        .chain(run[at_image + 1..].iter().cloned())
        .collect();
    let token_file = tool.windows(2).find(|p| p[0] == "--token-file").unwrap()[1].clone();
    assert!(
        mounts
            .iter()
            .any(|m| m.ends_with(&format!(":{token_file}:ro"))),
        "the key is a read-only file: {mounts:?}"
    );

    // In the mounted folder: the rules; the key where the container sees it.
    let sim = simulator(|config| config.identities = 100);
    let work = Workdir::new();
    let rules = std::fs::read_to_string(root.join("samples/rules.toml")).unwrap();
    work.write("rules.toml", &rules);
    let key = work.write("drata_key", SIM_TOKEN);
    // Mode 0600, as the README installs it: only its owner, the container's user, reads it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let moved: Vec<String> = { tool.iter() }
        .map(|word| match word == &token_file {
            true => work.path("drata_key").display().to_string(),
            false => word.clone(),
        })
        .collect();
    let env = [("DRATA_BASE_URL".to_owned(), sim.base_url())];
    let done = run_tool(&work, &moved, &env);
    assert!(done.stderr.is_empty(), "quiet: {}", done.stderr);
    let rows = read_report(&work.path("nightly.csv"));
    assert!(!rows.is_empty(), "the sample's rules decide something");
    assert_eq!(rows.len(), sim.applied().len());
    assert!(work.path("nightly.xlsx").exists());
}

/// Runs the nightly section's cron entry with `sh`, as cron reads it, the README's paths
/// moved: it finds nothing left to do, sends nothing, says nothing, and writes one report.
fn run_the_cron_line(
    sim: &RunningSimulator,
    system: &SystemPaths<'_>,
    env: &[(String, String)],
    nightly: &str,
) {
    let work = system.work;
    let entries = cron_entries(nightly);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let fields: Vec<&str> = entries[0].splitn(6, ' ').collect();
    assert_eq!(fields.len(), 6, "{entries:?}");
    let as_cron_reads_it = fields[5].replace("\\%", "%");
    assert_eq!(
        as_cron_reads_it.matches('%').count(),
        fields[5].matches("\\%").count(),
        "a bare % would end the command"
    );
    let (program, rest) = as_cron_reads_it.split_once(' ').unwrap();
    assert_eq!(program, "/usr/local/bin/drata-svcacct");
    let line: Vec<String> = rest.split(' ').map(|w| system.moved(w)).collect();
    let puts = sim.applied().values().sum::<u32>();
    let base_url = env
        .iter()
        .find(|(name, _)| name == "DRATA_BASE_URL")
        .unwrap();
    let cron = Command::new("sh")
        .arg("-c")
        .arg(format!("{} {}", bin().display(), line.join(" ")))
        .current_dir(work.dir.path())
        .env_remove("DRATA_API_KEY")
        .env("DRATA_BASE_URL", &base_url.1)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&cron.stderr);
    assert!(cron.status.success(), "{said}");
    assert!(said.is_empty() && cron.stdout.is_empty(), "{said}");
    assert_eq!(
        sim.applied().values().sum::<u32>(),
        puts,
        "the next night sends nothing"
    );
    // One report per run, and the report's journal beside it.
    let logs: Vec<_> = std::fs::read_dir(work.path("var/log/svcacct"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".journal.jsonl"))
        .collect();
    assert_eq!(logs.len(), 1, "one report per run");
}

#[test]
fn the_install_commands_of_the_readme_put_completions_and_pages_in_place() {
    let install = section(&readme(), "Install");
    let home = Workdir::new();
    let bin = bin().parent().unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let mut ran = 0;
    for command in commands(&install) {
        if command[0] == "cargo" {
            assert_eq!(command, ["cargo", "install", "--locked", "--path", "."]);
            continue;
        }
        // Run by sh, as a reader would paste it, so that ~ and > are the shell's.
        let line = command
            .iter()
            .map(|word| match word.as_str() {
                ">" | "~" => word.clone(),
                word if word.starts_with("~/") => word.to_owned(),
                word => format!("'{word}'"),
            })
            .collect::<Vec<_>>()
            .join(" ");
        let status = Command::new("sh")
            .args(["-c", &line])
            .env("HOME", home.dir.path())
            .env("PATH", &path)
            .current_dir(home.dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "{line}");
        ran += 1;
    }
    assert_eq!(ran, 7);
    for (file, expected) in [
        (
            ".local/share/bash-completion/completions/drata-svcacct",
            "complete",
        ),
        (".zfunc/_drata-svcacct", "#compdef drata-svcacct"),
        (
            ".config/fish/completions/drata-svcacct.fish",
            "complete -c drata-svcacct",
        ),
        (".cargo/share/man/man1/drata-svcacct-apply.1", ".TH"),
    ] {
        let text =
            std::fs::read_to_string(home.path(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains(expected), "{file}");
    }
}

#[test]
fn the_docs_index_lists_every_reference_page() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let index = std::fs::read_to_string(docs.join("README.md")).unwrap();
    for entry in std::fs::read_dir(&docs).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") && name != "README.md" {
            assert!(
                index.contains(&format!("]({name})")),
                "docs/README.md lacks {name}"
            );
        }
    }
}

/// Every relative link of the README and CONTRIBUTING.md names a file that exists.
#[test]
fn the_readme_links_to_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for page in ["README.md", "CONTRIBUTING.md"] {
        let text = std::fs::read_to_string(root.join(page)).unwrap();
        for (at, _) in text.match_indices("](") {
            let target = text[at + 2..].split(')').next().unwrap();
            let file = target.split('#').next().unwrap();
            if file.is_empty() || file.contains("://") {
                continue;
            }
            assert!(root.join(file).exists(), "{page} links to {target}");
        }
    }
}

/// The first screen's two commands, word for word; the first is run by
/// `operator::the_readme_command_runs_on_the_builtin_simulator` on the same sample.
#[test]
fn the_first_screen_keeps_its_two_set_up_commands() {
    let readme = readme();
    let first_screen = &readme[..readme.find("\n## ").unwrap()];
    assert_eq!(
        commands(first_screen),
        [
            vec![
                "cargo",
                "run",
                "--release",
                "--",
                "apply",
                "samples/quarterly-review.csv",
                "--simulate"
            ],
            vec!["cargo", "test"],
        ]
    );
}

/// The part for the people who run the tool (up to "Reference and development") stays short
/// enough to read: words counted as `wc -w` counts them.
#[test]
fn the_readme_for_users_stays_under_1800_words() {
    let readme = readme();
    let end = readme
        .find("\n## Reference and development\n")
        .expect("the reference section");
    let words = readme[..end].split_whitespace().count();
    assert!(words < 1800, "{words} words before the reference links");
}
