//! The module layering the README's Layout section promises, checked on the source: the
//! top-level modules of src/ form no import cycle, and collect, notify and web import
//! neither the command line, the composition root nor each other.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of src/ belongs to (`src/web/pages.rs` -> `web`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Top-level modules named by `crate::NAME` paths in `text`, including grouped imports
/// (`use crate::{a, b::c}`), outside line comments.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                for part in group.split([',', '}']) {
                    let name: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.insert(name);
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let m = module_of(&src, f);
        let text = std::fs::read_to_string(f).unwrap();
        let deps = g.entry(m.clone()).or_default();
        for d in imports(&text) {
            if d != m && modules.contains(&d) {
                deps.insert(d);
            }
        }
    }
    g
}

#[test]
fn the_import_parser_sees_plain_and_grouped_paths() {
    let got = imports("use crate::{store::X, model};\nlet a = crate::web::x(); // crate::cli\n");
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        vec!["model", "store", "web"]
    );
}

#[test]
fn top_level_modules_form_no_import_cycle() {
    let g = graph();
    assert!(g.len() >= 10, "{g:?}");
    // Kahn's algorithm: a module is placed once everything it imports is placed.
    let mut placed: BTreeSet<String> = BTreeSet::new();
    loop {
        let ready: Vec<String> = g
            .iter()
            .filter(|(m, deps)| !placed.contains(*m) && deps.iter().all(|d| placed.contains(d)))
            .map(|(m, _)| m.clone())
            .collect();
        if ready.is_empty() {
            break;
        }
        placed.extend(ready);
    }
    let cyclic: BTreeMap<&String, &BTreeSet<String>> =
        g.iter().filter(|(m, _)| !placed.contains(*m)).collect();
    assert!(
        cyclic.is_empty(),
        "modules in or above an import cycle: {cyclic:?}"
    );
}

#[test]
fn collect_notify_and_web_depend_downwards_only() {
    let g = graph();
    let forbidden = ["cli", "app", "bench", "collect", "notify", "web"];
    for m in ["collect", "notify", "web"] {
        let deps = &g[m];
        for f in forbidden {
            assert!(f == m || !deps.contains(f), "{m} imports {f}: {deps:?}");
        }
    }
    // The engine is pure: no store, files or pages.
    for f in [
        "store",
        "ingest",
        "conclusions",
        "collect",
        "notify",
        "web",
        "app",
        "cli",
    ] {
        assert!(!g["correlate"].contains(f), "correlate imports {f}");
    }
}
