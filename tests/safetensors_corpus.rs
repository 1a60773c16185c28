//! Hugging Face checkpoints (groundwork for issue 12): the real BF16-sharded tiny qwen2 directory
//! written by transformers (fixtures/hf/), the real index files of the llama and tied qwen2
//! directories with generated shards, the oracle directories in /work/shared when present, and a
//! corrupt-SafeTensors corpus made from the real shards. Every damaged case must end in its
//! expected `APRL-F05x` code (or, for a layout that is merely unusual, read cleanly), never a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use apr_lint::diag::{ReadError, Severity};
use apr_lint::format::Source;
use apr_lint::format::hf::{self, HfCheckpoint, INDEX_FILE};
use apr_lint::format::safetensors::{self, SafetensorsFile, StDtype};

const QWEN: &str = "tiny-qwen2-f32-hf-bf16-sharded";
const SHARD1: &str = "model-00001-of-00002.safetensors";
const SHARD2: &str = "model-00002-of-00002.safetensors";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/hf")
        .join(name)
}

fn read_bytes(bytes: Vec<u8>) -> Result<SafetensorsFile, ReadError> {
    catch_unwind(AssertUnwindSafe(|| {
        safetensors::read(Source::from_vec(bytes, "case.safetensors"))
    }))
    .expect("the reader panicked")
}

fn code(bytes: Vec<u8>) -> &'static str {
    match read_bytes(bytes) {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

fn open_dir(dir: &Path) -> Result<HfCheckpoint, ReadError> {
    catch_unwind(AssertUnwindSafe(|| hf::open(dir))).expect("the resolver panicked")
}

/// A writable copy of the qwen2 fixture directory.
fn qwen_copy() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture(QWEN)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), d.path().join(e.file_name())).unwrap();
    }
    d
}

fn weight_map(index: &Path) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(index).unwrap()).unwrap();
    v["weight_map"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

/// Check a resolved checkpoint against its index and its own invariants.
fn assert_consistent(c: &HfCheckpoint, index: &Path) {
    let wm = weight_map(index);
    assert_eq!(c.tensors.len(), wm.len());
    for (name, shard) in &wm {
        let t = c
            .tensor(name)
            .unwrap_or_else(|| panic!("{name} not resolved"));
        assert!(c.file_of(t).source.path().ends_with(shard), "{name}");
    }
    for f in &c.files {
        let covered: u64 = f.tensors.iter().map(|t| t.data.len).sum();
        assert_eq!(covered, f.data.len);
        assert_eq!(f.data.end(), f.source.len());
    }
    assert!(c.findings.is_empty(), "{:?}", c.findings);
}

#[test]
fn real_sharded_qwen2_resolves_with_sidecars_and_spans() {
    let dir = fixture(QWEN);
    for p in [dir.clone(), dir.join(INDEX_FILE)] {
        let c = open_dir(&p).unwrap();
        assert_consistent(&c, &dir.join(INDEX_FILE));
        assert_eq!(c.files.len(), 2);
        assert!(c.sidecars.config.is_some());
        assert!(c.sidecars.tokenizer.is_some());
        assert!(c.sidecars.tokenizer_config.is_some());
        assert!(c.sidecars.generation_config.is_some());
        assert!(c.tensors.iter().all(|t| t.tensor.dtype == StDtype::BF16));
        let total: u64 = c.tensors.iter().map(|t| t.tensor.data.len).sum();
        assert_eq!(total, 3_674_624, "metadata.total_size of the index");
        let emb = c.tensor("model.embed_tokens.weight").unwrap();
        assert_eq!(emb.source, 0);
        assert_eq!(emb.tensor.shape, vec![512, 256]);
        let lm = c.tensor("lm_head.weight").unwrap();
        assert_eq!(lm.source, 1);
        let f = c.file_of(lm);
        assert_eq!(f.metadata, vec![("format".to_string(), "pt".to_string())]);
        let entry = f
            .source
            .slice(lm.tensor.entry.offset, lm.tensor.entry.len)
            .unwrap();
        assert!(std::str::from_utf8(entry).unwrap().contains("\"BF16\""));
    }
    // One shard on its own is a single-file checkpoint.
    let one = open_dir(&dir.join(SHARD1)).unwrap();
    assert_eq!(one.index, None);
    assert!(one.tensors.iter().all(|t| t.source == 0));
}

/// The real index files of the other two models, with generated shards that hold what they list.
#[test]
fn real_indexes_of_llama_and_tied_qwen2_resolve() {
    for m in [
        "tiny-llama-f32-hf-bf16-sharded-index",
        "tiny-qwen2-tied-f32-hf-bf16-sharded-index",
    ] {
        let index = fixture(m).join(INDEX_FILE);
        let wm = weight_map(&index);
        let d = tempfile::tempdir().unwrap();
        std::fs::copy(&index, d.path().join(INDEX_FILE)).unwrap();
        let mut shards: Vec<&str> = wm.iter().map(|(_, s)| s.as_str()).collect();
        shards.dedup();
        shards.sort();
        shards.dedup();
        for s in &shards {
            let names: Vec<&str> = wm
                .iter()
                .filter(|(_, sh)| sh == s)
                .map(|(n, _)| n.as_str())
                .collect();
            let t: Vec<(&str, &str, &[u64], &[u8])> = names
                .iter()
                .map(|n| (*n, "BF16", &[2u64][..], &[0u8; 4][..]))
                .collect();
            std::fs::write(d.path().join(s), safetensors::write(&t, &[])).unwrap();
        }
        let c = open_dir(d.path()).unwrap();
        assert_consistent(&c, &index);
        assert_eq!(c.files.len(), shards.len(), "{m}");
        let tied = m.contains("tied");
        assert_eq!(c.tensor("lm_head.weight").is_some(), !tied, "{m}");
    }
}

/// The oracle directories themselves, when this machine has them.
#[test]
fn oracle_directories_resolve_when_present() {
    let root = Path::new("/work/shared/oracle/hf");
    if !root.is_dir() {
        println!(
            "note: {} not present; oracle directories skipped",
            root.display()
        );
        return;
    }
    for m in ["tiny-qwen2", "tiny-llama", "tiny-qwen2-tied"] {
        for suffix in ["-f32-hf", "-f32-hf-bf16-sharded"] {
            let dir = root.join(format!("{m}{suffix}"));
            if !dir.is_dir() {
                println!("note: {} not present; skipped", dir.display());
                continue;
            }
            let c = open_dir(&dir).unwrap_or_else(|e| panic!("{}: {e:?}", dir.display()));
            if c.index.is_some() {
                assert_consistent(&c, &dir.join(INDEX_FILE));
            }
            let want = if suffix.contains("bf16") {
                StDtype::BF16
            } else {
                StDtype::F32
            };
            assert!(c.tensors.iter().all(|t| t.tensor.dtype == want));
            assert!(c.sidecars.config.is_some() && c.sidecars.tokenizer.is_some());
            assert_eq!(c.tensor("lm_head.weight").is_none(), m.ends_with("tied"));
        }
    }
}

// -------------------------------------------------------------------------------------------------
// The corrupt corpus, from the real second shard.

fn shard2() -> Vec<u8> {
    std::fs::read(fixture(QWEN).join(SHARD2)).unwrap()
}

/// Rewrite the header of `bytes` (keeping its data area) through `edit` on the parsed JSON.
fn rewrite(
    bytes: &[u8],
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut h: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut h);
    let text = serde_json::to_string(&h).unwrap();
    safetensors::with_header(&text, &bytes[8 + n..])
}

/// The tensors of the shard in data order: (name, begin, end).
fn in_data_order(bytes: &[u8]) -> Vec<(String, u64, u64)> {
    let f = read_bytes(bytes.to_vec()).unwrap();
    let mut v: Vec<_> = f
        .tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.data.offset - f.data.offset,
                t.data.end() - f.data.offset,
            )
        })
        .collect();
    v.sort_by_key(|t| t.1);
    v
}

fn set_offsets(h: &mut serde_json::Map<String, serde_json::Value>, name: &str, b: u64, e: u64) {
    h[name]["data_offsets"] = serde_json::json!([b, e]);
}

#[test]
fn truncation_at_every_field_boundary_is_refused() {
    let full = shard2();
    let f = read_bytes(full.clone()).unwrap();
    let mut cuts: Vec<u64> = (0..=9).collect();
    cuts.extend([f.header.offset + 1, f.header.end() - 1, f.header.end()]);
    for t in &f.tensors {
        cuts.extend([
            t.entry.offset,
            t.entry.end(),
            t.data.offset,
            t.data.offset + 1,
            t.data.end() - 1,
        ]);
    }
    for cut in cuts {
        if cut >= full.len() as u64 {
            continue;
        }
        let c = code(full[..cut as usize].to_vec());
        let want = if cut < 8 || cut < f.header.end() {
            "APRL-F050"
        } else {
            "APRL-F055"
        };
        assert_eq!(c, want, "cut at {cut}");
    }
}

#[test]
fn header_length_past_the_file_is_refused() {
    for n in [u64::MAX, 1 << 40, 0] {
        let mut b = shard2();
        let len = b.len() as u64;
        let n = if n == 0 { len - 7 } else { n };
        b[..8].copy_from_slice(&n.to_le_bytes());
        assert_eq!(code(b), "APRL-F050", "header length {n}");
    }
}

#[test]
fn bad_offsets_are_refused_by_rule() {
    let b = shard2();
    let order = in_data_order(&b);
    let (first, second, last) = (&order[0], &order[1], order.last().unwrap());

    // Overlap: the second tensor starts 2 bytes early (and ends 2 bytes early).
    let c = code(rewrite(&b, |h| {
        set_offsets(h, &second.0, second.1 - 2, second.2 - 2)
    }));
    assert_eq!(c, "APRL-F056");
    // Out of range: the last tensor ends past the data area.
    let c = code(rewrite(&b, |h| set_offsets(h, &last.0, last.1, last.2 + 2)));
    assert_eq!(c, "APRL-F055");
    // Reversed.
    let c = code(rewrite(&b, |h| set_offsets(h, &first.0, first.2, first.1)));
    assert_eq!(c, "APRL-F055");
    // Gap: a tensor's entry removed.
    let e = read_bytes(rewrite(&b, |h| {
        h.remove(&second.0);
    }))
    .unwrap_err();
    assert_eq!(e.code(), "APRL-F057");
    assert!(e.message.starts_with("gap"), "{}", e.message);
    assert_eq!(e.span.unwrap().len, second.2 - second.1);
    // Trailing bytes: the last tensor's entry removed.
    let e = read_bytes(rewrite(&b, |h| {
        h.remove(&last.0);
    }))
    .unwrap_err();
    assert_eq!(e.code(), "APRL-F057");
    assert!(e.message.starts_with("trailing"), "{}", e.message);
    // Unsorted (header order unlike data order) is how Python writes files: it reads.
    let pair = order
        .iter()
        .enumerate()
        .find_map(|(i, x)| {
            order[i + 1..]
                .iter()
                .find(|y| y.2 - y.1 == x.2 - x.1)
                .map(|y| (x, y))
        })
        .expect("two tensors of one size");
    let (x, y) = pair;
    let r = read_bytes(rewrite(&b, |h| {
        set_offsets(h, &x.0, y.1, y.2);
        set_offsets(h, &y.0, x.1, x.2);
    }))
    .unwrap();
    assert_eq!(r.tensor(&x.0).unwrap().data.offset - r.data.offset, y.1);
    let reordered = rewrite(&b, |h| {
        let mut entries: Vec<_> = std::mem::take(h).into_iter().collect();
        entries.reverse();
        h.extend(entries);
    });
    assert_eq!(code(reordered), "ok");
}

#[test]
fn duplicate_names_and_wrong_dtypes_are_refused() {
    let b = shard2();
    let f = read_bytes(b.clone()).unwrap();
    let t = &f.tensors[1];
    // Duplicate: the header text with one entry repeated (a JSON writer cannot make this).
    let n = f.header.len as usize;
    let text = std::str::from_utf8(&b[8..8 + n]).unwrap().trim_end();
    let entry = std::str::from_utf8(&b[t.entry.offset as usize..t.entry.end() as usize]).unwrap();
    let dup = format!("{},{:?}:{}}}", &text[..text.len() - 1], t.name, entry);
    let e = read_bytes(safetensors::with_header(&dup, &b[8 + n..])).unwrap_err();
    assert_eq!(e.code(), "APRL-F052");
    assert!(e.message.contains(&t.name));
    // Dtype with the wrong size for the offsets.
    for (dtype, want) in [
        ("F32", "APRL-F054"),
        ("U8", "APRL-F054"),
        ("F16", "ok"),
        ("I16", "ok"),
        ("Q8_0", "APRL-F053"),
        ("bf16", "APRL-F053"),
    ] {
        let c = code(rewrite(&b, |h| h[&t.name]["dtype"] = dtype.into()));
        assert_eq!(c, want, "{dtype}");
    }
    // Shape that disagrees with the offsets.
    let c = code(rewrite(&b, |h| {
        h[&t.name]["shape"] = serde_json::json!([t.shape[0] + 1])
    }));
    assert_eq!(c, "APRL-F054");
    // Metadata that is not a string map.
    let c = code(rewrite(&b, |h| {
        h["__metadata__"] = serde_json::json!({"format": 1})
    }));
    assert_eq!(c, "APRL-F051");
}

#[test]
fn header_bit_flips_never_panic() {
    let b = shard2();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    for i in (0..8 + n).step_by(3) {
        for bit in [0x01u8, 0x20, 0x80] {
            let mut c = b.clone();
            c[i] ^= bit;
            match read_bytes(c) {
                Ok(_) => {}
                Err(e) => {
                    assert!(e.code().starts_with("APRL-F05"), "{i}: {}", e.code());
                    assert!(e.byte_offset().is_some_and(|o| o <= b.len() as u64));
                }
            }
        }
    }
}

#[test]
fn missing_shard_and_index_disagreement_are_refused() {
    // Missing shard.
    let d = qwen_copy();
    std::fs::remove_file(d.path().join(SHARD2)).unwrap();
    let e = open_dir(d.path()).unwrap_err();
    assert_eq!(e.code(), "APRL-F058");
    assert!(e.message.contains(SHARD2));
    assert!(e.byte_offset().unwrap() > 0, "points at the index entry");

    let edit_index = |edit: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let d = qwen_copy();
        let p = d.path().join(INDEX_FILE);
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        edit(v["weight_map"].as_object_mut().unwrap());
        std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        d
    };
    // The index puts a tensor in the wrong shard.
    let d = edit_index(&|m| {
        m["lm_head.weight"] = SHARD1.into();
    });
    let e = open_dir(d.path()).unwrap_err();
    assert_eq!(e.code(), "APRL-F059");
    assert!(e.message.contains("lm_head.weight"), "{}", e.message);
    // The index lists a tensor no shard has.
    let d = edit_index(&|m| {
        m.insert("model.extra.weight".into(), SHARD2.into());
    });
    assert_eq!(open_dir(d.path()).unwrap_err().code(), "APRL-F059");
    // A shard name that leaves the directory.
    let d = edit_index(&|m| {
        m["lm_head.weight"] = format!("../{QWEN}/{SHARD2}").into();
    });
    assert_eq!(open_dir(d.path()).unwrap_err().code(), "APRL-F058");
    // The index forgets a tensor a shard has: kept, with a warning.
    let d = edit_index(&|m| {
        m.remove("lm_head.weight");
    });
    let c = open_dir(d.path()).unwrap();
    assert_eq!(c.findings.len(), 1);
    assert_eq!(c.findings[0].code, "APRL-F059");
    assert_eq!(c.findings[0].severity, Severity::Warning);
    assert!(c.tensor("lm_head.weight").is_some());
    // A tensor in both shards.
    let d = qwen_copy();
    let p1 = d.path().join(SHARD1);
    let s1 = std::fs::read(&p1).unwrap();
    let s2 = shard2();
    let f2 = read_bytes(s2.clone()).unwrap();
    let lm = f2.tensor("lm_head.weight").unwrap();
    let lm_bytes = f2.bytes_of(lm).unwrap().to_vec();
    let n = u64::from_le_bytes(s1[..8].try_into().unwrap()) as usize;
    let data_len = (s1.len() - 8 - n) as u64;
    let mut data = s1[8 + n..].to_vec();
    data.extend_from_slice(&lm_bytes);
    let mut h: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&s1[8..8 + n]).unwrap();
    h.insert(
        "lm_head.weight".into(),
        serde_json::json!({"dtype": "BF16", "shape": lm.shape, "data_offsets": [data_len, data_len + lm_bytes.len() as u64]}),
    );
    std::fs::write(
        &p1,
        safetensors::with_header(&serde_json::to_string(&h).unwrap(), &data),
    )
    .unwrap();
    let e = open_dir(d.path()).unwrap_err();
    assert_eq!(e.code(), "APRL-F059");
    assert!(e.message.contains("two shards"), "{}", e.message);
}

#[test]
fn malformed_headers_are_refused_with_their_code() {
    let b = shard2();
    let f = read_bytes(b.clone()).unwrap();
    let t = &f.tensors[0];
    let n = f.header.len as usize;
    let data = &b[8 + n..];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty file", Vec::new(), "APRL-F050"),
        ("length only", b[..8].to_vec(), "APRL-F050"),
        (
            "zero-length header",
            safetensors::with_header("", data),
            "APRL-F051",
        ),
        (
            "not JSON",
            safetensors::with_header("{\"a\":", data),
            "APRL-F051",
        ),
        (
            "a JSON array",
            safetensors::with_header("[1, 2]", data),
            "APRL-F051",
        ),
        (
            "invalid UTF-8",
            {
                let mut c = b.clone();
                c[8 + 2] = 0xff;
                c
            },
            "APRL-F051",
        ),
        (
            "negative dim",
            rewrite(&b, |h| h[&t.name]["shape"] = serde_json::json!([-1])),
            "APRL-F051",
        ),
        (
            "fractional dim",
            rewrite(&b, |h| h[&t.name]["shape"] = serde_json::json!([1.5])),
            "APRL-F051",
        ),
        (
            "three offsets",
            rewrite(&b, |h| {
                h[&t.name]["data_offsets"] = serde_json::json!([0, 2, 4])
            }),
            "APRL-F051",
        ),
        (
            "offsets missing",
            rewrite(&b, |h| {
                h[&t.name].as_object_mut().unwrap().remove("data_offsets");
            }),
            "APRL-F051",
        ),
        (
            "an extra field",
            rewrite(&b, |h| h[&t.name]["extra"] = 1.into()),
            "APRL-F051",
        ),
        (
            "sub-byte dtype",
            rewrite(&b, |h| h[&t.name]["dtype"] = "F4".into()),
            "APRL-F053",
        ),
        (
            "dims overflow u64",
            rewrite(&b, |h| {
                h[&t.name]["shape"] = serde_json::json!([u64::MAX, u64::MAX])
            }),
            "APRL-F054",
        ),
    ];
    for (what, bytes, want) in cases {
        let got = code(bytes);
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn a_truncated_shard_of_the_real_directory_is_refused_with_its_path() {
    for (cut, want) in [(1u64, "APRL-F055"), (1_707_248 - 100, "APRL-F050")] {
        let d = qwen_copy();
        let p = d.path().join(SHARD2);
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() - cut as usize]).unwrap();
        let e = open_dir(d.path()).unwrap_err();
        assert_eq!(e.code(), want, "cut {cut}");
        assert!(e.path.as_ref().unwrap().ends_with(SHARD2), "{:?}", e.path);
        assert!(e.byte_offset().is_some(), "cut {cut}");
    }
}

/// `apr-lint A --against B --format json`: exit code and the report.
fn cli(model: &Path, against: &Path) -> (i32, serde_json::Value) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_apr-lint"))
        .arg(model)
        .arg("--against")
        .arg(against)
        .args(["--format", "json"])
        .output()
        .expect("apr-lint runs");
    let json = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code().unwrap_or(-1), json)
}

/// Through the command line, on either side of a pair, every corpus family is a coded error with
/// a byte offset and exit 2 (the HF directory opens through `ModelView::open`).
#[test]
fn corrupt_checkpoints_exit_2_with_their_code_through_the_cli() {
    let gguf = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gguf/tiny-qwen2-bf16.gguf");
    let b = shard2();
    let order = in_data_order(&b);
    let f = read_bytes(b.clone()).unwrap();
    let t = &f.tensors[1];
    let with_shard2 = |bytes: Vec<u8>| {
        let d = qwen_copy();
        std::fs::write(d.path().join(SHARD2), bytes).unwrap();
        d
    };
    let with_index = |edit: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let d = qwen_copy();
        let p = d.path().join(INDEX_FILE);
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        edit(v["weight_map"].as_object_mut().unwrap());
        std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        d
    };
    let (second, last) = (&order[1], order.last().unwrap());
    let cases: Vec<(&str, tempfile::TempDir, &str)> = vec![
        (
            "truncated",
            with_shard2(b[..b.len() - 1].to_vec()),
            "APRL-F055",
        ),
        (
            "header length past the file",
            {
                let mut c = b.clone();
                c[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
                with_shard2(c)
            },
            "APRL-F050",
        ),
        (
            "overlapping",
            with_shard2(rewrite(&b, |h| {
                set_offsets(h, &second.0, second.1 - 2, second.2 - 2)
            })),
            "APRL-F056",
        ),
        (
            "out of range",
            with_shard2(rewrite(&b, |h| set_offsets(h, &last.0, last.1, last.2 + 2))),
            "APRL-F055",
        ),
        (
            "gap",
            with_shard2(rewrite(&b, |h| {
                h.remove(&second.0);
            })),
            "APRL-F057",
        ),
        (
            "wrong dtype size",
            with_shard2(rewrite(&b, |h| h[&t.name]["dtype"] = "F32".into())),
            "APRL-F054",
        ),
        (
            "duplicate name",
            {
                let n = f.header.len as usize;
                let text = std::str::from_utf8(&b[8..8 + n]).unwrap().trim_end();
                let entry =
                    std::str::from_utf8(&b[t.entry.offset as usize..t.entry.end() as usize])
                        .unwrap();
                let dup = format!("{},{:?}:{}}}", &text[..text.len() - 1], t.name, entry);
                with_shard2(safetensors::with_header(&dup, &b[8 + n..]))
            },
            "APRL-F052",
        ),
        (
            "missing shard",
            {
                let d = qwen_copy();
                std::fs::remove_file(d.path().join(SHARD2)).unwrap();
                d
            },
            "APRL-F058",
        ),
        (
            "index disagrees",
            with_index(&|m| {
                m["lm_head.weight"] = SHARD1.into();
            }),
            "APRL-F059",
        ),
    ];
    for (what, dir, want) in &cases {
        for (model, against) in [(gguf.as_path(), dir.path()), (dir.path(), gguf.as_path())] {
            let (code, j) = cli(model, against);
            assert_eq!(code, 2, "{what}: {j}");
            assert_eq!(j["error"]["code"], *want, "{what}: {j}");
            assert!(j["error"]["byte_offset"].is_u64(), "{what}: {j}");
            assert_eq!(j["summary"]["verdict"], "error", "{what}");
        }
    }
}
