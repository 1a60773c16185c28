//! Hugging Face checkpoints as files under test and references: the view of a directory, a
//! `model.safetensors` and a sharded index; the tokenizer the probe runs; and the pairs issue 12
//! names (GGUF vs HF, HF vs HF) on transformers' and llama.cpp's own files (fixtures/hf/README.md).
//! The full matrix over the three oracle models runs when `/work/shared/oracle/hf` is present and
//! says it was skipped otherwise.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

use apr_lint::model::{ModelView, NamingScheme, Runtime};

fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_apr-lint"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn hf(name: &str) -> PathBuf {
    fixture("hf").join(name)
}

const ORACLE: &str = "/work/shared/oracle/hf";

fn oracle() -> Option<PathBuf> {
    let p = Path::new(ORACLE);
    if p.is_dir() {
        Some(p.to_path_buf())
    } else {
        println!("note: {ORACLE} is absent; the oracle matrix is skipped");
        None
    }
}

/// The ids a fixture's provenance file gives for its prompt (transformers' tokenizer).
fn provenance_ids(model: &str) -> (String, Vec<u32>) {
    let text = std::fs::read_to_string(hf(model).join("ids.json")).expect("ids.json");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    let ids = doc["hf_tokenizer_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_u64().expect("id") as u32)
        .collect();
    (doc["prompt"].as_str().expect("prompt").to_owned(), ids)
}

/// The main job's JSON report: exit code, tensors compared, error codes.
fn lint_json(model: &Path, against: &Path) -> (i32, u64, Vec<String>) {
    let (code, out, err) = run(&[
        "--format",
        "json",
        model.to_str().unwrap(),
        "--against",
        against.to_str().unwrap(),
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("json ({e}): {out}\nstderr: {err}"));
    let errors = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| f["code"].as_str().unwrap_or("").to_owned())
        .collect();
    (
        code,
        doc["summary"]["tensors_compared"].as_u64().expect("count"),
        errors,
    )
}

#[test]
fn sharded_directory_is_one_view_with_each_tensor_in_its_shard() {
    let v = ModelView::open(&hf("tiny-qwen2-f32-hf-bf16-sharded")).expect("opens");
    assert_eq!(v.format_name(), "hf");
    assert_eq!(v.runtime(), Runtime::Transformers);
    assert_eq!(v.naming_schemes(), &[NamingScheme::Hf]);
    assert_eq!(v.sources().len(), 2);
    // The index (the oracle's own file) says which shard holds which tensor.
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(hf(
            "tiny-qwen2-f32-hf-bf16-sharded/model.safetensors.index.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let map = index["weight_map"].as_object().unwrap();
    assert_eq!(v.tensors.len(), map.len());
    for t in &v.tensors {
        let shard = map[&t.name].as_str().unwrap();
        assert!(
            v.source_of(t).path().ends_with(shard),
            "{} is in {shard}",
            t.name
        );
        assert_eq!(v.dims_field(t).0, "shape");
        assert_eq!(t.dims, t.file_dims, "SafeTensors shapes are canonical");
    }
    // Values of a tensor in the second shard: the BF16 rounding of the F32 checkpoint's.
    let f32v = ModelView::open(&hf("tiny-qwen2-f32")).expect("opens");
    let name = map
        .iter()
        .find(|(_, s)| s.as_str() == Some("model-00002-of-00002.safetensors"))
        .map(|(n, _)| n.clone())
        .expect("a tensor in shard 2");
    let (tb, tf) = (v.tensor(&name).unwrap(), f32v.tensor(&name).unwrap());
    assert_eq!(tb.file, 1);
    let (xb, xf) = (v.dequantize(tb).unwrap(), f32v.dequantize(tf).unwrap());
    for (b, f) in xb.iter().zip(&xf) {
        assert!((b - f).abs() <= f.abs() / 128.0, "{b} vs {f}");
    }
}

#[test]
fn config_json_is_the_views_config() {
    for dir in ["tiny-qwen2-f32", "tiny-qwen2-f32-hf-bf16-sharded"] {
        let v = ModelView::open(&hf(dir)).expect("opens");
        let c = &v.config;
        // fixtures/hf/README.md: qwen2, hidden 256, 2 layers, 4/2 heads, ffn 768, vocab 512.
        assert_eq!(c.arch(), Some("qwen2"));
        let val = |x: &Option<apr_lint::model::ConfigValue<u64>>| x.as_ref().map(|v| v.value);
        assert_eq!(val(&c.hidden), Some(256));
        assert_eq!(val(&c.layers), Some(2));
        assert_eq!(val(&c.heads), Some(4));
        assert_eq!(val(&c.kv_heads), Some(2));
        assert_eq!(val(&c.ffn), Some(768));
        assert_eq!(val(&c.vocab), Some(512));
        assert_eq!(v.tokenizer.n_tokens, Some(512));
        assert!(v.findings.is_empty(), "{:?}", v.findings);
    }
}

#[test]
fn the_probe_tokenizes_with_tokenizer_json() {
    let (prompt, ids) = provenance_ids("tiny-qwen2-f32");
    for dir in ["tiny-qwen2-f32", "tiny-qwen2-f32-hf-bf16-sharded"] {
        let v = ModelView::open(&hf(dir)).expect("opens");
        assert_eq!(v.tokenize(&prompt).expect("tokenizes"), ids, "{dir}");
    }
}

#[test]
fn a_checkpoint_opens_from_its_directory_weights_file_or_index() {
    let dir = ModelView::open(&hf("tiny-qwen2-f32")).expect("dir");
    let file = ModelView::open(&hf("tiny-qwen2-f32/model.safetensors")).expect("file");
    assert_eq!(dir.tensors, file.tensors);
    assert_eq!(dir.config, file.config);
    let sharded = hf("tiny-qwen2-f32-hf-bf16-sharded");
    let by_dir = ModelView::open(&sharded).expect("dir");
    let by_index = ModelView::open(&sharded.join("model.safetensors.index.json")).expect("index");
    assert_eq!(by_dir.tensors, by_index.tensors);
    assert_eq!(by_dir.tokenizer, by_index.tokenizer);
}

#[test]
fn gguf_converted_by_llama_cpp_passes_against_its_checkpoint() {
    let dirs = [hf("tiny-qwen2-f32"), hf("tiny-qwen2-f32-hf-bf16-sharded")];
    for t in ["q8_0", "bf16"] {
        let gguf = hf(&format!("tiny-qwen2-f32-hf-converted-{t}.gguf"));
        for dir in &dirs {
            let (code, compared, errors) = lint_json(&gguf, dir);
            assert_eq!(
                (code, &errors[..]),
                (0, &[][..]),
                "{t} vs {}",
                dir.display()
            );
            assert!(compared >= 20, "{t}: {compared} tensors compared");
        }
    }
}

#[test]
fn checkpoint_against_checkpoint() {
    let (a, b) = (hf("tiny-qwen2-f32-hf-bf16-sharded"), hf("tiny-qwen2-f32"));
    let (code, compared, errors) = lint_json(&a, &b);
    assert_eq!((code, &errors[..]), (0, &[][..]));
    assert!(compared >= 20);
}

/// APRs written by the project's converter (both flavours) from llama.cpp's converted GGUFs, against
/// the checkpoint: `A.apr --against DIR` and `DIR --against A.apr` (the APR is under test either way).
fn apr_against_checkpoint(gguf: &Path, dirs: &[PathBuf]) {
    use apr_lint::format::writer::apr::Flavour;
    use apr_lint::format::writer::convert::gguf_to_apr;
    let g = apr_lint::format::gguf::read(apr_lint::format::Source::open(gguf).unwrap()).unwrap();
    for flavour in [Flavour::Aprender, Flavour::Realizar] {
        let apr = apr_view(&gguf_to_apr(&g, flavour));
        for dir in dirs {
            let hv = ModelView::open(dir).expect("opens");
            let o = lint_pair(&apr, &hv);
            let what = format!("{} ({flavour:?}) vs {}", gguf.display(), dir.display());
            assert!(errors(&o).is_empty(), "{what}: {}", describe(&o));
            assert!(o.tensors_compared >= 20, "{what}: {}", o.tensors_compared);
            let (a, b) = apr_lint::pipeline::order_pair(hv, apr_view(&gguf_to_apr(&g, flavour)));
            assert_eq!((a.format_name(), b.format_name()), ("apr", "hf"));
        }
    }
}

#[test]
fn apr_passes_against_its_checkpoint() {
    let dirs = [hf("tiny-qwen2-f32"), hf("tiny-qwen2-f32-hf-bf16-sharded")];
    for t in ["q8_0", "bf16"] {
        apr_against_checkpoint(&hf(&format!("tiny-qwen2-f32-hf-converted-{t}.gguf")), &dirs);
    }
}

/// Every converted GGUF, the original oracle GGUF, both directories, and HF vs HF, for all three
/// oracle models.
#[test]
fn oracle_matrix() {
    let Some(o) = oracle() else { return };
    let models = Path::new(ORACLE).parent().unwrap().join("models");
    for m in ["tiny-qwen2-f32", "tiny-llama-f32", "tiny-qwen2-tied-f32"] {
        let dirs = [
            o.join(format!("{m}-hf")),
            o.join(format!("{m}-hf-bf16-sharded")),
        ];
        let mut under_test: Vec<PathBuf> = ["f32", "bf16", "q8_0"]
            .iter()
            .map(|t| o.join(format!("{m}-hf-converted-{t}.gguf")))
            .collect();
        let original = models.join(format!("{m}.gguf"));
        if original.is_file() {
            under_test.push(original);
        }
        for gguf in &under_test {
            for dir in &dirs {
                let (code, compared, errors) = lint_json(gguf, dir);
                assert_eq!(
                    (code, &errors[..]),
                    (0, &[][..]),
                    "{} vs {}",
                    gguf.display(),
                    dir.display()
                );
                assert!(compared >= 20, "{}: {compared}", gguf.display());
            }
        }
        let (code, _, errors) = lint_json(&dirs[1], &dirs[0]);
        assert_eq!((code, &errors[..]), (0, &[][..]), "{m} HF vs HF");
        for t in ["f32", "q8_0"] {
            apr_against_checkpoint(&o.join(format!("{m}-hf-converted-{t}.gguf")), &dirs);
        }
        // `rosetta` with a directory on either side (the BF16-sharded one against the F32 GGUF).
        let g = o.join(format!("{m}-hf-converted-f32.gguf"));
        for (a, b) in [(&g, &dirs[1]), (&dirs[0], &g)] {
            let (code, out, err) = run(&[
                "rosetta",
                "--assert-match",
                a.to_str().unwrap(),
                b.to_str().unwrap(),
            ]);
            assert_eq!(code, 0, "{m}: {out}\n{err}");
            assert!(out.contains("[ROSETTA] PASSED"), "{m}: {out}");
        }
        // transformers' tokenizer ids for the prompt (PROVENANCE.json).
        let prov: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(o.join("PROVENANCE.json")).unwrap())
                .unwrap();
        let ids: Vec<u32> = prov["models"][m]["hf_tokenizer_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        for dir in &dirs {
            let v = ModelView::open(dir).expect("opens");
            assert_eq!(v.tokenize("Hello my name is Tiny").unwrap(), ids, "{m}");
        }
    }
}

fn npy_f32(path: &Path) -> Vec<f32> {
    apr_lint::format::npy::read_f32(&std::fs::read(path).expect("npy"))
        .expect("f32 npy")
        .1
}

/// `<i4` token ids.
fn npy_tokens(path: &Path) -> Vec<u32> {
    let b = std::fs::read(path).expect("npy");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    b[10 + hlen..]
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u32)
        .collect()
}

/// The trace of an F32 checkpoint against transformers' own forward pass of it: `hidden_states-0`
/// is the embedding output, `-i` layer i−1's output, and the last one is after the final norm.
fn trace_matches_transformers(dir: &Path, act: &Path) {
    use apr_lint::numeric::forward::{Model, run_all};
    use apr_lint::rules::{Resolved, RuleSet};
    let rules = RuleSet::builtin();
    let v = ModelView::open(dir).expect("opens");
    let r = Resolved::new(&v, &rules);
    let m = Model::new(&v, &r).expect("model");
    let acts = run_all(&m, &npy_tokens(&act.join("tokens.npy"))).expect("runs");
    let get = |stage: &str, layer: Option<u32>| {
        acts.iter()
            .find(|a| a.stage == stage && a.layer == layer)
            .unwrap_or_else(|| panic!("stage {stage} {layer:?}"))
            .values
            .clone()
    };
    let layers = v.config.layers.as_ref().expect("layers").value as u32;
    let mut checks = vec![("hidden_states-0".to_owned(), get("embedding", None))];
    for i in 1..layers {
        checks.push((format!("hidden_states-{i}"), get("layer_out", Some(i - 1))));
    }
    checks.push((format!("hidden_states-{layers}"), get("output_norm", None)));
    checks.push(("logits".to_owned(), get("logits", None)));
    for (name, mine) in checks {
        let theirs = npy_f32(&act.join(format!("{name}.npy")));
        let rel = rel_max(&mine, &theirs);
        eprintln!("{} {name}: rel {rel:.2e}", dir.display());
        assert!(rel <= 1e-5, "{} {name}: rel {rel:.2e}", dir.display());
    }
}

#[test]
fn trace_of_the_f32_checkpoint_matches_transformers() {
    trace_matches_transformers(&hf("tiny-qwen2-f32"), &hf("tiny-qwen2-f32-hf-act"));
}

#[test]
fn trace_matches_transformers_for_every_oracle_model() {
    let Some(o) = oracle() else { return };
    for m in ["tiny-qwen2-f32", "tiny-llama-f32", "tiny-qwen2-tied-f32"] {
        trace_matches_transformers(&o.join(format!("{m}-hf")), &o.join(format!("{m}-hf-act")));
    }
}

#[test]
fn rosetta_runs_with_a_checkpoint_on_either_side() {
    let (g, d) = (
        hf("tiny-qwen2-f32-hf-converted-q8_0.gguf"),
        hf("tiny-qwen2-f32-hf-bf16-sharded"),
    );
    for (a, b) in [(&g, &d), (&d, &g)] {
        let (code, out, err) = run(&[
            "rosetta",
            "--assert-match",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(out.contains("[ROSETTA] PASSED"), "{out}");
    }
}

/// A copy of the F32 qwen2 checkpoint in `dir`, without `lm_head.weight` when `drop_head`, and
/// `tie_word_embeddings` set to `tie`.
fn write_variant(dir: &Path, drop_head: bool, tie: bool) {
    let src = hf("tiny-qwen2-f32");
    let v = ModelView::open(&src).expect("opens");
    let kept: Vec<_> = v
        .tensors
        .iter()
        .filter(|t| !(drop_head && t.name == "lm_head.weight"))
        .collect();
    let entries: Vec<(&str, &str, &[u64], &[u8])> = kept
        .iter()
        .map(|t| (t.name.as_str(), t.dtype.name(), &t.dims[..], v.bytes(t)))
        .collect();
    std::fs::write(
        dir.join("model.safetensors"),
        apr_lint::format::safetensors::write(&entries, &[("format", "pt")]),
    )
    .unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    config["tie_word_embeddings"] = serde_json::Value::Bool(tie);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
}

#[test]
fn tie_word_embeddings_with_and_without_lm_head() {
    // (lm_head stored, tie_word_embeddings, APRL-M010 expected)
    for (head, tie, expect) in [
        (true, false, false),
        (false, true, false),
        // transformers would guess: no head and no tie.
        (false, false, true),
        // transformers ties over the stored head: its bytes are never read.
        (true, true, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_variant(dir.path(), !head, tie);
        let v = ModelView::open(dir.path()).expect("opens");
        assert_eq!(v.tensor("lm_head.weight").is_some(), head);
        let o = lint_one(&v);
        let m010 = o.findings.iter().any(|f| f.code == "APRL-M010");
        assert_eq!(m010, expect, "head {head}, tie {tie}: {}", describe(&o));
    }
}

#[test]
fn inspect_and_dump_read_a_checkpoint() {
    let sharded = hf("tiny-qwen2-f32-hf-bf16-sharded");
    let (code, out, err) = run(&["inspect", "--format", "json", sharded.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["format"], "hf");
    assert_eq!(doc["architecture"], "qwen2");
    assert_eq!(doc["hf"]["files"].as_array().unwrap().len(), 2);
    let emb = doc["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "model.embed_tokens.weight")
        .expect("embedding");
    assert_eq!(emb["role"], "token_embd");
    assert_eq!(emb["dims"], serde_json::json!([512, 256]));
    assert!(emb["file"].as_str().unwrap().ends_with(".safetensors"));
    // `dump` of a tensor in the second shard: the BF16 rounding of the F32 checkpoint's values.
    let dir = tempfile::tempdir().unwrap();
    let dump = |src: &Path, out: &str| {
        let o = dir.path().join(out);
        let (code, _, err) = run(&[
            "dump",
            src.to_str().unwrap(),
            "model.norm.weight",
            "-o",
            o.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        npy_f32(&o)
    };
    let (b, f) = (
        dump(&sharded, "b.npy"),
        dump(&hf("tiny-qwen2-f32"), "f.npy"),
    );
    assert_eq!(b.len(), 256);
    for (x, y) in b.iter().zip(&f) {
        assert!((x - y).abs() <= y.abs() / 128.0, "{x} vs {y}");
    }
}

/// The codes of a refused checkpoint: exit 2 with the reader's code, never a panic.
#[test]
fn unreadable_sidecars_and_empty_directories_are_refused_with_a_code() {
    let codes = |dir: &Path| {
        let (code, out, err) = run(&["--format", "json", dir.to_str().unwrap()]);
        let doc: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
        let found: Vec<String> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_owned())
            .collect();
        (code, found)
    };
    let empty = tempfile::tempdir().unwrap();
    // Alone, a directory is searched for models (batch mode): none found is inconclusive.
    let (code, out, err) = run(&["--format", "json", empty.path().to_str().unwrap()]);
    let doc: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    assert_eq!(
        (code, doc["summary"]["verdict"].as_str()),
        (3, Some("inconclusive"))
    );
    // As the reference it must be a checkpoint: one without weights is refused with F058.
    let gguf = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/gguf/tiny-qwen2-lq-q4_k_m.gguf"
    );
    let (code, out, err) = run(&[
        "--format",
        "json",
        gguf,
        "--against",
        empty.path().to_str().unwrap(),
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let found: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!((code, found), (2, vec!["APRL-F058"]));
    for (file, text, code) in [
        ("config.json", "[1, 2]", "APRL-F060"),
        ("tokenizer.json", "{\"model\": 3}", "APRL-F061"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_variant(dir.path(), false, false);
        std::fs::write(dir.path().join(file), text).unwrap();
        assert_eq!(codes(dir.path()), (2, vec![code.to_owned()]), "{file}");
    }
}

/// A finding whose span is in a checkpoint's weights names the SafeTensors file holding it (the
/// offset is in that file), not the directory.
#[test]
fn a_span_in_a_checkpoint_names_its_safetensors_file() {
    let src = hf("tiny-qwen2-f32");
    let v = ModelView::open(&src).expect("opens");
    let gate = "model.layers.0.mlp.gate_proj.weight";
    let owned: Vec<(String, Vec<u64>, Vec<u8>)> = v
        .tensors
        .iter()
        .map(|t| {
            let mut dims = t.dims.clone();
            if t.name == gate {
                dims.reverse();
            }
            (t.name.clone(), dims, v.bytes(t).to_vec())
        })
        .collect();
    let entries: Vec<(&str, &str, &[u64], &[u8])> = owned
        .iter()
        .map(|(n, d, b)| (n.as_str(), "F32", &d[..], &b[..]))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("model.safetensors");
    std::fs::write(
        &weights,
        apr_lint::format::safetensors::write(&entries, &[]),
    )
    .unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let (code, out, err) = run(&["--format", "json", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let f = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "APRL-L001" && f["tensor"] == gate)
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(f["file"], weights.display().to_string(), "{f}");
    let (offset, len) = (
        f["byte_offset"].as_u64().unwrap(),
        f["byte_length"].as_u64().unwrap(),
    );
    let bytes = std::fs::read(&weights).unwrap();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap());
    assert!(
        offset + len <= header_end,
        "the span is the tensor's header entry"
    );
    let entry = std::str::from_utf8(&bytes[offset as usize..(offset + len) as usize]).unwrap();
    assert!(entry.contains("[256,768]"), "{entry}");
}
