//! A Hugging Face checkpoint on disk: resolve a directory, a `model.safetensors` or a
//! `model.safetensors.index.json` into its SafeTensors files (one, or the shards the index names)
//! and the sidecar JSON files beside it, as one list of tensors each tagged with its source file.
//!
//! Strict about the index: `weight_map` must map every tensor to a plain file name in the same
//! directory (no path separators, `..` or absolute paths), every shard must exist and hold the
//! tensors the index assigns to it, and no tensor may be in two shards (F058, F059; refused). A tensor
//! a shard holds that the index does not list is kept, with a warning (F059): transformers loads
//! every tensor of every shard file the index names and reports such keys as unexpected.
//! Reads no config, tokenizer or tensor data: the sidecars are only located.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::diag::{Finding, ReadError, Severity, Span};
use crate::format::Source;
use crate::format::lints;
use crate::format::safetensors::{self, ObjectError, SafetensorsFile, StTensor};

pub const SINGLE_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// The sidecar files of a checkpoint, where present beside its weights.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sidecars {
    pub config: Option<PathBuf>,
    pub tokenizer: Option<PathBuf>,
    pub tokenizer_config: Option<PathBuf>,
    pub generation_config: Option<PathBuf>,
}

impl Sidecars {
    pub fn find(dir: &Path) -> Sidecars {
        let get = |name: &str| {
            let p = dir.join(name);
            p.is_file().then_some(p)
        };
        Sidecars {
            config: get("config.json"),
            tokenizer: get("tokenizer.json"),
            tokenizer_config: get("tokenizer_config.json"),
            generation_config: get("generation_config.json"),
        }
    }
}

/// One tensor of the checkpoint; `source` indexes `HfCheckpoint::files`.
#[derive(Clone, Debug, PartialEq)]
pub struct HfTensor {
    pub source: usize,
    pub tensor: StTensor,
}

#[derive(Clone, Debug)]
pub struct HfCheckpoint {
    /// The path it was opened from, as given (a directory, a SafeTensors file or an index).
    pub path: PathBuf,
    /// The directory holding the weights and sidecars.
    pub dir: PathBuf,
    /// The index file, for a sharded checkpoint.
    pub index: Option<PathBuf>,
    pub sidecars: Sidecars,
    /// The SafeTensors files: one, or the shards the index names, sorted by file name.
    pub files: Vec<SafetensorsFile>,
    /// Every tensor, file by file in `files` order, each file's in header order.
    pub tensors: Vec<HfTensor>,
    pub findings: Vec<Finding>,
}

impl HfCheckpoint {
    pub fn tensor(&self, name: &str) -> Option<&HfTensor> {
        self.tensors.iter().find(|t| t.tensor.name == name)
    }
    /// The file `t` lives in.
    pub fn file_of(&self, t: &HfTensor) -> &SafetensorsFile {
        &self.files[t.source]
    }
}

/// Open a checkpoint from a directory, a SafeTensors file or an index file.
pub fn open(path: &Path) -> Result<HfCheckpoint, ReadError> {
    if path.is_dir() {
        let index = path.join(INDEX_FILE);
        let single = path.join(SINGLE_FILE);
        let found = if index.is_file() {
            Some(open_index(&index))
        } else if single.is_file() {
            Some(open_single(&single))
        } else {
            None
        };
        if let Some(r) = found {
            return r.map(|mut c| {
                c.path = path.to_path_buf();
                c
            });
        }
        return Err(ReadError::new(
            &lints::HF_INDEX,
            format!("the directory has neither `{SINGLE_FILE}` nor `{INDEX_FILE}`"),
        )
        .help("pass a Hugging Face checkpoint directory with SafeTensors weights")
        .with_path(path));
    }
    let is_index = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".index.json"));
    if is_index {
        open_index(path)
    } else {
        open_single(path)
    }
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn open_single(path: &Path) -> Result<HfCheckpoint, ReadError> {
    from_source(Source::open(path)?)
}

/// A single-file checkpoint from a SafeTensors file already opened; the sidecars are looked up in
/// the directory of its path.
pub fn from_source(source: Source) -> Result<HfCheckpoint, ReadError> {
    let path = source.path().to_path_buf();
    let dir = dir_of(&path);
    let file = safetensors::read(source)?;
    let tensors = file
        .tensors
        .iter()
        .map(|t| HfTensor {
            source: 0,
            tensor: t.clone(),
        })
        .collect();
    let findings = file.findings.clone();
    Ok(HfCheckpoint {
        sidecars: Sidecars::find(&dir),
        path,
        dir,
        index: None,
        files: vec![file],
        tensors,
        findings,
    })
}

/// A parsed `weight_map`: (tensor, shard file name, span of the entry in the index), in file order.
pub struct WeightMap {
    pub entries: Vec<(String, String, Span)>,
}

fn index_err(message: impl Into<String>, span: Span) -> ReadError {
    ReadError::new(&lints::HF_INDEX, message)
        .span(span)
        .help("download the checkpoint again, or regenerate the index with `save_pretrained`")
}

/// Is `name` a plain file name (no directory part, not `.`/`..`, not absolute, on any platform)?
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !(name.len() >= 2 && name.as_bytes()[1] == b':')
}

/// Parse an index file's text strictly.
pub fn parse_index(text: &str) -> Result<WeightMap, ReadError> {
    let whole = Span::new(0, text.len() as u64);
    let obj_err = |e: ObjectError, what: &str| match e {
        ObjectError::Syntax(m, at) => {
            index_err(format!("{what} is not a JSON object: {m}"), Span::at(at))
        }
        ObjectError::Duplicate(key, span) => ReadError::new(
            &lints::ST_DUPLICATE_KEY,
            format!("{what} has the key `{key}` twice"),
        )
        .span(span)
        .help("JSON readers keep one of the two; regenerate the index with each tensor once"),
    };
    let top = safetensors::unique_object(text, 0).map_err(|e| obj_err(e, "the index"))?;
    let Some(wm) = top.iter().find(|m| m.key == "weight_map") else {
        return Err(index_err("the index has no `weight_map`", whole));
    };
    let members = safetensors::unique_object(wm.raw.get(), wm.span.offset)
        .map_err(|e| obj_err(e, "`weight_map`"))?;
    let mut entries = Vec::with_capacity(members.len());
    for m in members {
        let shard: String = serde_json::from_str(m.raw.get()).map_err(|_| {
            index_err(
                format!("`weight_map.{}` is not a string (a shard file name)", m.key),
                m.span,
            )
        })?;
        if !is_plain_file_name(&shard) {
            return Err(index_err(
                format!(
                    "`weight_map.{}` names the shard `{shard}`, which is not a plain file name in the index's directory",
                    m.key
                ),
                m.span,
            ));
        }
        entries.push((m.key, shard, m.span));
    }
    Ok(WeightMap { entries })
}

fn open_index(path: &Path) -> Result<HfCheckpoint, ReadError> {
    let dir = dir_of(path);
    let src = Source::open(path)?;
    let text = std::str::from_utf8(src.bytes()).map_err(|e| {
        index_err("the index is not UTF-8", Span::at(e.valid_up_to() as u64)).with_path(path)
    })?;
    let map = parse_index(text).map_err(|e| e.with_path(path))?;

    // Shards in file-name order (`model-00001-of-…` first).
    let mut first_span: HashMap<&str, Span> = HashMap::new();
    for (_, shard, span) in &map.entries {
        first_span.entry(shard.as_str()).or_insert(*span);
    }
    let mut shard_names: Vec<&str> = first_span.keys().copied().collect();
    shard_names.sort_unstable();
    if shard_names.is_empty() {
        return Err(index_err(
            "the index's `weight_map` is empty: it names no shard",
            Span::new(0, text.len() as u64),
        )
        .with_path(path));
    }
    let mut files = Vec::with_capacity(shard_names.len());
    for name in &shard_names {
        let p = dir.join(name);
        if !p.is_file() {
            return Err(index_err(
                format!(
                    "the index names the shard `{name}`, which is not in `{}`",
                    dir.display()
                ),
                first_span[name],
            )
            .with_path(path));
        }
        files.push(safetensors::read(Source::open(&p)?)?);
    }
    let names: Vec<String> = shard_names.iter().map(|s| s.to_string()).collect();
    resolve(path, dir, &map, &names, files)
}

/// Hold the index against the shards it names (`files[i]` is the shard `shard_names[i]`).
fn resolve(
    path: &Path,
    dir: PathBuf,
    map: &WeightMap,
    shard_names: &[String],
    files: Vec<SafetensorsFile>,
) -> Result<HfCheckpoint, ReadError> {
    let shard_index: HashMap<&str, usize> = shard_names
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    // Where each tensor actually is.
    let mut held: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        for t in &f.tensors {
            held.entry(t.name.as_str()).or_default().push(i);
        }
    }
    let shard_name = |i: usize| files[i].source.path().display().to_string();
    for (name, holders) in &held {
        if holders.len() > 1 {
            let t = files[holders[1]].tensor(name).map(|t| t.entry);
            return Err(ReadError::new(
                &lints::HF_SHARD_MISMATCH,
                format!(
                    "tensor `{name}` is in two shards: `{}` and `{}`",
                    shard_name(holders[0]),
                    shard_name(holders[1])
                ),
            )
            .span(t.unwrap_or(Span::at(0)))
            .help(
                "loaders disagree on which copy wins; regenerate the shards with `save_pretrained`",
            )
            .with_path(files[holders[1]].source.path()));
        }
    }
    let mut listed: HashMap<&str, ()> = HashMap::new();
    for (name, shard, span) in &map.entries {
        listed.insert(name, ());
        let want = shard_index[shard.as_str()];
        match held.get(name.as_str()).map(|h| h[0]) {
            Some(i) if i == want => {}
            other => {
                let where_ = match other {
                    Some(i) => format!("; it is in `{}` instead", shard_name(i)),
                    None => "; no shard has it".to_string(),
                };
                return Err(ReadError::new(
                    &lints::HF_SHARD_MISMATCH,
                    format!("the index puts tensor `{name}` in `{shard}`, which does not hold it{where_}"),
                )
                .span(*span)
                .help("regenerate the index with `save_pretrained`, or download the shards again")
                .with_path(path));
            }
        }
    }
    let mut findings = Vec::new();
    let mut tensors = Vec::new();
    for (i, f) in files.iter().enumerate() {
        findings.extend(f.findings.iter().cloned());
        for t in &f.tensors {
            if !listed.contains_key(t.name.as_str()) {
                findings.push(
                    Finding::new(
                        &lints::HF_SHARD_MISMATCH,
                        format!(
                            "tensor `{}` is in the shard but not in the index `{}`",
                            t.name,
                            path.display()
                        ),
                    )
                    .severity(Severity::Warning)
                    .tensor(&t.name)
                    .file(f.source.path())
                    .span(t.entry)
                    .help("loaders that follow the index may skip it; regenerate the index"),
                );
            }
            tensors.push(HfTensor {
                source: i,
                tensor: t.clone(),
            });
        }
    }
    Ok(HfCheckpoint {
        sidecars: Sidecars::find(&dir),
        path: path.to_path_buf(),
        dir,
        index: Some(path.to_path_buf()),
        files,
        tensors,
        findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::safetensors::write;

    fn index_json(entries: &[(&str, &str)]) -> String {
        let m: Vec<String> = entries
            .iter()
            .map(|(t, s)| format!("{:?}: {:?}", t, s))
            .collect();
        format!(
            "{{\"metadata\": {{\"total_size\": 0}}, \"weight_map\": {{{}}}}}",
            m.join(", ")
        )
    }

    /// A two-shard checkpoint in a temp dir: shard 1 holds `a`, shard 2 holds `b`.
    fn sharded(index: &str, shard1: &[&str], shard2: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let mk = |names: &[&str]| {
            let t: Vec<(&str, &str, &[u64], &[u8])> = names
                .iter()
                .map(|n| (*n, "F32", &[1u64][..], &[0u8; 4][..]))
                .collect();
            write(&t, &[("format", "pt")])
        };
        std::fs::write(d.path().join("s1.safetensors"), mk(shard1)).unwrap();
        std::fs::write(d.path().join("s2.safetensors"), mk(shard2)).unwrap();
        std::fs::write(d.path().join(INDEX_FILE), index).unwrap();
        std::fs::write(d.path().join("config.json"), "{}").unwrap();
        d
    }
    fn code(r: Result<HfCheckpoint, ReadError>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }
    const GOOD: &[(&str, &str)] = &[("a", "s1.safetensors"), ("b", "s2.safetensors")];

    #[test]
    fn sharded_checkpoint_resolves_with_source_ids_and_sidecars() {
        let d = sharded(&index_json(GOOD), &["a"], &["b"]);
        for p in [d.path().to_path_buf(), d.path().join(INDEX_FILE)] {
            let c = open(&p).unwrap();
            assert_eq!(c.files.len(), 2);
            assert_eq!(c.tensor("a").unwrap().source, 0);
            assert_eq!(c.tensor("b").unwrap().source, 1);
            assert!(
                c.file_of(c.tensor("b").unwrap())
                    .source
                    .path()
                    .ends_with("s2.safetensors")
            );
            assert_eq!(c.sidecars.config, Some(d.path().join("config.json")));
            assert_eq!(c.sidecars.tokenizer, None);
            assert!(c.findings.is_empty());
        }
    }

    #[test]
    fn single_file_and_directory_with_single_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(SINGLE_FILE);
        std::fs::write(&p, write(&[("w", "BF16", &[2], &[0u8; 4])], &[])).unwrap();
        std::fs::write(d.path().join("tokenizer.json"), "{}").unwrap();
        for q in [p.clone(), d.path().to_path_buf()] {
            let c = open(&q).unwrap();
            assert_eq!(c.index, None);
            assert_eq!(c.tensors.len(), 1);
            assert_eq!(c.tensors[0].source, 0);
            assert_eq!(c.sidecars.tokenizer, Some(d.path().join("tokenizer.json")));
        }
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(code(open(empty.path())), "APRL-F058");
    }

    #[test]
    fn index_must_be_strict_json_with_a_weight_map_of_strings() {
        let d = sharded("{\"metadata\": {}}", &["a"], &["b"]);
        assert_eq!(code(open(d.path())), "APRL-F058");
        let d = sharded("not json", &["a"], &["b"]);
        assert_eq!(code(open(d.path())), "APRL-F058");
        let d = sharded("{\"weight_map\": {\"a\": 1}}", &["a"], &["b"]);
        assert_eq!(code(open(d.path())), "APRL-F058");
        let dup = "{\"weight_map\": {\"a\": \"s1.safetensors\", \"a\": \"s2.safetensors\"}}";
        let d = sharded(dup, &["a"], &[]);
        let e = open(d.path()).unwrap_err();
        assert_eq!(e.code(), "APRL-F052");
        assert_eq!(e.byte_offset(), Some(dup.rfind("\"s2").unwrap() as u64));
        assert!(e.path.unwrap().ends_with(INDEX_FILE));
    }

    #[test]
    fn shard_names_must_be_plain_file_names() {
        // Every one of these names a file that exists, so only the name rule can refuse it.
        let d = sharded(&index_json(GOOD), &["a"], &["b"]);
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::copy(
            d.path().join("s1.safetensors"),
            d.path().join("sub/s1.safetensors"),
        )
        .unwrap();
        let abs = d.path().join("s1.safetensors").display().to_string();
        let up = format!(
            "../{}/s1.safetensors",
            d.path().file_name().unwrap().to_string_lossy()
        );
        for bad in [
            abs.as_str(),
            up.as_str(),
            "sub/s1.safetensors",
            "./s1.safetensors",
            "..",
            "",
            "C:x",
            "a\\b",
        ] {
            std::fs::write(
                d.path().join(INDEX_FILE),
                index_json(&[("a", bad), ("b", "s2.safetensors")]),
            )
            .unwrap();
            let e = open(d.path()).unwrap_err();
            assert_eq!(e.code(), "APRL-F058", "{bad}");
            assert!(
                e.message.contains("not a plain file name"),
                "{bad}: {}",
                e.message
            );
            assert!(e.byte_offset().unwrap() > 0);
        }
    }

    #[test]
    fn missing_shard_is_refused() {
        let d = sharded(
            &index_json(&[("a", "s1.safetensors"), ("b", "s3.safetensors")]),
            &["a"],
            &["b"],
        );
        let e = open(d.path()).unwrap_err();
        assert_eq!(e.code(), "APRL-F058");
        assert!(e.message.contains("s3.safetensors"), "{}", e.message);
    }

    #[test]
    fn index_and_shards_must_agree() {
        // The index puts `b` in s1, but s2 has it.
        let d = sharded(
            &index_json(&[
                ("a", "s1.safetensors"),
                ("b", "s1.safetensors"),
                ("c", "s2.safetensors"),
            ]),
            &["a"],
            &["b", "c"],
        );
        let e = open(d.path()).unwrap_err();
        assert_eq!(e.code(), "APRL-F059");
        assert!(e.message.contains("instead"), "{}", e.message);
        // The index lists a tensor no shard has.
        let d = sharded(
            &index_json(&[
                ("a", "s1.safetensors"),
                ("b", "s2.safetensors"),
                ("z", "s2.safetensors"),
            ]),
            &["a"],
            &["b"],
        );
        assert_eq!(code(open(d.path())), "APRL-F059");
        // A tensor in two shards.
        let d = sharded(&index_json(GOOD), &["a", "b"], &["b"]);
        let e = open(d.path()).unwrap_err();
        assert_eq!(e.code(), "APRL-F059");
        assert!(e.message.contains("two shards"), "{}", e.message);
    }

    #[test]
    fn unlisted_tensor_is_kept_with_a_warning() {
        let d = sharded(&index_json(GOOD), &["a", "extra"], &["b"]);
        let c = open(d.path()).unwrap();
        assert_eq!(c.tensors.len(), 3);
        assert_eq!(c.findings.len(), 1);
        let f = &c.findings[0];
        assert_eq!((f.code, f.severity), ("APRL-F059", Severity::Warning));
        assert_eq!(f.tensor.as_deref(), Some("extra"));
    }

    #[test]
    fn a_corrupt_shard_is_reported_with_its_path() {
        let d = sharded(&index_json(GOOD), &["a"], &["b"]);
        let p = d.path().join("s2.safetensors");
        let mut b = std::fs::read(&p).unwrap();
        b.truncate(b.len() - 1);
        std::fs::write(&p, b).unwrap();
        let e = open(d.path()).unwrap_err();
        assert_eq!(e.code(), "APRL-F055");
        assert!(e.path.unwrap().ends_with("s2.safetensors"));
    }
}
