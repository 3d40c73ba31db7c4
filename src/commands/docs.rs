//! `completions` and `man`: generated from the same clap definition as the parser, with
//! what the generators get wrong put right here.

use std::io::{self, Write};
use std::path::Path;

use clap_mangen::Man;

use crate::error::Error;
use crate::exit;
use crate::output::Console;

pub(super) fn completions(
    shell: clap_complete::Shell,
    definition: clap::Command,
) -> Result<u8, Error> {
    let bin_name = definition.get_name().to_owned();
    let mut visible = without_hidden(&definition);
    let mut buffer = Vec::new();
    clap_complete::generate(shell, &mut visible, &bin_name, &mut buffer);
    if shell == clap_complete::Shell::Bash {
        let script = String::from_utf8_lossy(&buffer);
        buffer = bash_case_labels_fixed(&script, &bin_name).into_bytes();
    }
    write_stdout(&buffer)
}

/// The definition without what it hides: the generators offer hidden options (the
/// undocumented tuning knobs, the refused `--dry-run` and `-o` of `apply`), and a clap
/// command cannot drop an argument, so the visible parts are copied into a new one.
/// Only what the completion generators read is carried.
fn without_hidden(command: &clap::Command) -> clap::Command {
    let mut visible = clap::Command::new(command.get_name().to_owned())
        .visible_aliases(command.get_visible_aliases().map(str::to_owned))
        .subcommand_required(command.is_subcommand_required_set())
        .propagate_version(command.is_propagate_version_set())
        .args(
            command
                .get_arguments()
                .filter(|arg| !arg.is_hide_set())
                .cloned(),
        )
        .subcommands(
            command
                .get_subcommands()
                .filter(|subcommand| !subcommand.is_hide_set())
                .map(without_hidden),
        );
    if let Some(about) = command.get_about() {
        visible = visible.about(about.clone());
    }
    if let Some(version) = command.get_version() {
        visible = visible.version(version.to_owned());
    }
    visible
}

/// clap_complete spells a hyphenated program name two ways in its bash script: the loop
/// that walks the words sets `cmd` to `drata__svcacct__subcmd__apply`, the `case` that
/// picks the options reads `drata__subcmd__svcacct__subcmd__apply`, so no subcommand's
/// options are ever completed (clap-rs/clap#6421, not fixed in a release yet). The labels
/// are respelled the way the loop spells them; a script without the fault is unchanged.
fn bash_case_labels_fixed(script: &str, bin_name: &str) -> String {
    const SEPARATOR: &str = "__subcmd__";
    let wrong = format!("{}{SEPARATOR}", bin_name.replace('-', SEPARATOR));
    let right = format!("{}{SEPARATOR}", bin_name.replace('-', "__"));
    script
        .split_inclusive('\n')
        .map(|line| {
            let label = line.trim_start();
            match label.strip_prefix(&wrong) {
                Some(rest) if label.trim_end().ends_with(')') => {
                    let indent = &line[..line.len() - label.len()];
                    format!("{indent}{right}{rest}")
                }
                _ => line.to_owned(),
            }
        })
        .collect()
}

/// Prints one page (the top one, or `page`'s), or writes pages into `out`: all of them,
/// or only `page`'s.
pub(super) fn man(
    definition: clap::Command,
    page: Option<&str>,
    out: Option<&Path>,
) -> Result<u8, Error> {
    // Every command has its own page; a page for `help` would only say to read them.
    let mut top = definition.disable_help_subcommand(true);
    top.build();
    let source = format!(
        "{} {}",
        top.get_name(),
        top.get_version().unwrap_or_default()
    );
    if page == Some(RULES_PAGE) {
        return match out {
            None => write_stdout(rules_page(&source).as_bytes()),
            Some(dir) => write_pages(&[], &source, dir),
        };
    }
    let pages = match page {
        // clap checked the name against the list of commands.
        Some(name) => top.find_subcommand(name).into_iter().cloned().collect(),
        None if out.is_some() => every_page(&top),
        None => vec![top],
    };
    match out {
        None => {
            let mut buffer = Vec::new();
            for command in pages {
                render(&command, &source, &mut buffer).map_err(Error::Stdout)?;
            }
            write_stdout(&buffer)
        }
        Some(dir) => write_pages(&pages, &source, dir),
    }
}

/// The top command and every visible command under it, depth first.
fn every_page(command: &clap::Command) -> Vec<clap::Command> {
    let mut pages = vec![command.clone()];
    for subcommand in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.extend(every_page(subcommand));
    }
    pages
}

fn write_pages(pages: &[clap::Command], source: &str, dir: &Path) -> Result<u8, Error> {
    let failed = |path: &Path, source| Error::Output {
        what: "man page",
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|source| failed(dir, source))?;
    // The rules file's page goes with every set but a single command's.
    if pages.len() != 1 {
        let section = section_five(dir);
        std::fs::create_dir_all(&section).map_err(|source| failed(&section, source))?;
        let path = section.join(format!("drata-svcacct-{RULES_PAGE}.5"));
        std::fs::write(&path, rules_page(source)).map_err(|error| failed(&path, error))?;
    }
    for command in pages {
        let path = dir.join(Man::new(command.clone()).get_filename());
        let mut page = Vec::new();
        render(command, source, &mut page).map_err(|error| failed(&path, error))?;
        std::fs::write(&path, page).map_err(|error| failed(&path, error))?;
    }
    Ok(exit::SUCCESS)
}

/// One page, as clap_mangen renders it except for two things: hyphenation and full
/// justification are off (a reader copies commands and options from the page, and
/// `--rec‐oncile` broken across lines cannot be copied), and the examples are an
/// EXAMPLES section in no-fill mode, line for line as `--help` shows them, instead of
/// text refilled into a paragraph. `source` is the footer: the program and its version.
fn render(command: &clap::Command, source: &str, out: &mut Vec<u8>) -> io::Result<()> {
    // A subcommand of a built command is built, and titled `drata-svcacct-apply`.
    let man = Man::new(with_aliases_in_help(command.clone())).source(source);
    let mut sections = Sections::new(out);
    man.render_title(sections.next())?;
    sections.next().extend_from_slice(b".nh\n.ad l\n");
    man.render_name_section(sections.next())?;
    man.render_synopsis_section(sections.next())?;
    man.render_description_section(sections.next())?;
    if command.get_arguments().any(|arg| !arg.is_hide_set()) {
        man.render_options_section(sections.next())?;
    }
    if command.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(sections.next())?;
    }
    if let Some(examples) = command.get_after_help() {
        examples_section(&examples.to_string(), sections.next());
    }
    if command.get_version().is_some() {
        man.render_version_section(sections.next())?;
    }
    sections.finish();
    Ok(())
}

/// Where the page of section 5 goes: beside `man1` in a man tree (`man` finds a page only
/// in its section's folder), else in `dir` with the others.
fn section_five(dir: &Path) -> std::path::PathBuf {
    match (dir.file_name(), dir.parent()) {
        (Some(name), Some(parent)) if name == "man1" => parent.join("man5"),
        _ => dir.to_owned(),
    }
}

/// The name of the rules file's page: `man rules`, `drata-svcacct-rules.5`.
const RULES_PAGE: &str = "rules";

/// The rules file's format as its reference says it: the page is made from docs/rules.md,
/// so that the two cannot disagree.
const RULES_DOC: &str = include_str!("../../docs/rules.md");

/// docs/rules.md as a page of section 5 (file formats): its sections, paragraphs and
/// bullets, its examples line for line in no-fill mode, inline marks as bold.
fn rules_page(source: &str) -> String {
    let mut page = format!(
        ".TH DRATA\\-SVCACCT\\-RULES 5 \"\" \"{source}\"\n.nh\n.ad l\n.SH NAME\n\
         drata\\-svcacct\\-rules \\- the rules file of drata\\-svcacct \\-\\-rules\n\
         .SH SYNOPSIS\ndrata\\-svcacct plan|apply|validate|export \\-\\-rules FILE\n\
         .SH DESCRIPTION\n"
    );
    let mut code = false;
    let mut paragraph = false;
    for line in RULES_DOC.lines() {
        if line.starts_with("```") {
            page.push_str(if code { ".fi\n" } else { ".PP\n.nf\n" });
            code = !code;
        } else if code {
            page.push_str(&roff_line(line));
            page.push('\n');
        } else if line.starts_with("# ") {
            // The title: NAME says it.
        } else if let Some(heading) = line.strip_prefix('#').map(|h| h.trim_start_matches('#')) {
            page.push_str(&format!(".SH {}\n", inline(heading.trim()).to_uppercase()));
        } else if line.trim().is_empty() {
            paragraph = true;
        } else if let Some(item) = line.strip_prefix("- ") {
            page.push_str(&format!(".IP \\(bu 2\n{}\n", inline(item)));
        } else {
            if paragraph && !line.starts_with(' ') {
                page.push_str(".PP\n");
            }
            page.push_str(&inline(line.trim_start()));
            page.push('\n');
        }
        paragraph &= line.trim().is_empty();
    }
    page.push_str(".SH SEE ALSO\ndrata\\-svcacct\\-plan(1), drata\\-svcacct\\-apply(1)\n");
    page
}

/// A line of Markdown as roff text: a link keeps its words, `code` and **strong** are bold.
fn inline(line: &str) -> String {
    let mut text = String::with_capacity(line.len());
    let mut rest = line;
    // [words](target) → words
    while let Some(open) = rest.find('[') {
        let link = rest[open..].find("](").and_then(|mid| {
            rest[open + mid..]
                .find(')')
                .map(|end| (mid, open + mid + end))
        });
        let Some((mid, end)) = link else { break };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..open + mid]);
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    let mut bold = false;
    let mut out = String::with_capacity(text.len() + 16);
    for (at, part) in roff_line(&text).split("**").enumerate() {
        if at > 0 {
            out.push_str(if bold { "\\fR" } else { "\\fB" });
            bold = !bold;
        }
        for (at, piece) in part.split('`').enumerate() {
            if at > 0 {
                out.push_str(if at % 2 == 1 { "\\fB" } else { "\\fR" });
            }
            out.push_str(piece);
        }
    }
    out
}

/// clap_mangen shows no alias of an option: each visible one is added to the option's
/// help, as `--help` shows them (`-j, --concurrency` is also `--jobs`, `--parallel`).
fn with_aliases_in_help(command: clap::Command) -> clap::Command {
    command.mut_args(|arg| {
        let aliases: Vec<String> = arg
            .get_visible_aliases()
            .into_iter()
            .flatten()
            .map(|alias| format!("--{alias}"))
            .collect();
        if aliases.is_empty() {
            return arg;
        }
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let with_aliases = format!("{help} [aliases: {}]", aliases.join(", "));
        arg.help(with_aliases)
    })
}

/// Each section clap_mangen renders opens with the same two-line definition of the
/// apostrophe string; a page needs it once, at the top.
struct Sections<'a> {
    out: &'a mut Vec<u8>,
    section: Vec<u8>,
}

impl<'a> Sections<'a> {
    const PREAMBLE: &'static [u8] = b".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

    fn new(out: &'a mut Vec<u8>) -> Self {
        Sections {
            out,
            section: Vec::new(),
        }
    }

    /// Takes in the section written so far, and gives the buffer for the next one.
    fn next(&mut self) -> &mut Vec<u8> {
        self.finish();
        &mut self.section
    }

    fn finish(&mut self) {
        let section = std::mem::take(&mut self.section);
        let repeated = self.out.starts_with(Self::PREAMBLE) && section.starts_with(Self::PREAMBLE);
        let kept = if repeated {
            &section[Self::PREAMBLE.len()..]
        } else {
            &section[..]
        };
        self.out.extend_from_slice(kept);
    }
}

/// The examples of `--help` (an `Examples:` heading, then lines indented by two) as roff
/// in no-fill mode: one output line per input line, never refilled nor hyphenated.
fn examples_section(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b".SH EXAMPLES\n.nf\n");
    // The section's name says what the heading said.
    let lines = text
        .strip_prefix("Examples:")
        .unwrap_or(text)
        .trim_start_matches('\n');
    for line in lines.lines() {
        let line = line.strip_prefix("  ").unwrap_or(line);
        out.extend_from_slice(roff_line(line).as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b".fi\n");
}

/// A line of text as roff reads it literally: backslashes and hyphens escaped (`\-` is
/// the minus a shell needs), and a leading `.` or `'` kept from being read as a request.
fn roff_line(line: &str) -> String {
    let mut escaped = String::with_capacity(line.len() + 8);
    if line.starts_with(['.', '\'']) {
        escaped.push_str("\\&");
    }
    for c in line.chars() {
        match c {
            '\\' => escaped.push_str("\\e"),
            '-' => escaped.push_str("\\-"),
            _ => escaped.push(c),
        }
    }
    escaped
}

fn write_stdout(bytes: &[u8]) -> Result<u8, Error> {
    let mut out = Console::default().stdout();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(Error::Stdout)?;
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_case_labels_are_spelled_as_the_word_loop_spells_them() {
        let script = "        cmd=\"drata__svcacct__subcmd__apply\"\n    case \"${cmd}\" in\n        drata__subcmd__svcacct__subcmd__apply)\n            opts=\"--x\"\n";
        let fixed = bash_case_labels_fixed(script, "drata-svcacct");
        assert_eq!(
            fixed,
            "        cmd=\"drata__svcacct__subcmd__apply\"\n    case \"${cmd}\" in\n        drata__svcacct__subcmd__apply)\n            opts=\"--x\"\n"
        );
        assert_eq!(bash_case_labels_fixed(script, "plain"), script);
    }

    #[test]
    fn roff_lines_are_read_literally() {
        assert_eq!(roff_line("a --b \\%F"), "a \\-\\-b \\e%F");
        assert_eq!(roff_line(".hidden"), "\\&.hidden");
        assert_eq!(roff_line("'quoted'"), "\\&'quoted'");
    }

    #[test]
    fn hidden_arguments_are_left_out_and_visible_ones_kept() {
        let definition = clap::Command::new("tool")
            .arg(clap::Arg::new("shown").long("shown"))
            .arg(clap::Arg::new("secret").long("secret").hide(true))
            .subcommand(
                clap::Command::new("sub")
                    .visible_alias("s")
                    .arg(clap::Arg::new("deep").long("deep").hide(true)),
            );
        let visible = without_hidden(&definition);
        let names = |c: &clap::Command| -> Vec<String> {
            c.get_arguments().map(|a| a.get_id().to_string()).collect()
        };
        assert_eq!(names(&visible), ["shown"]);
        let sub = visible.find_subcommand("s").expect("the alias is kept");
        assert!(names(sub).is_empty());
    }
}
