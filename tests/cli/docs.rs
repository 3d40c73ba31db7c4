//! What a reader gets from the man pages, the help and the completion scripts: pages for
//! every command that render without a command broken across lines, a cron example that
//! runs as a crontab line, and completions that real bash, zsh and fish shells complete
//! with every visible option of a subcommand and none of the hidden ones. A test whose
//! program (groff, zsh, fish) is missing says so on standard error and checks nothing more.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use clap::CommandFactory;

use crate::support::*;

/// How long a shell may take to answer one completion before the test fails.
const SHELL_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn every_command_has_a_man_page_with_its_options() {
    let work = Workdir::new();
    let dir = work.path("pages");
    let run = Invocation::new(["man", "--out", dir.to_str().unwrap()], None)
        .within(&work)
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let written: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let definition = definition();
    let mut expected: BTreeSet<String> = commands(&definition)
        .map(|command| format!("drata-svcacct-{}.1", command.get_name()))
        .collect();
    expected.insert("drata-svcacct.1".to_owned());
    expected.insert("drata-svcacct-rules.5".to_owned());
    assert_eq!(written, expected);

    // The top page points only to pages that exist, and to each of them.
    let top = unescaped(&std::fs::read_to_string(dir.join("drata-svcacct.1")).unwrap());
    let referenced: BTreeSet<String> = top
        .match_indices("drata-svcacct-")
        .filter_map(|(at, _)| top[at..].split_once("(1)").map(|(name, _)| name))
        .filter(|name| !name.contains(char::is_whitespace))
        .map(|name| format!("{name}.1"))
        .collect();
    let pages_of_commands = BTreeSet::from([
        "drata-svcacct.1".to_owned(),
        "drata-svcacct-rules.5".to_owned(),
    ]);
    assert_eq!(referenced, &expected - &pages_of_commands);

    for command in commands(&definition) {
        let name = command.get_name();
        let file = std::fs::read_to_string(dir.join(format!("drata-svcacct-{name}.1"))).unwrap();
        let printed = Invocation::new(["man", name], None).within(&work).run();
        assert_eq!(printed.code, 0, "{}", printed.stderr);
        assert_eq!(
            printed.stdout, file,
            "man {name} prints the page --out writes"
        );
        let page = unescaped(&file);
        assert!(
            page.contains(&format!(".TH drata-svcacct-{name} 1")),
            "{name}"
        );
        for option in options(command, Visibility::Shown)
            .iter()
            .filter(|o| o.starts_with("--"))
        {
            assert!(
                page.contains(option.as_str()),
                "{name}'s page lacks {option}"
            );
        }
        for option in options(command, Visibility::Hidden)
            .iter()
            .filter(|o| o.starts_with("--"))
        {
            assert!(
                !page.contains(option.as_str()),
                "{name}'s page shows {option}"
            );
        }
    }
}

#[test]
fn man_pages_keep_commands_and_options_whole() {
    let work = Workdir::new();
    let page = work.write(
        "apply.1",
        &Invocation::new(["man", "apply"], None)
            .within(&work)
            .run()
            .stdout,
    );
    // In the source: hyphenation off, and the examples in no-fill mode.
    let source = std::fs::read_to_string(&page).unwrap();
    assert!(source.contains("\n.nh\n"), "hyphenation is off");
    let examples = source
        .split_once(".SH EXAMPLES\n")
        .expect("an EXAMPLES section")
        .1;
    assert!(
        examples.starts_with(".nf\n") && examples.contains("\n.fi\n"),
        "{examples}"
    );

    // As a reader sees it, on a narrow terminal.
    let Some(rendered) = render_man_page(&page) else {
        return;
    };
    for (number, line) in rendered.lines().enumerate() {
        let broken = line.ends_with('\u{2010}')
            || line.ends_with('-') && line.trim_end_matches('-').ends_with(char::is_alphanumeric);
        assert!(!broken, "line {number} is hyphenated: {line:?}\n{rendered}");
    }
    let help = Apply::offline()
        .within(&work)
        .args(["--help"])
        .no_report()
        .run()
        .run
        .stdout;
    let commands: Vec<&str> = example_commands(&help).collect();
    assert!(commands.len() >= 8, "{help}");
    let shown: BTreeSet<&str> = rendered.lines().map(str::trim).collect();
    for command in commands {
        assert!(
            shown.contains(command),
            "not one line on the page: {command:?}\n{rendered}"
        );
    }
    assert!(rendered.contains("--reconcile"));
    assert!(!rendered.contains("--dry-run") && !rendered.contains("--progress-interval"));
}

// cron and /bin/sh are Unix's.
#[cfg(unix)]
#[test]
fn the_cron_example_is_one_crontab_line_that_runs() {
    let work = Workdir::new();
    let help = Apply::offline()
        .within(&work)
        .args(["--help"])
        .no_report()
        .run()
        .run
        .stdout;
    let entry = help
        .lines()
        .skip_while(|line| !line.contains("Nightly cron job"))
        .map(str::trim)
        .find(|line| line.starts_with(|c: char| c.is_ascii_digit()))
        .expect("a crontab line under the cron example");
    // Five time fields, then the command, all on the one line a crontab allows.
    let fields: Vec<&str> = entry.splitn(6, ' ').collect();
    assert_eq!(fields.len(), 6, "{entry}");
    assert!(
        !entry.ends_with('\\'),
        "a crontab entry cannot continue: {entry}"
    );
    let (command, stdin) = as_cron_reads_it(fields[5]);
    assert_eq!(stdin, None, "an unescaped % ends the command: {entry}");

    // Run by /bin/sh as cron would, with a stand-in that prints its arguments.
    let bin = work.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let stand_in = bin.join("drata-svcacct");
    std::fs::write(
        &stand_in,
        "#!/bin/sh\nfor a; do printf '%s\\n' \"$a\"; done\n",
    )
    .unwrap();
    set_executable(&stand_in);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("sh")
        .args(["-c", &command])
        .env("PATH", path)
        .output()
        .expect("sh");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let args: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(args.first().map(String::as_str), Some("apply"), "{args:?}");
    let report = args
        .iter()
        .skip_while(|arg| *arg != "--report")
        .nth(1)
        .expect("--report PATH");
    let stamp = report
        .strip_prefix("/var/log/svcacct/")
        .and_then(|name| name.strip_suffix(".csv"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        is_utc_stamp(stamp),
        "the report is named by the time of the run: {report}"
    );
}

#[test]
fn help_says_spreadsheets_are_read_too() {
    let work = Workdir::new();
    for command in ["validate", "plan", "apply"] {
        let help = Invocation::new([command, "--help"], None)
            .within(&work)
            .run()
            .run
            .stdout;
        assert!(!help.contains("The CSV to read"), "{help}");
        assert!(
            help.contains(".xlsx") && help.contains(".ods"),
            "{command}: {help}"
        );
    }
}

#[test]
fn bash_completes_every_visible_option_of_a_subcommand_and_no_hidden_one() {
    let Some(bash) = program("bash") else {
        return;
    };
    let work = Workdir::new();
    let script = work.write("drata-svcacct.bash", &completion_script(&work, "bash"));
    let driver = work.write("drive.bash", BASH_DRIVER);
    let complete = |words: &[&str]| -> BTreeSet<String> {
        let mut command = Command::new(&bash);
        command
            .arg("--norc")
            .arg("--noprofile")
            .arg(&driver)
            .arg(&script);
        command.arg("drata-svcacct").args(words);
        lines(&run_shell(command))
    };
    check_completions("bash", complete);
}

#[test]
fn zsh_completes_every_visible_option_of_a_subcommand_and_no_hidden_one() {
    let Some(zsh) = program("zsh") else {
        return;
    };
    let work = Workdir::new();
    let functions = work.path("functions");
    std::fs::create_dir(&functions).unwrap();
    std::fs::write(
        functions.join("_drata-svcacct"),
        completion_script(&work, "zsh"),
    )
    .unwrap();
    let driver = work.write("drive.zsh", ZSH_DRIVER);
    let complete = |words: &[&str]| -> BTreeSet<String> {
        let offered = work.path("offered");
        let _ = std::fs::remove_file(&offered);
        let mut command = Command::new(&zsh);
        command.arg("-f").arg(&driver).arg(&functions).arg(&offered);
        command.arg(format!("drata-svcacct {}", words.join(" ")));
        command.env("HOME", work.dir.path());
        run_shell(command);
        lines(&std::fs::read(&offered).unwrap_or_default())
    };
    check_completions("zsh", complete);
}

#[test]
fn fish_completes_every_visible_option_of_a_subcommand_and_no_hidden_one() {
    let Some(fish) = program("fish") else {
        return;
    };
    let work = Workdir::new();
    let script = work.write("drata-svcacct.fish", &completion_script(&work, "fish"));
    let complete = |words: &[&str]| -> BTreeSet<String> {
        let mut command = Command::new(&fish);
        command.args(["--no-config", "-c", "source $SCRIPT; complete -C \"$LINE\""]);
        command.env("SCRIPT", &script);
        command.env("LINE", format!("drata-svcacct {}", words.join(" ")));
        command.env("HOME", work.dir.path());
        // A candidate, then a tab and its description.
        lines(&run_shell(command))
            .into_iter()
            .map(|line| line.split('\t').next().unwrap_or_default().to_owned())
            .collect()
    };
    check_completions("fish", complete);
}

/// What every shell must offer: `apply --rec` is `--reconcile` alone; `COMMAND -` offers
/// every visible option of the command and none of the hidden ones; the top level offers
/// no hidden option either.
fn check_completions(shell: &str, complete: impl Fn(&[&str]) -> BTreeSet<String>) {
    assert_eq!(
        complete(&["apply", "--rec"]),
        BTreeSet::from(["--reconcile".to_owned()]),
        "{shell}: apply --rec<TAB>"
    );
    let definition = definition();
    for command in commands(&definition) {
        let name = command.get_name();
        let offered = complete(&[name, "-"]);
        let shown = options(command, Visibility::Shown);
        let missing: Vec<_> = shown.difference(&offered).collect();
        assert!(
            missing.is_empty(),
            "{shell}: {name} -<TAB> lacks {missing:?}: {offered:?}"
        );
        let hidden = options(command, Visibility::Hidden);
        let leaked: Vec<_> = hidden.intersection(&offered).collect();
        assert!(
            leaked.is_empty(),
            "{shell}: {name} -<TAB> offers hidden {leaked:?}"
        );
    }
    let top = complete(&["-"]);
    let leaked: Vec<_> = options(&definition, Visibility::Hidden)
        .into_iter()
        .filter(|option| top.contains(option))
        .collect();
    assert!(
        leaked.is_empty(),
        "{shell}: -<TAB> offers hidden {leaked:?}"
    );
    assert!(top.contains("--quiet"), "{shell}: {top:?}");
}

/// Completes the words after the program name in bash, as the shell does on TAB: the
/// function `complete -p` names is called with COMP_WORDS and COMP_CWORD set. Prints the
/// candidates, one a line.
const BASH_DRIVER: &str = r#"
source "$1" || exit 3
shift
spec=$(complete -p drata-svcacct) || exit 4
function=${spec##*-F }
function=${function%% *}
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
"$function" drata-svcacct "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;

/// Completes a line in an interactive zsh on a pseudo-terminal (zsh/zpty), with the
/// completion system on and the script in `fpath`: TAB is bound to a widget that
/// completes and then shows a mark, which ends the wait, and every candidate that reaches
/// `compadd` is written to a file (arguments: the functions' folder, that file, the line).
/// The marks are typed split (`RE''ADY`) so that the echo of the typing cannot match.
const ZSH_DRIVER: &str = r#"
zmodload zsh/zpty || exit 3
local dir=$1 out=$2 line=$3 reply
zpty shell zsh -f -i
zpty -w shell "PS1='> '; fpath=(${(q)dir} \$fpath); autoload -Uz compinit; compinit -u -D; compadd() { if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd \"\$@\"; return; fi; local -a hits; builtin compadd -O hits \"\$@\"; (( \$#hits )) && print -rl -- \$hits >> ${(q)out}; builtin compadd \"\$@\" }; complete-and-say() { zle complete-word; zle -M COMP''LETED }; zle -N complete-and-say; bindkey '^I' complete-and-say; print RE''ADY"
zpty -r shell reply '*READY*'
zpty -w -n shell "$line"$'\t'
zpty -r shell reply '*COMPLETED*'
zpty -d shell
"#;

#[derive(Clone, Copy, PartialEq)]
enum Visibility {
    Shown,
    Hidden,
}

/// The command line's definition, built: global options are in every subcommand, and
/// `--help` and `--version` are there.
fn definition() -> clap::Command {
    let mut definition = Cli::command();
    definition.build();
    definition
}

/// The commands a reader can run, without clap's own `help`.
fn commands(definition: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    definition
        .get_subcommands()
        .filter(|command| !command.is_hide_set() && command.get_name() != "help")
}

/// The options of a command as typed (`--reconcile`, `-j`): those help shows, with their
/// visible aliases, or the hidden ones.
fn options(command: &clap::Command, visibility: Visibility) -> BTreeSet<String> {
    let mut spelled = BTreeSet::new();
    for arg in command.get_arguments().filter(|arg| !arg.is_positional()) {
        let shown = !arg.is_hide_set();
        if shown == (visibility == Visibility::Shown) {
            spelled.extend(arg.get_long().map(|long| format!("--{long}")));
            spelled.extend(arg.get_short().map(|short| format!("-{short}")));
            if shown {
                let aliases = arg.get_visible_aliases().into_iter().flatten();
                spelled.extend(aliases.map(|alias| format!("--{alias}")));
            }
        }
    }
    spelled
}

/// The commands of the help's examples: the indented lines under `Examples:` that start
/// with the program, an assignment, or a crontab schedule.
fn example_commands(help: &str) -> impl Iterator<Item = &str> {
    help.lines()
        .skip_while(|line| !line.starts_with("Examples:"))
        .filter(|line| line.starts_with("    "))
        .map(str::trim)
}

/// Roff source with its escaped hyphens as a reader sees them.
fn unescaped(roff: &str) -> String {
    roff.replace("\\-", "-")
}

/// The page as `man` shows it on a 60-column terminal, in plain text; None (said on
/// standard error) when groff is not installed.
fn render_man_page(page: &Path) -> Option<String> {
    let groff = program("groff")?;
    let output = Command::new(groff)
        .args(["-man", "-Tutf8", "-rLL=60n", "-P-cbou"])
        .arg(page)
        .env("GROFF_NO_SGR", "1")
        .output()
        .expect("groff");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // groff may render roff's minus (`\-`) as U+2212.
    Some(String::from_utf8_lossy(&output.stdout).replace('\u{2212}', "-"))
}

/// A crontab command as cron runs it (crontab(5)): `\%` is a `%`, and an unescaped `%`
/// ends the command, the rest going to its standard input.
#[cfg(unix)]
fn as_cron_reads_it(command: &str) -> (String, Option<String>) {
    let mut read = String::new();
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.as_str().starts_with('%') => {
                read.push('%');
                chars.next();
            }
            '%' => return (read, Some(chars.collect())),
            _ => read.push(c),
        }
    }
    (read, None)
}

/// `date -u +%FT%H%M%SZ`: `2026-03-21T101530Z`.
#[cfg(unix)]
fn is_utc_stamp(stamp: &str) -> bool {
    let shape = stamp
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect::<String>();
    shape == "9999-99-99T999999Z"
}

#[cfg(unix)]
fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The completion script the binary prints for `shell`.
fn completion_script(work: &Workdir, shell: &str) -> String {
    let run = Invocation::new(["completions", shell], None)
        .within(work)
        .run()
        .run;
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
}

/// The path of a program on PATH, or None, said on standard error, so that a machine
/// without it skips the test (CI installs it).
fn program(name: &str) -> Option<std::path::PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    if found.is_none() {
        eprintln!("skipped: {name} is not installed");
    }
    found
}

/// Runs a shell to its end, failing the test if it does not end within SHELL_LIMIT or
/// fails; its standard output.
fn run_shell(mut command: Command) -> Vec<u8> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the shell");
    #[cfg(unix)]
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    let output: Output = match receiver.recv_timeout(SHELL_LIMIT) {
        Ok(output) => output.expect("wait for the shell"),
        Err(_) => {
            // SAFETY: kill(2) on the pid of the child this test started, not yet reaped.
            #[cfg(unix)]
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL)
            };
            panic!("{command:?} did not finish within {SHELL_LIMIT:?}");
        }
    };
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn lines(bytes: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The rules file's format has a page of section 5, made from docs/rules.md: its example
/// line for line, and each of its keys and placeholders.
#[test]
fn the_rules_file_has_a_man_page_with_its_example_whole() {
    let work = Workdir::new();
    let page = work.write(
        "drata-svcacct-rules.5",
        &Invocation::new(["man", "rules"], None)
            .within(&work)
            .run()
            .stdout,
    );
    let source = std::fs::read_to_string(&page).unwrap();
    assert!(
        source.starts_with(".TH DRATA\\-SVCACCT\\-RULES 5 "),
        "{source}"
    );
    let apply = Apply::offline()
        .within(&work)
        .args(["--help"])
        .no_report()
        .run()
        .run;
    assert!(
        apply.stdout.contains("drata-svcacct man rules"),
        "{}",
        apply.stdout
    );
    let Some(rendered) = render_man_page(&page) else {
        return;
    };
    let reference =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md"))
            .unwrap();
    let example = reference.split("```toml\n").nth(1).unwrap();
    let example = example.split("```").next().unwrap();
    for line in example.lines() {
        assert!(
            rendered.contains(line),
            "{line:?} is not on the page:\n{rendered}"
        );
    }
    for words in [
        "First match wins.",
        "{username}",
        "{date}",
        "validate --rules FILE",
    ] {
        assert!(rendered.contains(words), "{words}:\n{rendered}");
    }
}

/// Written into a man tree's `man1`, the rules file's page goes to `man5`, where `man`
/// looks for it.
#[test]
fn the_rules_page_goes_to_section_five_of_a_man_tree() {
    let work = Workdir::new();
    let man1 = work.path("share/man/man1");
    let run = Invocation::new(["man", "--out", man1.to_str().unwrap()], None)
        .within(&work)
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(man1.join("drata-svcacct-apply.1").is_file());
    assert!(!man1.join("drata-svcacct-rules.5").exists());
    assert!(work.path("share/man/man5/drata-svcacct-rules.5").is_file());
}
