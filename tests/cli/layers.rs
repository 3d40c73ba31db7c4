//! The layers of `src/` as `docs/architecture.md` lists them: every `crate::` path between
//! top-level modules must point down that list, and the list of edges written there must
//! be the one the code has. The document is the one place the order is written; this reads
//! it rather than a copy. Inside a folder, the files import each other without a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Top-level module → the top-level modules its `crate::` paths name.
type Edges = BTreeMap<String, BTreeSet<String>>;

/// The layers, top first: each line of the document's first fenced block that starts at the
/// margin names one layer (`suggest, simulator, exit`), up to its description.
fn documented_layers(doc: &str) -> Vec<Vec<String>> {
    fenced_blocks(doc)[0]
        .iter()
        .filter(|line| line.starts_with(|c: char| c.is_ascii_alphabetic()))
        .map(|line| {
            let names = line.split("  ").next().unwrap_or(line);
            names.split(',').map(|n| n.trim().to_owned()).collect()
        })
        .collect()
}

/// The edges the document states, from its second fenced block: `from → a, b` per line.
fn documented_edges(doc: &str) -> Edges {
    fenced_blocks(doc)[1]
        .iter()
        .filter_map(|line| line.split_once('→'))
        .map(|(from, to)| {
            let to = to
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty() && *t != "(none)")
                .map(str::to_owned)
                .collect();
            (from.trim().to_owned(), to)
        })
        .collect()
}

fn fenced_blocks(doc: &str) -> Vec<Vec<&str>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in doc.lines() {
        match (line.starts_with("```"), current.take()) {
            (true, None) => current = Some(Vec::new()),
            (true, Some(block)) => blocks.push(block),
            (false, Some(mut block)) => {
                block.push(line);
                current = Some(block);
            }
            (false, None) => {}
        }
    }
    blocks
}

/// Reads the edges of `src/`: a module is `src/name.rs` or `src/name/`; the crate root
/// (`lib.rs`, `main.rs`) is above every layer and left out.
fn source_edges(src: &Path) -> Edges {
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            let texts = files.entry(name).or_default();
            collect_rs(&path, texts);
        } else if let Some(module) = name.strip_suffix(".rs") {
            if module != "lib" && module != "main" {
                let text = fs::read_to_string(&path).unwrap();
                files.entry(module.to_owned()).or_default().push(text);
            }
        }
    }
    edges_of(&files)
}

fn collect_rs(dir: &Path, texts: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rs(&path, texts);
        } else if path.extension().is_some_and(|e| e == "rs") {
            texts.push(fs::read_to_string(&path).unwrap());
        }
    }
}

/// The edges between the modules whose sources are given (test modules left out).
fn edges_of(files: &BTreeMap<String, Vec<String>>) -> Edges {
    let mut edges = Edges::new();
    for (module, texts) in files {
        let targets = edges.entry(module.clone()).or_default();
        for text in texts {
            for named in crate_paths(&code_of(text)) {
                if named != *module && files.contains_key(&named) {
                    targets.insert(named);
                }
            }
        }
    }
    edges
}

/// The first segment after every `crate::`, `use crate::{a, b::c}` trees included.
fn crate_paths(code: &str) -> Vec<String> {
    written_paths(code)
        .into_iter()
        .filter(|path| path.first().is_some_and(|s| s == "crate"))
        .filter_map(|path| path.get(1).cloned())
        .collect()
}

/// Every path the code writes from `crate::`, `super::` or `self::`, as its segments, with
/// use trees flattened: `use super::{a, b::{self, C as D}}` → super a, super b self, super b C.
fn written_paths(code: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let before = i.checked_sub(1).map(|b| chars[b]);
        let boundary =
            before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$' || c == ':'));
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .any(|p| chars[i..].iter().take(p.len()).copied().eq(p.chars()));
        if boundary && starts {
            let (paths, end) = path_at(&chars, i);
            found.extend(paths);
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

/// The paths of the path (or use tree) that starts at `at`, and where it ends.
fn path_at(chars: &[char], at: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut i = skip_space(chars, at);
    loop {
        if chars.get(i) == Some(&'{') {
            let (items, end) = tree_at(chars, i + 1);
            let paths = items
                .into_iter()
                .map(|item| prefix.iter().cloned().chain(item).collect())
                .collect();
            return (paths, end);
        }
        let ident: String = chars[i..]
            .iter()
            .take_while(|c| c.is_alphanumeric() || **c == '_')
            .collect();
        i += ident.chars().count();
        if ident.is_empty() {
            break;
        }
        prefix.push(ident);
        let next = skip_space(chars, i);
        if chars.get(next) == Some(&':') && chars.get(next + 1) == Some(&':') {
            i = skip_space(chars, next + 2);
        } else {
            break;
        }
    }
    (vec![prefix], i)
}

/// The items of a use tree whose `{` is just before `at` (`a, b::c as d, e::{f}`), and
/// where its `}` ends.
fn tree_at(chars: &[char], at: usize) -> (Vec<Vec<String>>, usize) {
    let mut items = Vec::new();
    let mut i = at;
    while i < chars.len() {
        i = skip_space(chars, i);
        match chars.get(i) {
            Some('}') => return (items, i + 1),
            Some(',') => i += 1,
            Some(c) if c.is_alphanumeric() || *c == '_' || *c == '{' => {
                let (paths, end) = path_at(chars, i);
                items.extend(paths);
                i = end;
                // `C as D`: the alias names nothing new.
                let rest = skip_space(chars, i);
                if chars[rest..].starts_with(&['a', 's']) {
                    let (_, end) = path_at(chars, rest + 2);
                    i = end;
                }
            }
            Some(_) => i += 1,
            None => break,
        }
    }
    (items, i)
}

fn skip_space(chars: &[char], mut i: usize) -> usize {
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

/// The code of a file without comments, string and character literals, and without its
/// items marked `#[cfg(test)]` (test modules, test-only functions and imports), which may
/// reach anywhere.
fn code_of(text: &str) -> String {
    without_test_items(&without_literals(text))
}

/// `code` without each item marked `#[cfg(test)]`: from the mark to the `;` or the `}`
/// that ends the item (`use a::{b};` leaves its `;`, which names nothing).
fn without_test_items(code: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut kept = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        kept.push_str(&rest[..at]);
        rest = &rest[at + MARK.len()..];
        let mut depth = 0_usize;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            let ends = match c {
                '(' | '[' | '{' => {
                    depth += 1;
                    false
                }
                ')' | ']' | '}' => {
                    depth = depth.saturating_sub(1);
                    c == '}' && depth == 0
                }
                ';' => depth == 0,
                _ => false,
            };
            if ends {
                end = i + 1;
                break;
            }
        }
        rest = &rest[end..];
    }
    kept.push_str(rest);
    kept
}

fn without_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut code = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let next = chars.get(i + 1).copied();
        match (chars[i], next) {
            ('/', Some('/')) => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            ('r', Some('"' | '#')) if raw_string_at(&chars, i).is_some() => {
                i = raw_string_at(&chars, i).unwrap_or(i + 1);
            }
            ('"', _) => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            // A character literal ('"', '\n'), not a lifetime ('a).
            ('\'', Some('\\')) => {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            ('\'', Some(_)) if chars.get(i + 2) == Some(&'\'') => i += 3,
            (c, _) => {
                code.push(c);
                i += 1;
            }
        }
    }
    code
}

/// Where a raw string `r#"…"#` that starts at `at` ends; `None` when it is no raw string.
fn raw_string_at(chars: &[char], at: usize) -> Option<usize> {
    if at > 0 && (chars[at - 1].is_alphanumeric() || chars[at - 1] == '_') {
        return None;
    }
    let hashes = chars[at + 1..].iter().take_while(|c| **c == '#').count();
    let open = at + 1 + hashes;
    if chars.get(open) != Some(&'"') {
        return None;
    }
    let mut i = open + 1;
    while i < chars.len() {
        if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|c| *c == '#') {
            return Some(i + 1 + hashes);
        }
        i += 1;
    }
    Some(chars.len())
}

/// One file of `src/` as a module: its path from the crate root (`output/evidence/markdown.rs`
/// is output, evidence, markdown; a `mod.rs` is its folder) and its code (`code_of`).
struct SourceFile {
    module: Vec<String>,
    code: String,
}

/// Every file of `src/` but the crate root (`lib.rs`, `main.rs`).
fn source_files(src: &Path) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Vec<String> = relative
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] {
                continue;
            }
            let code = code_of(&fs::read_to_string(&path).unwrap());
            files.push(SourceFile { module, code });
        }
    }
    files
}

/// A written path as the module path it names from the crate root, for a file that is
/// `module`: `crate::` starts at the root, `super::` and `self::` where the file is.
fn resolve(written: &[String], module: &[String]) -> Vec<String> {
    let mut resolved = match written.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        _ => module.to_vec(),
    };
    let mut rest = written.iter().skip_while(|s| *s == "crate").peekable();
    while let Some(s) = rest.next_if(|s| *s == "super" || *s == "self") {
        if s == "super" {
            resolved.pop();
        }
    }
    // `a::{self, B}`: the `self` names `a` itself.
    resolved.extend(rest.filter(|s| *s != "self").cloned());
    resolved
}

/// Names a folder's own file re-exports from one of its files (`pub(crate) use
/// console::Console;` in `output/mod.rs`): `output::Console` is the file `console`.
fn reexports(files: &[SourceFile]) -> BTreeMap<Vec<String>, Vec<String>> {
    let mut named = BTreeMap::new();
    for file in files {
        let mut rest = file.code.as_str();
        while let Some(at) = rest.find("use ") {
            let public = rest[..at].trim_end().ends_with("pub")
                || rest[..at].trim_end().ends_with("pub(crate)");
            rest = &rest[at + "use ".len()..];
            let end = rest.find(';').unwrap_or(rest.len());
            if !public {
                continue;
            }
            // A use path without `crate::`, `super::` or `self::` starts at the file itself.
            for written in written_paths(&format!("self::{}", &rest[..end])) {
                let target = resolve(&written, &file.module);
                let depth = file.module.len();
                if target.len() > depth + 1 && target.starts_with(&file.module) {
                    let mut name = file.module.clone();
                    name.extend(target.last().cloned());
                    named.insert(name, target[..=depth].to_vec());
                }
            }
        }
    }
    named
}

/// Folder (`output`, `commands::run`) → the edges between its files, each file named as a
/// module of the folder (`plan`; a folder inside it, `evidence/`, counts as its file
/// `evidence.rs`). A path counts that names a file of the folder (`super::evidence`,
/// `crate::output::plan::PlanView`) or a name the folder's own file re-exports from one
/// (`super::Console`). The folder's own file (`mod.rs`, or `evidence.rs` beside
/// `evidence/`) is not one of its files: it declares them and re-exports their names, and
/// what it defines itself is what its files share.
fn folder_edges(files: &[SourceFile]) -> BTreeMap<String, Edges> {
    let modules: BTreeSet<Vec<String>> = files
        .iter()
        .flat_map(|f| (1..=f.module.len()).map(|n| f.module[..n].to_vec()))
        .collect();
    let reexported = reexports(files);
    let mut folders: BTreeMap<String, Edges> = BTreeMap::new();
    for file in files {
        for written in written_paths(&file.code) {
            let target = resolve(&written, &file.module);
            let shared = file
                .module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if shared == 0 || file.module.len() <= shared || target.len() <= shared {
                continue;
            }
            let named = target[..=shared].to_vec();
            let Some(to) = Some(&named)
                .filter(|n| modules.contains(*n))
                .or_else(|| reexported.get(&named).filter(|m| modules.contains(*m)))
            else {
                continue;
            };
            folders
                .entry(file.module[..shared].join("::"))
                .or_default()
                .entry(file.module[shared].clone())
                .or_default()
                .insert(to[shared].clone());
        }
    }
    folders
}

/// Every circle between files of one folder, each once: `output: a → b → c → a`, from the
/// first of its files by name along the fewest edges.
fn file_circles(folders: &BTreeMap<String, Edges>) -> Vec<String> {
    let mut circles = Vec::new();
    for (folder, edges) in folders {
        let mut placed = BTreeSet::new();
        for start in edges.keys() {
            if placed.contains(start) {
                continue;
            }
            let Some(circle) = shortest_way(edges, start, start) else {
                continue;
            };
            let reached = reachable(edges, start);
            placed.extend(
                reached
                    .into_iter()
                    .filter(|m| reachable(edges, m).contains(start)),
            );
            circles.push(format!("{folder}: {}", circle.join(" → ")));
        }
    }
    circles
}

fn reachable(edges: &Edges, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut next = vec![from.to_owned()];
    while let Some(module) = next.pop() {
        for to in edges.get(&module).into_iter().flatten() {
            if seen.insert(to.clone()) {
                next.push(to.clone());
            }
        }
    }
    seen
}

/// The way of fewest edges from `from` to `to` (back to itself when they are one), with
/// both ends; `None` when there is none.
fn shortest_way(edges: &Edges, from: &str, to: &str) -> Option<Vec<String>> {
    let mut came_from: BTreeMap<String, String> = BTreeMap::new();
    let mut frontier = std::collections::VecDeque::from([from.to_owned()]);
    while let Some(module) = frontier.pop_front() {
        for next in edges.get(&module).into_iter().flatten() {
            if came_from.contains_key(next) {
                continue;
            }
            came_from.insert(next.clone(), module.clone());
            if next == to {
                let mut way = vec![to.to_owned()];
                let mut at = module.clone();
                while at != from {
                    way.push(at.clone());
                    at = came_from[&at].clone();
                }
                way.push(from.to_owned());
                way.reverse();
                return Some(way);
            }
            frontier.push_back(next.clone());
        }
    }
    None
}

/// Every edge that runs up the layers, and every pair in one layer importing each other.
fn upward_edges(layers: &[Vec<String>], edges: &Edges) -> Vec<String> {
    let layer_of = |module: &str| layers.iter().position(|l| l.iter().any(|m| m == module));
    let mut wrong = Vec::new();
    for (from, targets) in edges {
        for to in targets {
            let (Some(a), Some(b)) = (layer_of(from), layer_of(to)) else {
                continue;
            };
            let mutual = edges.get(to).is_some_and(|back| back.contains(from));
            if b < a || (a == b && mutual) {
                wrong.push(format!("{from} → {to}"));
            }
        }
    }
    wrong
}

fn format_edges(edges: &Edges) -> String {
    edges
        .iter()
        .map(|(from, to)| {
            let to: Vec<&str> = to.iter().map(String::as_str).collect();
            let to = if to.is_empty() {
                "(none)".to_owned()
            } else {
                to.join(", ")
            };
            format!("{from} → {to}\n")
        })
        .collect()
}

fn architecture() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md")).unwrap()
}

#[test]
fn every_import_points_down_the_documented_layers() {
    let doc = architecture();
    let layers = documented_layers(&doc);
    let edges = source_edges(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(
        edges
            .get("commands")
            .is_some_and(|to| to.contains("output")),
        "the reader of edges finds none: {edges:?}"
    );
    let unplaced: Vec<&String> = edges
        .keys()
        .filter(|m| !layers.iter().flatten().any(|l| l == *m))
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules docs/architecture.md does not place in a layer: {unplaced:?}"
    );
    let wrong = upward_edges(&layers, &edges);
    assert!(
        wrong.is_empty(),
        "imports that run up the layers of docs/architecture.md: {wrong:?}"
    );
}

#[test]
fn the_documented_edges_are_the_edges_of_the_code() {
    let doc = architecture();
    let edges = source_edges(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert_eq!(
        format_edges(&documented_edges(&doc)),
        format_edges(&edges),
        "docs/architecture.md lists other import edges than src/ has; the right list is on the right"
    );
}

#[test]
fn the_check_catches_an_upward_import_and_a_pair() {
    let layers = documented_layers(&architecture());
    assert!(layers.len() >= 5, "{layers:?}");
    let files = BTreeMap::from([
        (
            "model".to_owned(),
            vec!["// use crate::cli;\nuse crate::{text, output::Live};\nfn f() { crate::input::x(); }\n#[cfg(test)]\nuse crate::cli;".to_owned()],
        ),
        ("output".to_owned(), vec!["let s = \"crate::cli\"; let c = '\"'; use crate::model::Row;".to_owned()]),
        ("input".to_owned(), vec![String::new()]),
        ("text".to_owned(), vec!["use crate::secret::Key;".to_owned()]),
        ("secret".to_owned(), vec!["fn f() -> crate::text::X { r#\"crate::cli\"# }".to_owned()]),
        ("cli".to_owned(), vec![String::new()]),
    ]);
    let edges = edges_of(&files);
    assert_eq!(
        format_edges(&edges),
        "cli → (none)\ninput → (none)\nmodel → input, output, text\noutput → model\nsecret → text\ntext → secret\n"
    );
    assert_eq!(
        upward_edges(&layers, &edges),
        [
            "model → input",
            "model → output",
            "secret → text",
            "text → secret"
        ]
    );
}

#[test]
fn no_files_of_one_folder_import_each_other_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let folders = folder_edges(&source_files(&src));
    let edge = |folder: &str, from: &str, to: &str| {
        folders
            .get(folder)
            .and_then(|edges| edges.get(from))
            .is_some_and(|targets| targets.contains(to))
    };
    assert!(
        edge("engine", "requests", "retry") && edge("output", "files", "stdout"),
        "the reader of edges inside folders finds none: {folders:?}"
    );
    let circles = file_circles(&folders);
    assert!(
        circles.is_empty(),
        "files of one folder that import each other in a circle: {circles:?}"
    );
}

#[test]
fn the_check_catches_a_circle_between_files_of_one_folder() {
    let dir = tempfile::tempdir().unwrap();
    let planted = [
        ("lib.rs", "mod input;\nmod output;\n"),
        (
            "output/mod.rs",
            "mod console;\nmod evidence;\nmod files;\nmod plan;\npub(crate) use console::{Console, InvalidRows};\n",
        ),
        ("output/console.rs", "use super::plan::{print_plan, PlanView};\n"),
        (
            "output/plan.rs",
            "pub(crate) fn previous() -> crate::output::evidence::Before { todo!() }\n",
        ),
        ("output/evidence.rs", "mod markdown;\nmod workbook;\nuse super::files::Sink;\n"),
        ("output/evidence/markdown.rs", "use super::{workbook::Page, Facts};\n"),
        (
            "output/evidence/workbook.rs",
            "use crate::output::evidence::markdown::escaped;\n",
        ),
        // Back to the console through the name the folder's own file re-exports.
        ("output/files.rs", "use super::{Console};\n"),
        // Neither a test module, a comment nor a string closes a circle here.
        ("input/mod.rs", "mod a;\nmod b;\npub(crate) struct Row;\n"),
        ("input/a.rs", "use super::b::Reader;\nuse super::Row;\n"),
        (
            "input/b.rs",
            "// use super::a::X;\nconst S: &str = \"super::a\";\n#[cfg(test)]\nmod tests {\n    use crate::input::a::Check;\n}\n",
        ),
    ];
    for (path, code) in planted {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, code).unwrap();
    }
    let folders = folder_edges(&source_files(dir.path()));
    assert_eq!(
        file_circles(&folders),
        [
            "output: console → plan → evidence → files → console",
            "output::evidence: markdown → workbook → markdown"
        ]
    );
    assert_eq!(format_edges(&folders["input"]), "a → b\n");
}
