//! Keeps the layers apart (README "Layout"): the command line sits on top of the library, so only
//! `src/cli/` and `src/main.rs` may import from the `cli` module; and the OpenHIM mediator talks to the
//! service, never to the FHIR store directly. A plain scan of the source text: imports are the
//! only place these paths appear.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source directory is readable") {
        let path = entry.expect("directory entry is readable").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Files under `src/` (paths relative to it) whose text contains `needle`.
fn files_naming(needle: &str) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "the scan found the source tree");
    let mut hits: Vec<String> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .expect("source file is UTF-8")
                .contains(needle)
        })
        .map(|f| {
            let rel = f.strip_prefix(&src).expect("under src/");
            rel.to_string_lossy().replace('\\', "/")
        })
        .collect();
    hits.sort();
    hits
}

#[test]
fn only_the_command_line_imports_from_cli() {
    // Split so that this file does not name the path it looks for.
    let needle = format!("crate::{}", "cli");
    let outside: Vec<String> = files_naming(&needle)
        .into_iter()
        .filter(|f| !f.starts_with("cli/") && f != "main.rs")
        .collect();
    assert!(
        outside.is_empty(),
        "{needle} imported outside src/cli/ and src/main.rs: {outside:?}"
    );
    // The same import as the binary spells it.
    let needle = format!("ddcc_mediator::{}", "cli");
    let outside: Vec<String> = files_naming(&needle)
        .into_iter()
        .filter(|f| f != "main.rs")
        .collect();
    assert!(
        outside.is_empty(),
        "{needle} used outside src/main.rs: {outside:?}"
    );
}

#[test]
fn openhim_does_not_import_from_store() {
    let needle = format!("crate::{}", "store");
    let inside: Vec<String> = files_naming(&needle)
        .into_iter()
        .filter(|f| f.starts_with("openhim/"))
        .collect();
    assert!(
        inside.is_empty(),
        "{needle} imported in src/openhim/: {inside:?}"
    );
}
