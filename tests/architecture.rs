//! The one-way import rule of ARCHITECTURE.md, read from the source: every `use` of a crate module
//! (`use crate::x…`, `use apr_lint::x…`, `use super::x…` in a module directory) and every path
//! written inline (`crate::x::…`) counts as an import of `x`.
//!
//! - only `main`, `report` and the bench import `pipeline`;
//! - `check` imports neither `numeric`, `pipeline` nor `report`;
//! - `numeric` imports neither `pipeline` nor `report`;
//! - the probe and the trace do not import each other (both import the forward leaf);
//! - nothing below `report` imports it (only `main`, the bench and `lib.rs`'s re-exports).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A source file: its top-level module (`check`, `numeric`, `main`, `bench`, `lib`…), its module
/// inside `numeric` (`probe`, `trace`…, if any) and the modules it imports.
struct Source {
    path: PathBuf,
    module: String,
    numeric_sub: Option<String>,
    imports: BTreeSet<String>,
    numeric_imports: BTreeSet<String>,
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src/") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments (line comments and doc comments) and string literals'
/// insides are left as they are: paths in strings are rare and would only make the test stricter.
fn code_lines(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The first path segments after each `prefix` (`crate::`), with brace groups
/// (`crate::{a, b::c}`) opened one level.
fn segments_after(code: &str, prefix: &str, out: &mut BTreeSet<String>) {
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let id = ident_at(part.trim());
                if !id.is_empty() {
                    out.insert(id);
                }
            }
        } else {
            let id = ident_at(rest);
            if !id.is_empty() {
                out.insert(id);
            }
        }
    }
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(&root).expect("under src/");
            let parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            let module = match parts.as_slice() {
                [bin, name] if bin == "bin" => name.clone(),
                [first, ..] => first.clone(),
                [] => unreachable!(),
            };
            let numeric_sub = (module == "numeric" && parts.len() > 1)
                .then(|| parts[1].clone())
                .filter(|s| s != "mod");
            let code = code_lines(&std::fs::read_to_string(&path).expect("read a source file"));
            let mut imports = BTreeSet::new();
            segments_after(&code, "crate::", &mut imports);
            segments_after(&code, "apr_lint::", &mut imports);
            let mut numeric_imports = BTreeSet::new();
            segments_after(&code, "numeric::", &mut numeric_imports);
            if numeric_sub.is_some() {
                // Inside numeric/: from a module `depth` levels below numeric (`probe` 1,
                // `probe::rope` 2), `super::` repeated `depth` times names a sibling of `probe`.
                let depth = parts.len() - 1 - usize::from(parts.last().is_some_and(|l| l == "mod"));
                segments_after(&code, &"super::".repeat(depth), &mut numeric_imports);
            }
            Source {
                path: rel.to_path_buf(),
                module,
                numeric_sub,
                imports,
                numeric_imports,
            }
        })
        .collect()
}

fn violations(allowed: &dyn Fn(&Source) -> bool, target: &str) -> Vec<String> {
    sources()
        .iter()
        .filter(|s| s.module != target && s.imports.contains(target) && !allowed(s))
        .map(|s| format!("{} ({}) imports {target}", s.path.display(), s.module))
        .collect()
}

#[test]
fn only_main_report_and_the_bench_import_the_pipeline() {
    let v = violations(
        &|s| matches!(s.module.as_str(), "main" | "report" | "bench" | "lib"),
        "pipeline",
    );
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn nothing_below_report_imports_it() {
    let v = violations(
        &|s| matches!(s.module.as_str(), "main" | "bench" | "lib"),
        "report",
    );
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn checks_import_neither_numeric_pipeline_nor_report() {
    let v: Vec<String> = sources()
        .iter()
        .filter(|s| s.module == "check")
        .flat_map(|s| {
            ["numeric", "pipeline", "report"]
                .into_iter()
                .filter(|t| s.imports.contains(*t))
                .map(|t| format!("{} imports {t}", s.path.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn model_and_rules_import_no_stage_above_them() {
    let v: Vec<String> = sources()
        .iter()
        .filter(|s| {
            matches!(
                s.module.as_str(),
                "format" | "model" | "rules" | "quant" | "diag"
            )
        })
        .flat_map(|s| {
            ["check", "numeric", "pipeline", "report"]
                .into_iter()
                .filter(|t| s.imports.contains(*t))
                .map(|t| format!("{} imports {t}", s.path.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn numeric_imports_neither_pipeline_nor_report_and_probe_and_trace_share_a_leaf() {
    let all = sources();
    let mut v: Vec<String> = all
        .iter()
        .filter(|s| s.module == "numeric")
        .flat_map(|s| {
            ["pipeline", "report"]
                .into_iter()
                .filter(|t| s.imports.contains(*t))
                .map(|t| format!("{} imports {t}", s.path.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    for (a, b) in [("probe", "trace"), ("trace", "probe")] {
        for s in all.iter().filter(|s| s.numeric_sub.as_deref() == Some(a)) {
            if s.numeric_imports.contains(b) {
                v.push(format!("{} ({a}) imports {b}", s.path.display()));
            }
        }
    }
    assert!(v.is_empty(), "{v:#?}");
}
