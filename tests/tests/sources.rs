//! Source checks: every Rust file of the workspace opens with its one-line `//!` summary (the house style's map of what each file owns). Import loops are checked by `xtask/check_layers.py`.

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

#[test]
fn every_source_file_opens_with_a_one_line_summary() {
    let root = e2e::workspace_root();
    let mut files = Vec::new();
    for dir in ["shared", "rater", "frontend", "tests", "xtask"] {
        for sub in ["src", "tests", "benches"] {
            let d = root.join(dir).join(sub);
            if d.is_dir() {
                rust_files(&d, &mut files);
            }
        }
    }
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            !std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .next()
                .is_some_and(|l| l.starts_with("//!"))
        })
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` first line: {missing:?}"
    );
}
