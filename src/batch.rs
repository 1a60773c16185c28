//! Batch mode's plan: which model files the paths on the command line hold, and which file is
//! compared with which. Takes paths, `--against`, the config's `[[pair]]` entries; returns the jobs
//! (a file under test and its reference, or a file alone) and notes on what was skipped. Reads at
//! most 64 bytes of each file (`format::peek`); must not open models, run checks or print.
//!
//! Pairing, in order (the first that applies wins for a file):
//! 1. a `[[pair]]` of the config that names the file (as test or reference);
//! 2. `--against REF`: every other model is compared with REF;
//! 3. by name, within one directory: a file pairs with a file of a format it is converted from
//!    (APR ← GGUF) whose stem is its own, or whose stem, once a quantization suffix is dropped
//!    (`-q4_k`, `.Q8_0`, `-f16`, `_bf16` …), starts its own at a `-`/`_`/`.` boundary — the longest
//!    such stem wins (`model-q4_k.apr` ↔ `model.gguf`). Two equally good references are ambiguous:
//!    the file is linted alone and the note names both.
//!
//! A file in no pair gets the single-file checks and a note that it was not compared.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::DeclaredPair;
use crate::format::{self, Peek};

/// Directory names never walked into.
pub const SKIPPED_DIRS: &[&str] = &[".git", ".cache"];

/// A model file found on the command line or in a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    pub path: PathBuf,
    /// `format::conversion_rank`; `None` when the magic is not a model's (a named file: it is
    /// linted alone and the reader says what it is, e.g. an LFS pointer).
    pub rank: Option<u8>,
}

/// How a job's pair was formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pairing {
    /// A `[[pair]]` of the config.
    Declared,
    /// `--against REF`.
    Against,
    /// Same stem (`model.apr` ↔ `model.gguf`).
    SameStem,
    /// The reference's stem starts the file's (`model-q4_k.apr` ↔ `model.gguf`).
    CommonStem,
    /// The file lies inside the Hugging Face checkpoint directory it was converted from.
    Checkpoint,
    /// No reference: the file was linted alone.
    Unpaired,
}

impl Pairing {
    pub fn as_str(self) -> &'static str {
        match self {
            Pairing::Declared => "declared",
            Pairing::Against => "against",
            Pairing::SameStem => "same-stem",
            Pairing::CommonStem => "common-stem",
            Pairing::Checkpoint => "checkpoint",
            Pairing::Unpaired => "unpaired",
        }
    }
}

/// One run of the main job: a file under test and its reference (or none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub test: PathBuf,
    pub reference: Option<PathBuf>,
    pub pairing: Pairing,
    /// Why the file was not compared, or where the pair was declared.
    pub note: Option<String>,
}

/// A path that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    pub path: String,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub jobs: Vec<Job>,
    pub notes: Vec<Note>,
}

/// What to pair, beyond the paths themselves.
#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    /// `--against REF`.
    pub against: Option<&'a Path>,
    /// The config's `[[pair]]` entries.
    pub declared: &'a [DeclaredPair],
    /// `--find-references`: look for each named file's partner in its own directory (a pre-commit
    /// hook names only the files that changed). Only jobs involving a named file are kept.
    pub find_references: bool,
}

fn model_of(path: &Path) -> Option<Model> {
    if path.is_dir() {
        return format::is_checkpoint_dir(path).then(|| Model {
            path: path.to_path_buf(),
            rank: Some(format::CHECKPOINT_RANK),
        });
    }
    // A shard or index of a checkpoint directory stands for the directory (one model).
    if format::is_checkpoint_file(path) {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        return Some(Model {
            path: if format::is_checkpoint_dir(dir) {
                dir.to_path_buf()
            } else {
                path.to_path_buf()
            },
            rank: Some(format::CHECKPOINT_RANK),
        });
    }
    match format::peek(path) {
        Peek::Model(f) => Some(Model {
            path: path.to_path_buf(),
            rank: Some(format::conversion_rank(f)),
        }),
        _ => None,
    }
}

/// Every model file under `dir` (sorted; symlinked directories are not followed), noting what was
/// skipped.
fn walk(dir: &Path, models: &mut Vec<Model>, notes: &mut Vec<Note>) {
    let mut entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(Result::ok).collect(),
        Err(e) => {
            notes.push(Note {
                path: dir.display().to_string(),
                message: format!("skipped: cannot read the directory ({e})"),
            });
            return;
        }
    };
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        let name = e.file_name();
        if ft.is_dir() {
            if SKIPPED_DIRS.iter().any(|s| name == *s) {
                notes.push(Note {
                    path: path.display().to_string(),
                    message: "skipped: not walked into (Git and cache directories)".into(),
                });
            } else {
                // A checkpoint directory is one model; GGUF or APR files inside it are found too
                // (its SafeTensors shards have no magic and are not).
                if format::is_checkpoint_dir(&path) {
                    models.push(Model {
                        path: path.clone(),
                        rank: Some(format::CHECKPOINT_RANK),
                    });
                }
                walk(&path, models, notes);
            }
            continue;
        }
        // A symlink to a file counts; to a directory it is not followed (no cycles).
        if ft.is_symlink() && path.is_dir() {
            continue;
        }
        match format::peek(&path) {
            Peek::Model(f) => models.push(Model {
                path,
                rank: Some(format::conversion_rank(f)),
            }),
            Peek::LfsPointer => notes.push(Note {
                path: path.display().to_string(),
                message: "skipped: a Git LFS pointer, not the model; run `git lfs pull`".into(),
            }),
            Peek::Other => {}
        }
    }
}

/// The stem of a file name: the name without its last extension.
fn stem(p: &Path) -> String {
    if p.is_dir() {
        return p
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn tokens(s: &str) -> Vec<String> {
    s.split(['-', '_', '.'])
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// A token that names a quantization or a float type (`q4`, `k`, `m` of `q4_k_m`; `f16`, `bf16`…).
fn is_quant_word(t: &str) -> bool {
    matches!(t, "f32" | "f16" | "bf16" | "fp16" | "fp32" | "f64")
        || ((t.starts_with('q') || t.starts_with("iq"))
            && t.trim_start_matches('i')[1..].starts_with(|c: char| c.is_ascii_digit()))
}

/// The stem's tokens with a trailing quantization suffix dropped (`model-q4_k_m` → `model`).
fn base_tokens(s: &str) -> Vec<String> {
    let mut t = tokens(s);
    // `q4_k_m` splits into `q4`, `k`, `m`: drop the single letters after a quant word too.
    if let Some(i) = t.iter().rposition(|w| is_quant_word(w))
        && i > 0
        && t[i + 1..].iter().all(|w| w.len() == 1)
    {
        t.truncate(i);
    }
    t
}

/// How well `reference` names the source of `test`: `None` when it does not; higher is better.
fn stem_score(test: &Path, reference: &Path) -> Option<(usize, Pairing)> {
    let (ts, rs) = (stem(test), stem(reference));
    if ts.eq_ignore_ascii_case(&rs) {
        return Some((usize::MAX, Pairing::SameStem));
    }
    let t = tokens(&ts);
    let r = base_tokens(&rs);
    (!r.is_empty() && t.len() >= r.len() && t[..r.len()] == r[..])
        .then_some((r.len(), Pairing::CommonStem))
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The directory holding `p`, resolved (`a.gguf`'s is the current directory, as `./a.apr`'s).
fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => canonical(d),
        _ => canonical(Path::new(".")),
    }
}

/// Plan the jobs for `paths` (files and directories, in the order given).
pub fn plan(paths: &[PathBuf], req: &Request) -> Plan {
    let mut models: Vec<Model> = Vec::new();
    let mut notes = Vec::new();
    // Files named on the command line (a pre-commit hook's changed files).
    let mut named: Vec<PathBuf> = Vec::new();
    for p in paths {
        if p.is_dir() {
            if format::is_checkpoint_dir(p) {
                named.push(canonical(p));
                models.push(Model {
                    path: p.clone(),
                    rank: Some(format::CHECKPOINT_RANK),
                });
            }
            walk(p, &mut models, &mut notes);
        } else if let Some(m) = model_of(p).filter(|m| m.path != *p) {
            // A checkpoint's shard or index: the checkpoint directory.
            named.push(canonical(&m.path));
            models.push(m);
        } else {
            named.push(canonical(p));
            // A named file is linted whatever it holds: the reader names an LFS pointer or a
            // foreign format with its code.
            models.push(model_of(p).unwrap_or(Model {
                path: p.clone(),
                rank: None,
            }));
        }
    }
    if req.find_references {
        let mut seen: Vec<PathBuf> = models.iter().map(|m| canonical(&m.path)).collect();
        // Each named file's directory, and each named checkpoint's own directory (the GGUF or APR
        // files converted from it may lie inside).
        let dirs: Vec<PathBuf> = models
            .iter()
            .flat_map(|m| {
                let parent = m.path.parent().unwrap_or(Path::new("")).to_path_buf();
                let inside = m.path.is_dir().then(|| m.path.clone());
                std::iter::once(parent).chain(inside)
            })
            .collect();
        for d in dirs {
            let list = if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d.as_path()
            };
            let Ok(rd) = std::fs::read_dir(list) else {
                continue;
            };
            let mut files: Vec<PathBuf> = rd
                .filter_map(Result::ok)
                .map(|e| d.join(e.file_name()))
                .filter(|p| !p.is_dir() || format::is_checkpoint_dir(p))
                .collect();
            files.sort();
            // The checkpoint directory the files lie in (their source).
            if format::is_checkpoint_dir(list) {
                files.push(list.to_path_buf());
            }
            for f in files {
                let c = canonical(&f);
                if seen.contains(&c) {
                    continue;
                }
                if let Some(m) = model_of(&f) {
                    let c = canonical(&m.path);
                    if !seen.contains(&c) {
                        seen.push(c);
                        models.push(m);
                    }
                }
            }
        }
        for dp in req.declared {
            for side in [&dp.test, &dp.reference] {
                let c = canonical(side);
                if named.contains(&canonical(if side == &dp.test {
                    &dp.reference
                } else {
                    &dp.test
                })) && !seen.contains(&c)
                {
                    seen.push(c);
                    models.push(Model {
                        path: side.clone(),
                        rank: model_of(side).and_then(|m| m.rank),
                    });
                }
            }
        }
    }
    // One entry per file (a path given twice, or a file inside a directory also given).
    let mut unique: Vec<Model> = Vec::new();
    let mut keys: Vec<PathBuf> = Vec::new();
    let mut known = std::collections::HashSet::new();
    for m in models {
        let c = canonical(&m.path);
        if known.insert(c.clone()) {
            keys.push(c);
            unique.push(m);
        }
    }
    let models = unique;
    let mut jobs = pair(&models, &keys, req);
    if req.find_references {
        jobs.retain(|j| {
            std::iter::once(&j.test)
                .chain(j.reference.as_ref())
                .any(|p| named.contains(&canonical(p)))
        });
    }
    Plan { jobs, notes }
}

fn pair(models: &[Model], keys: &[PathBuf], req: &Request) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut used = vec![false; models.len()];
    let positions: std::collections::HashMap<&PathBuf, usize> =
        keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let index_of = |p: &Path| positions.get(&canonical(p)).copied();
    // 1. Declared pairs: a pair applies when one of its files is among the models.
    for dp in req.declared {
        let (t, r) = (index_of(&dp.test), index_of(&dp.reference));
        if t.is_none() && r.is_none() {
            continue;
        }
        for i in [t, r].into_iter().flatten() {
            used[i] = true;
        }
        jobs.push(Job {
            test: t.map_or(dp.test.clone(), |i| models[i].path.clone()),
            reference: Some(r.map_or(dp.reference.clone(), |i| models[i].path.clone())),
            pairing: Pairing::Declared,
            note: Some(format!("declared in {}", dp.origin)),
        });
    }
    // 2. `--against REF`: every other model against it.
    if let Some(reference) = req.against {
        let r = index_of(reference);
        for (i, m) in models.iter().enumerate() {
            if used[i] || Some(i) == r {
                continue;
            }
            used[i] = true;
            jobs.push(Job {
                test: m.path.clone(),
                reference: Some(reference.to_path_buf()),
                pairing: Pairing::Against,
                note: None,
            });
        }
        return jobs;
    }
    // 3. By name within a directory.
    let mut by_dir: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    for (i, m) in models.iter().enumerate() {
        let dir = parent_dir(&m.path);
        by_dir.entry(dir).or_default().push(i);
    }
    let mut paired_as_reference = vec![false; models.len()];
    let mut alone: Vec<(usize, Option<String>)> = Vec::new();
    for (i, m) in models.iter().enumerate() {
        if used[i] {
            continue;
        }
        let dir = parent_dir(&m.path);
        let (Some(rank), Some(group)) = (m.rank, by_dir.get(&dir)) else {
            // Not a model this build reads: the reader's finding says what it is.
            alone.push((i, None));
            continue;
        };
        let mut best: Vec<(usize, Pairing, usize)> = Vec::new();
        for &j in group {
            if models[j].rank.is_none_or(|r| r <= rank) {
                continue;
            }
            if let Some((score, how)) = stem_score(&m.path, &models[j].path) {
                match best.first() {
                    Some(b) if b.0 > score => {}
                    Some(b) if b.0 == score => best.push((score, how, j)),
                    _ => best = vec![(score, how, j)],
                }
            }
        }
        // Equally good: the nearest format in the chain (an APR's GGUF before its checkpoint).
        if let Some(min_rank) = best.iter().filter_map(|b| models[b.2].rank).min() {
            best.retain(|b| models[b.2].rank == Some(min_rank));
        }
        let enclosing = group_enclosing(models, &positions, &m.path, rank);
        match best.as_slice() {
            [(_, how, j)] => {
                paired_as_reference[*j] = true;
                jobs.push(Job {
                    test: m.path.clone(),
                    reference: Some(models[*j].path.clone()),
                    pairing: *how,
                    note: None,
                });
            }
            [] if enclosing.is_some() => {
                let j = enclosing.unwrap_or_default();
                paired_as_reference[j] = true;
                jobs.push(Job {
                    test: m.path.clone(),
                    reference: Some(models[j].path.clone()),
                    pairing: Pairing::Checkpoint,
                    note: None,
                });
            }
            [] => alone.push((
                i,
                Some(
                    "no reference found (same stem, or a stem that starts this one, in the same directory)"
                        .into(),
                ),
            )),
            many => alone.push((
                i,
                Some(format!(
                    "ambiguous: {} all name its reference equally well; declare the pair with `[[pair]]` in apr-lint.toml",
                    many.iter()
                        .map(|b| format!("`{}`", models[b.2].path.display()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            )),
        }
    }
    for (i, why) in alone {
        if paired_as_reference[i] {
            continue;
        }
        jobs.push(Job {
            test: models[i].path.clone(),
            reference: None,
            pairing: Pairing::Unpaired,
            note: why.map(|w| format!("not compared: {w}; only its single-file checks ran")),
        });
    }
    // Command-line order: jobs sorted by the file under test's position.
    jobs.sort_by_key(|j| index_of(&j.test).unwrap_or(usize::MAX));
    jobs
}

/// The checkpoint directory among `models` that holds `path` directly, when its rank is above `rank`.
fn group_enclosing(
    models: &[Model],
    positions: &std::collections::HashMap<&PathBuf, usize>,
    path: &Path,
    rank: u8,
) -> Option<usize> {
    positions
        .get(&parent_dir(path))
        .copied()
        .filter(|&j| models[j].rank.is_some_and(|r| r > rank))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems() {
        let p = Path::new;
        assert_eq!(
            stem_score(p("m.apr"), p("m.gguf")).map(|s| s.1),
            Some(Pairing::SameStem)
        );
        assert_eq!(
            stem_score(p("model-q4_k.apr"), p("model.gguf")).map(|s| s.1),
            Some(Pairing::CommonStem)
        );
        assert_eq!(
            stem_score(p("model-q4_k.apr"), p("model-f16.gguf")).map(|s| s.1),
            Some(Pairing::CommonStem)
        );
        assert_eq!(
            stem_score(p("qwen2.5-0.5b-q4_k_m.apr"), p("Qwen2.5-0.5B.Q8_0.gguf")).map(|s| s.1),
            Some(Pairing::CommonStem)
        );
        // A shared first word is not a common stem: 0.5b is not 1.5b.
        assert_eq!(
            stem_score(p("qwen2-0.5b-q4_k.apr"), p("qwen2-1.5b.gguf")),
            None
        );
        assert_eq!(stem_score(p("model.apr"), p("model-instruct.gguf")), None);
        // The longer stem scores higher.
        let a = stem_score(p("m-instruct-q4_k.apr"), p("m.gguf")).unwrap().0;
        let b = stem_score(p("m-instruct-q4_k.apr"), p("m-instruct.gguf"))
            .unwrap()
            .0;
        assert!(b > a);
        assert!(is_quant_word("q4") && is_quant_word("iq4") && is_quant_word("bf16"));
        assert!(!is_quant_word("qwen2") && !is_quant_word("instruct"));
    }
}
