//! The module layout holds: every `use crate::` line under `src/` points at the same
//! top-level module or one in a lower layer (as `stampede::LAYERS`, written from the
//! layout in `lib.rs`, orders them), so no import cycle between modules can form, and
//! `model` imports nothing from the crate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`src/oracle/session.rs` → oracle).
fn owner(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

/// Every top-level module named by `crate::X` paths in `text` (grouped imports included).
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let preceded = text[..i].chars().last();
        if preceded.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // e.g. `$crate::`
        }
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
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
    out
}

/// Module → the other top-level modules it refers to.
fn arrows() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = owner(&src, &file) else {
            continue;
        };
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let refs: Vec<String> = crate_refs(&text)
            .into_iter()
            .filter(|r| *r != module)
            .collect();
        out.entry(module).or_default().extend(refs);
    }
    out
}

#[test]
fn every_arrow_points_down_the_layers() {
    let layers: BTreeMap<&str, u8> = stampede::LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (module, targets) in arrows() {
        let Some(&from) = layers.get(module.as_str()) else {
            wrong.push(format!("{module} is not in lib.rs's LAYERS"));
            continue;
        };
        for target in targets {
            match layers.get(target.as_str()) {
                Some(&to) if to < from => {}
                Some(&to) => wrong.push(format!(
                    "{module} (layer {from}) uses {target} (layer {to}): not below it"
                )),
                None => wrong.push(format!("{module} uses {target}, which is not in LAYERS")),
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_model_imports_nothing_from_the_crate() {
    let arrows = arrows();
    let model = arrows.get("model").cloned().unwrap_or_default();
    assert!(model.is_empty(), "model uses {model:?}");
}

#[test]
fn the_checker_sees_grouped_imports_and_ignores_macro_paths() {
    let refs =
        crate_refs("use crate::{plan, report::x};\nuse $crate::y;\nlet a = crate::model::Plan;");
    let expected: BTreeSet<String> = ["plan", "report", "model"].map(String::from).into();
    assert_eq!(refs, expected);
}

#[test]
fn every_module_of_lib_rs_has_a_layer() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let layered: BTreeSet<&str> = stampede::LAYERS.iter().map(|(m, _)| *m).collect();
    assert_eq!(declared, layered);
}
