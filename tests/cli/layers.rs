//! The layers of `src/` as `docs/architecture.md` lists them: every `crate::` path between
//! top-level modules must point down that list, and the list of edges written there must
//! be the one the code has. The document is the one place the order is written; this reads
//! it rather than a copy.

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
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(tree) = rest.strip_prefix('{') {
            let end = tree.find(';').unwrap_or(tree.len());
            found.extend(tree_heads(&tree[..end]));
        } else {
            found.push(ident_at(rest));
        }
    }
    found
}

/// The first segments of a use tree's top-level items: `a, b::{c, d}, e` → a, b, e.
fn tree_heads(tree: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut start = true;
    for (i, c) in tree.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && depth == 0 && !c.is_whitespace() => {
                heads.push(ident_at(&tree[i..]));
                start = false;
            }
            _ => {}
        }
    }
    heads
}

fn ident_at(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The code of a file without comments, string and character literals, and without its
/// test module (`#[cfg(test)]` onwards), which may reach anywhere.
fn code_of(text: &str) -> String {
    let text = text.find("#[cfg(test)]").map_or(text, |at| &text[..at]);
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
