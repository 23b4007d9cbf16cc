//! Tidy checks for the architecture invariants of `faultline-core`, run by
//! `cargo test`: the crate's manifest names no IO or async crate, no source
//! file reads the clock, and every `.rs` file in the workspace opens with a
//! `//!` module doc. These are tests so that a violation fails CI.

use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && !name.to_string_lossy().starts_with('.') {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Crates that do IO, run an async runtime or talk to the network/database.
const FORBIDDEN_IN_CORE: &[&str] = &[
    "tokio",
    "async-std",
    "smol",
    "sqlx",
    "rusqlite",
    "postgres",
    "tokio-postgres",
    "diesel",
    "axum",
    "hyper",
    "reqwest",
    "ureq",
    "tonic",
    "tower",
    "tower-http",
    "actix-web",
    "warp",
    "mio",
    "async-nats",
    "lettre",
    "redis",
    "rdkafka",
];

#[test]
fn core_manifest_has_no_io_dependencies() {
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let mut offenders = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            // Every dependency table counts, dev-dependencies included: a test
            // that needs tokio belongs in a driver crate.
            in_deps = line.contains("dependencies");
            continue;
        }
        if !in_deps || line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or("").trim().trim_matches('"');
        if FORBIDDEN_IN_CORE.contains(&name) {
            offenders.push(name.to_owned());
        }
    }
    assert!(offenders.is_empty(), "faultline-core must not depend on {offenders:?} (see ARCHITECTURE.md)");
}

#[test]
fn core_never_reads_the_clock() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let forbidden = ["SystemTime::now", "Instant::now", "Timestamp::now", "Zoned::now", "now_v7", "thread::spawn", "std::fs", "std::net", "std::env"];
    let mut offenders = Vec::new();
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        for pat in forbidden {
            if text.contains(pat) {
                offenders.push(format!("{}: {pat}", f.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "faultline-core must do no IO and read no clock: {offenders:#?}");
}

#[test]
fn every_rust_file_has_a_module_doc() {
    let mut files = Vec::new();
    rust_files(&workspace_root().join("crates"), &mut files);
    assert!(files.len() > 5, "found too few .rs files; is the workspace root right?");
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = fs::read_to_string(f).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|f| f.strip_prefix(workspace_root()).unwrap_or(f).display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a //! module doc: {missing:#?}");
}

#[test]
fn no_ignored_tests() {
    let mut files = Vec::new();
    rust_files(&workspace_root().join("crates"), &mut files);
    let needle = concat!("#[", "ignore");
    let offenders: Vec<String> = files.iter().filter(|f| fs::read_to_string(f).unwrap_or_default().contains(needle)).map(|f| f.display().to_string()).collect();
    assert!(offenders.is_empty(), "assert today's behaviour with a FIXME instead of ignoring: {offenders:#?}");
}
