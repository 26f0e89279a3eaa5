//! Style rules that matter, kept as ordinary tests so `cargo test` enforces
//! them: the crate graph, module docs, and one file per mechanism per layer.

use std::collections::BTreeSet;
use std::path::Path;

use crate::root;

/// Workspace crates (by package name) that `manifest` depends on, from any
/// dependency table (normal, dev, build, target-specific).
fn workspace_deps(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest)
        .unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    let mut deps = BTreeSet::new();
    let mut in_deps = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line.contains("dependencies") && !line.starts_with("[workspace");
            continue;
        }
        if !in_deps {
            continue;
        }
        if let Some(name) = line.split(['=', ' ', '.']).next()
            && name.starts_with("cpyrt-")
        {
            deps.insert(name.to_string());
        }
    }
    deps
}

fn deps_of(dir: &str) -> BTreeSet<String> {
    workspace_deps(&root().join(dir).join("Cargo.toml"))
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn crate_graph_is_the_architecture() {
    assert_eq!(
        deps_of("spec"),
        set(&[]),
        "spec depends on no workspace crate"
    );
    assert_eq!(
        deps_of("models"),
        set(&["cpyrt-spec"]),
        "models builds on spec only"
    );
    assert_eq!(
        deps_of("reference"),
        set(&["cpyrt-spec"]),
        "reference builds on spec only, never on models"
    );
    let both = |d: &BTreeSet<String>| d.contains("cpyrt-reference") && d.contains("cpyrt-models");
    assert!(both(&deps_of("conformance")), "conformance sees both sides");
    for other in [".", "docs", "xtask", "spec", "models", "reference"] {
        assert!(
            !both(&deps_of(other)),
            "only conformance may depend on both reference and models ({other} does)"
        );
    }
    assert!(
        deps_of("xtask").is_empty(),
        "xtask drives cargo; it links no crate of ours"
    );
}

#[test]
fn parser_reads_every_dependency_table() {
    let dir = std::env::temp_dir().join(format!("cpyrt-tidy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("Cargo.toml");
    std::fs::write(
        &manifest,
        "[package]\nname = \"x\"\n[dependencies]\ncpyrt-spec.workspace = true\n\
         [target.'cfg(unix)'.dev-dependencies]\ncpyrt-models = { path = \"m\" }\n\
         [features]\ncpyrt-reference = []\n",
    )
    .unwrap();
    let deps = workspace_deps(&manifest);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(deps, set(&["cpyrt-models", "cpyrt-spec"]));
}

fn rust_files(dir: &str) -> Vec<std::path::PathBuf> {
    fn walk(p: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join(dir), &mut out);
    out.sort();
    out
}

#[test]
fn every_library_module_opens_with_a_module_doc() {
    let mut missing = Vec::new();
    for dir in [
        "spec/src",
        "models/src",
        "reference/src",
        "conformance/src",
        "docs/src",
    ] {
        for file in rust_files(dir) {
            let text = std::fs::read_to_string(&file).unwrap();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if !first.starts_with("//!") {
                missing.push(file.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "modules without a `//!` doc: {missing:?}"
    );
}

/// Mechanisms are the spec modules; each has its prose spec and its model
/// under the same name.
fn mechanisms() -> Vec<String> {
    rust_files("spec/src")
        .iter()
        .filter_map(|p| {
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (stem != "lib" && p.parent()? == root().join("spec/src")).then_some(stem)
        })
        .collect()
}

#[test]
fn one_mechanism_one_name_in_every_layer() {
    let mechs = mechanisms();
    assert!(mechs.contains(&"qsbr".to_string()));
    for m in &mechs {
        assert!(
            root().join("spec").join(format!("{m}.md")).exists(),
            "spec/{m}.md (the prose spec) is missing"
        );
        assert!(
            root().join("models/src").join(format!("{m}.rs")).exists(),
            "models/src/{m}.rs is missing"
        );
        let reference = root()
            .join("reference/src")
            .join(format!("{m}.rs"))
            .exists()
            || root().join("reference/src").join(m).is_dir();
        let conformance = root()
            .join("conformance/tests")
            .join(format!("{m}.rs"))
            .exists();
        let pending = CONFORMANCE_PENDING.iter().any(|(name, _)| name == m);
        assert!(
            !reference || conformance || pending,
            "reference/src/{m} exists but conformance/tests/{m}.rs does not"
        );
        assert!(
            !(conformance && pending),
            "conformance/tests/{m}.rs exists: take {m} off CONFORMANCE_PENDING"
        );
    }
}

/// Mechanisms whose reference runtime exists but whose conformance suite
/// does not yet, each with the reason. The list is a debt, not a waiver: a
/// mechanism leaves it as soon as its suite lands (the test above enforces
/// that).
const CONFORMANCE_PENDING: &[(&str, &str)] = &[];
