//! The Hugging Face writer against the real thing: given an oracle GGUF, the directory our writer
//! makes equals the one transformers 5.25 made from it (`shared/oracle/hf`, fixtures/hf): SafeTensors
//! files and the shard index byte for byte, `tokenizer.json` value for value, and `config.json`,
//! `generation_config.json`, `tokenizer_config.json` on every key but transformers' bookkeeping.

mod common;

use std::path::{Path, PathBuf};

use apr_lint::format::writer::safetensors::{HfDtype, HfModel, write_gguf_as_hf};
use apr_lint::format::{Source, gguf};
use serde_json::Value as Json;

const ORACLE: &str = "/work/shared/oracle";
const SHARD_SIZE: u64 = 2_000_000; // `max_shard_size="2MB"` (huggingface_hub: 10^6)
const MODELS: [&str; 3] = ["tiny-qwen2", "tiny-llama", "tiny-qwen2-tied"];

fn read_gguf(p: &Path) -> gguf::GgufFile {
    gguf::read(Source::open(p).expect("opens")).expect("reads")
}

fn json(p: &Path) -> Json {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .expect("JSON")
}

/// `theirs` minus the keys that record the writer, not the model.
fn without(mut v: Json, keys: &[&str]) -> Json {
    let o = v.as_object_mut().expect("object");
    for k in keys {
        o.remove(*k);
    }
    v
}

/// Every file of `theirs` (a transformers directory) against the same file of `ours`.
fn assert_same_dir(ours: &Path, theirs: &Path) {
    let mut names: Vec<PathBuf> = std::fs::read_dir(theirs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        let mine = ours.join(&name);
        assert!(mine.is_file(), "{name} not written");
        if name.ends_with(".safetensors") || name.ends_with(".index.json") {
            let (a, b) = (std::fs::read(&mine).unwrap(), std::fs::read(&p).unwrap());
            assert!(
                a == b,
                "{name}: {} vs {} bytes, not identical",
                a.len(),
                b.len()
            );
            continue;
        }
        let skip: &[&str] = match name.as_str() {
            "config.json" | "generation_config.json" => &["transformers_version"],
            "tokenizer_config.json" => &["is_local", "local_files_only", "model_max_length"],
            _ => &[],
        };
        assert_eq!(json(&mine), without(json(&p), skip), "{name}");
    }
}

#[test]
fn oracle_ggufs_written_as_transformers_wrote_them() {
    let root = Path::new(ORACLE);
    if !root.join("hf").is_dir() {
        println!("note: {ORACLE}/hf not present; oracle comparison skipped");
        return;
    }
    for m in MODELS {
        let g = read_gguf(&root.join(format!("models/{m}-f32.gguf")));
        let d = tempfile::tempdir().unwrap();
        let f32_dir = d.path().join("f32");
        write_gguf_as_hf(&g, HfDtype::F32, None, &f32_dir).unwrap();
        assert_same_dir(&f32_dir, &root.join(format!("hf/{m}-f32-hf")));
        let bf16_dir = d.path().join("bf16");
        write_gguf_as_hf(&g, HfDtype::BF16, Some(SHARD_SIZE), &bf16_dir).unwrap();
        assert_same_dir(&bf16_dir, &root.join(format!("hf/{m}-f32-hf-bf16-sharded")));
    }
}

#[test]
fn tensors_come_in_state_dict_order_and_quantized_ggufs_convert() {
    let g = common::gguf_file("gguf/tiny-llama-q8_0.gguf");
    let m = HfModel::from_gguf(&g, HfDtype::F32).unwrap();
    assert!(m.tensor("lm_head.weight").is_some());
    assert_eq!(m.tensors[0].name, "model.embed_tokens.weight");
    assert_eq!(m.tensors.last().unwrap().name, "lm_head.weight");
    assert_eq!(m.tensors[1].name, "model.layers.0.self_attn.q_proj.weight");
    // Q8_0 dequantized and cast: every value finite, the shape transformers gives.
    let q = m.tensor("model.layers.0.self_attn.q_proj.weight").unwrap();
    assert_eq!(q.shape, vec![256, 256]);
    assert!(q.values().unwrap().iter().all(|x| x.is_finite()));
}

/// On a fresh clone: llama.cpp's BF16 GGUF of the tiny qwen2 (the F32 model's values rounded by
/// gguf-py) written as a BF16 sharded directory equals transformers' (fixtures/hf).
#[test]
fn bf16_gguf_written_as_the_sharded_fixture() {
    let g = common::gguf_file("gguf/tiny-qwen2-bf16.gguf");
    let d = tempfile::tempdir().unwrap();
    write_gguf_as_hf(&g, HfDtype::BF16, Some(SHARD_SIZE), d.path()).unwrap();
    assert_same_dir(
        d.path(),
        &common::fixture("hf/tiny-qwen2-f32-hf-bf16-sharded"),
    );
}

/// The project's HF → APR converter on transformers' BF16 directory: linted against llama.cpp's
/// BF16 GGUF of the same model (same BF16 values), the pair passes and every tensor is compared.
#[test]
fn apr_converted_from_the_hf_fixture_passes_against_the_bf16_gguf() {
    use apr_lint::format::hf;
    use apr_lint::format::writer::convert::hf_to_apr;
    use apr_lint::pipeline::Verdict;
    let ck = hf::open(&common::fixture("hf/tiny-qwen2-f32-hf-bf16-sharded")).unwrap();
    let w = hf_to_apr(&ck).unwrap();
    let apr = common::apr_view(&w);
    let g = common::gguf_view("gguf/tiny-qwen2-bf16.gguf");
    let o = common::lint_pair(&apr, &g);
    assert_eq!(o.verdict, Verdict::Pass, "{}", common::describe(&o));
    assert_eq!(o.tensors_compared, 27, "{}", common::describe(&o));
    assert!(o.findings.iter().all(|f| f.class() != "tokenizer-mismatch"));
}

/// Issue 12: "an APR made from the HF directory by the project's converter passes" against it,
/// for the three oracle models, F32 and BF16-sharded, through the command line.
#[test]
fn apr_converted_from_each_oracle_directory_passes_against_it() {
    use apr_lint::format::writer::convert::write_hf_as_apr;
    let root = Path::new(ORACLE).join("hf");
    if !root.is_dir() {
        println!("note: {ORACLE}/hf not present; skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for m in MODELS {
        for suffix in ["-f32-hf", "-f32-hf-bf16-sharded"] {
            let dir = root.join(format!("{m}{suffix}"));
            let apr = tmp.path().join(format!("{m}{suffix}.apr"));
            write_hf_as_apr(&dir, &apr).unwrap();
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_apr-lint"))
                .arg(&apr)
                .arg("--against")
                .arg(&dir)
                .args(["--format", "json"])
                .output()
                .unwrap();
            let j: Json = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(o.status.code(), Some(0), "{m}{suffix}: {j}");
            assert_eq!(j["summary"]["verdict"], "pass", "{m}{suffix}");
            // Every tensor of the checkpoint (the tied model's lm_head is compared with the embedding).
            let n = apr_lint::format::hf::open(&dir).unwrap().tensors.len() as u64;
            let compared = j["summary"]["tensors_compared"].as_u64().unwrap();
            assert!(compared >= n, "{m}{suffix}: {compared} of {n} compared");
            assert_eq!(j["summary"]["errors"], 0);
        }
    }
}
