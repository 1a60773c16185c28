//! Damaged Hugging Face-direction pairs: an APR made from a Hugging Face directory by the project's
//! converter (`hf_to_apr`), with one damage, linted against the directory, is named with the same
//! class as the GGUF-direction damage tests (tests/numeric.rs, tests/check_static.rs). Without
//! damage the pair passes. At the end, the same for a GGUF converted from the checkpoint (llama.cpp's
//! own `convert_hf_to_gguf.py` output, or the llama fixture GGUF whose checkpoint our writer made).
//!
//! References: transformers' BF16 sharded tiny qwen2 (fixtures/hf), and the tiny llama and tied
//! qwen2 fixture GGUFs written as F32 directories by our writer (whose output equals transformers'
//! on the oracle models: tests/hf_writer.rs).

mod common;
use common::*;

use std::path::{Path, PathBuf};

use apr_lint::format::hf;
use apr_lint::format::writer::apr::{AprTensor, AprWriter, apr_code};
use apr_lint::format::writer::convert::hf_to_apr;
use apr_lint::format::writer::safetensors::{HfDtype, write_gguf_as_hf};
use apr_lint::model::ModelView;
use apr_lint::pipeline::{Outcome, Verdict};
use apr_lint::quant::DType;

const QWEN_BF16: &str = "hf/tiny-qwen2-f32-hf-bf16-sharded";

/// A reference directory and the clean APR converted from it.
struct Case {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    apr: AprWriter,
}

impl Case {
    /// transformers' BF16 sharded qwen2 (fixture).
    fn qwen() -> Case {
        Case::of_dir(fixture(QWEN_BF16), None)
    }
    /// A fixture GGUF written as an F32 Hugging Face directory by our writer.
    fn from_gguf(name: &str) -> Case {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("hf");
        write_gguf_as_hf(&gguf_file(name), HfDtype::F32, None, &dir).expect("writes");
        Case::of_dir(dir, Some(tmp))
    }
    fn of_dir(dir: PathBuf, tmp: Option<tempfile::TempDir>) -> Case {
        let ck = hf::open(&dir).expect("checkpoint reads");
        let apr = hf_to_apr(&ck).expect("converts");
        Case {
            dir,
            _tmp: tmp,
            apr,
        }
    }
    fn t(&mut self, name: &str) -> &mut AprTensor {
        self.apr
            .tensors
            .iter_mut()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
    }
    fn set_meta(&mut self, key: &str, v: serde_json::Value) {
        match self.apr.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = v,
            None => self.apr.metadata.push((key.into(), v)),
        }
    }
    fn lint(&self) -> Outcome {
        let a = apr_view(&self.apr);
        let b = ModelView::open(&self.dir).expect("the HF directory opens as a model");
        let o = lint_pair(&a, &b);
        check_findings(&o, &[("model.apr".into(), a.source().len())]);
        o
    }
}

/// The error-severity finding of `class` about `tensor` (or, with `None`, about anything).
fn error_for<'a>(o: &'a Outcome, class: &str, tensor: Option<&str>) -> &'a apr_lint::diag::Finding {
    errors(o)
        .into_iter()
        .find(|f| f.class() == class && (tensor.is_none() || f.tensor.as_deref() == tensor))
        .unwrap_or_else(|| panic!("no {class} error for {tensor:?}:\n{}", describe(o)))
}

/// `bytes` as rows of `row` bytes, output row r taken from input row `from(r)`.
fn permute_rows(bytes: &[u8], row: usize, from: impl Fn(usize) -> usize) -> Vec<u8> {
    let n = bytes.len() / row;
    (0..n)
        .flat_map(|r| bytes[from(r) * row..(from(r) + 1) * row].iter().copied())
        .collect()
}

/// llama.cpp's `permute` (HF → GGUF order) with heads of `d` rows: GGUF row h·d + 2i + j holds HF
/// row h·d + j·d/2 + i (bug-classes.md, "The RoPE permutation, exactly").
fn hf_row_of_gguf_row(r: usize, d: usize) -> usize {
    let (h, w) = (r / d, r % d);
    let (i, j) = (w / 2, w % 2);
    h * d + j * (d / 2) + i
}

/// A row-major `[rows, cols]` matrix of `elem`-byte values, transposed (dims unchanged: square).
fn transpose(bytes: &[u8], rows: usize, cols: usize, elem: usize) -> Vec<u8> {
    let mut out = vec![0u8; bytes.len()];
    for r in 0..rows {
        for c in 0..cols {
            let (s, d) = ((r * cols + c) * elem, (c * rows + r) * elem);
            out[d..d + elem].copy_from_slice(&bytes[s..s + elem]);
        }
    }
    out
}

fn swap_data(c: &mut Case, a: &str, b: &str) {
    let x = c.t(a).bytes.clone();
    let y = std::mem::replace(&mut c.t(b).bytes, x);
    c.t(a).bytes = y;
}

#[test]
fn clean_conversions_pass_against_their_directories() {
    for (what, c) in [
        ("qwen2 bf16 sharded", Case::qwen()),
        ("llama f32", Case::from_gguf("gguf/tiny-llama-q8_0.gguf")),
        (
            "tied qwen2 f32",
            Case::from_gguf("gguf/tiny-qwen2-tied-q8_0.gguf"),
        ),
    ] {
        let o = c.lint();
        assert_eq!(o.verdict, Verdict::Pass, "{what}:\n{}", describe(&o));
        assert!(o.tensors_compared > 0, "{what}");
    }
}

#[test]
fn transposed() {
    let mut c = Case::qwen();
    let name = "model.layers.0.self_attn.o_proj.weight";
    let t = c.t(name);
    assert_eq!(
        (t.dims.as_slice(), t.code),
        (&[256u64, 256][..], apr_code(DType::BF16))
    );
    t.bytes = transpose(&t.bytes, 256, 256, 2);
    error_for(&c.lint(), "transposed", Some(name));
}

#[test]
fn dims_reversed() {
    let mut c = Case::qwen();
    let name = "lm_head.weight";
    c.t(name).dims.reverse();
    error_for(&c.lint(), "dims-reversed", Some(name));
}

#[test]
fn rope_permuted() {
    // A qwen2 Q with llama.cpp's row permutation (n_head = 4, heads of 64 rows) under NEOX.
    let mut c = Case::qwen();
    let name = "model.layers.0.self_attn.q_proj.weight";
    let t = c.t(name);
    let row = t.bytes.len() / t.dims[0] as usize;
    t.bytes = permute_rows(&t.bytes.clone(), row, |r| hf_row_of_gguf_row(r, 64));
    error_for(&c.lint(), "rope-permuted", Some(name));
}

#[test]
fn rope_permuted_wrong_heads() {
    // A llama APR in llama.cpp's row order (NORM, rope_type 0), as its converter writes it, except
    // that K was permuted with n_head = 4 (heads of 32 rows) instead of n_head_kv = 2 (64 rows).
    let mut c = Case::from_gguf("gguf/tiny-llama-q8_0.gguf");
    for l in 0..2 {
        for (proj, d) in [("q_proj", 64), ("k_proj", if l == 1 { 32 } else { 64 })] {
            let t = c.t(&format!("model.layers.{l}.self_attn.{proj}.weight"));
            let row = t.bytes.len() / t.dims[0] as usize;
            t.bytes = permute_rows(&t.bytes.clone(), row, |r| hf_row_of_gguf_row(r, d));
        }
    }
    c.set_meta("rope_type", serde_json::json!(0));
    let o = c.lint();
    error_for(
        &o,
        "rope-permuted-wrong-heads",
        Some("model.layers.1.self_attn.k_proj.weight"),
    );
    // Layer 0, permuted as llama.cpp does, is not accused.
    assert!(
        !errors(&o)
            .iter()
            .any(|f| f.tensor.as_deref().is_some_and(|t| t.contains("layers.0."))),
        "{}",
        describe(&o)
    );
}

#[test]
fn swapped() {
    let mut c = Case::qwen();
    let (g, u) = (
        "model.layers.1.mlp.gate_proj.weight",
        "model.layers.1.mlp.up_proj.weight",
    );
    swap_data(&mut c, g, u);
    let o = c.lint();
    error_for(&o, "swapped-tensors", Some(g));
    error_for(&o, "swapped-tensors", Some(u));
}

#[test]
fn dtype_mislabeled() {
    // The BF16 bytes of the checkpoint labelled F16.
    let mut c = Case::qwen();
    let name = "model.layers.0.self_attn.o_proj.weight";
    c.t(name).code = apr_code(DType::F16);
    error_for(&c.lint(), "dtype-mislabeled", Some(name));
}

#[test]
fn tied_embedding() {
    // A tied checkpoint (no lm_head.weight, tie_word_embeddings) whose APR lm_head is not the
    // embedding: its rows shifted by one.
    let mut c = Case::from_gguf("gguf/tiny-qwen2-tied-q8_0.gguf");
    assert!(hf::open(&c.dir).unwrap().tensor("lm_head.weight").is_none());
    let t = c.t("lm_head.weight");
    let row = t.bytes.len() / t.dims[0] as usize;
    t.bytes = permute_rows(&t.bytes.clone(), row, |r| (r + 1) % 512);
    error_for(&c.lint(), "tied-embedding", Some("lm_head.weight"));
}

#[test]
fn missing() {
    let mut c = Case::qwen();
    let name = "model.layers.1.self_attn.q_proj.bias";
    c.apr.tensors.retain(|t| t.name != name);
    // A converter that drops it does not list it in `tensor_shapes` either.
    let shapes = c
        .apr
        .metadata
        .iter_mut()
        .find(|(k, _)| k == "tensor_shapes")
        .and_then(|(_, v)| v.as_object_mut())
        .expect("tensor_shapes");
    assert!(shapes.shift_remove(name).is_some());
    let o = c.lint();
    assert!(has(&o, "missing-tensor", None), "{}", describe(&o));
    assert_eq!(o.verdict, Verdict::Fail, "{}", describe(&o));
}

#[test]
fn metadata() {
    let mut c = Case::qwen();
    c.set_meta("rope_theta", serde_json::json!(10000.0));
    let o = c.lint();
    let f = error_for(&o, "metadata-mismatch", None);
    assert_eq!(f.tensor, None, "{}", describe(&o));
}

#[test]
fn tokenizer() {
    // Two merges exchanged: same vocabulary, different merge ranks.
    let mut c = Case::qwen();
    let merges = c
        .apr
        .metadata
        .iter_mut()
        .find(|(k, _)| k == "tokenizer.merges")
        .and_then(|(_, v)| v.as_array_mut())
        .expect("merges");
    merges.swap(0, 1);
    let o = c.lint();
    assert!(has(&o, "tokenizer-mismatch", None), "{}", describe(&o));
    assert_eq!(o.verdict, Verdict::Fail, "{}", describe(&o));
}

/// The directory argument may be the directory, its index or (single file) `model.safetensors`.
#[test]
fn the_reference_may_be_named_by_its_index_file() {
    let c = Case::qwen();
    let idx: &Path = &c.dir.join(hf::INDEX_FILE);
    let b = ModelView::open(idx).expect("the index opens as a model");
    let o = lint_pair(&apr_view(&c.apr), &b);
    assert_eq!(o.verdict, Verdict::Pass, "{}", describe(&o));
}

// -------------------------------------------------------------------------------------------------
// The GGUF direction of issue 12 (verifying `convert_hf_to_gguf.py`): a GGUF converted from the
// checkpoint, with one damage, linted against the checkpoint.

use apr_lint::format::writer::gguf::GgufWriter;

/// HF row `x` sits at GGUF row `h·d + 2i + j` (the inverse of [`hf_row_of_gguf_row`]).
fn gguf_row_of_hf_row(x: usize, d: usize) -> usize {
    let (h, w) = (x / d, x % d);
    let (j, i) = (w / (d / 2), w % (d / 2));
    h * d + 2 * i + j
}

fn lint_gguf(w: &GgufWriter, dir: &Path) -> Outcome {
    let a = view_of(w.to_bytes(), "converted.gguf");
    let b = ModelView::open(dir).expect("the HF directory opens as a model");
    let o = lint_pair(&a, &b);
    check_findings(&o, &[("converted.gguf".into(), a.source().len())]);
    o
}

fn gguf_tensor<'w>(
    w: &'w mut GgufWriter,
    name: &str,
) -> &'w mut apr_lint::format::writer::gguf::GgufTensor {
    w.tensors
        .iter_mut()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tensor {name}"))
}

/// llama.cpp's own converted GGUF of transformers' F32 qwen2 directory (fixtures/hf).
fn converted_qwen() -> (GgufWriter, PathBuf) {
    (
        GgufWriter::from_file(&gguf_file("hf/tiny-qwen2-f32-hf-converted-bf16.gguf")),
        fixture("hf/tiny-qwen2-f32"),
    )
}

#[test]
fn gguf_clean_conversion_passes() {
    let (w, dir) = converted_qwen();
    let o = lint_gguf(&w, &dir);
    assert_eq!(o.verdict, Verdict::Pass, "{}", describe(&o));
}

#[test]
fn gguf_k_permuted_with_n_head_instead_of_n_head_kv() {
    // llama.cpp PR #3364: the converter permuted K with n_head = 4 (heads of 32 rows) instead of
    // n_head_kv = 2 (heads of 64). The reference is the llama GGUF written as a checkpoint.
    let c = Case::from_gguf("gguf/tiny-llama-q8_0.gguf");
    let mut w = GgufWriter::from_file(&gguf_file("gguf/tiny-llama-q8_0.gguf"));
    let o = lint_gguf(&w, &c.dir);
    assert_eq!(o.verdict, Verdict::Pass, "clean: {}", describe(&o));
    let name = "blk.1.attn_k.weight";
    let t = gguf_tensor(&mut w, name);
    let row = t.bytes.len() / t.dims[0] as usize;
    let hf = permute_rows(&t.bytes, row, |x| gguf_row_of_hf_row(x, 64));
    t.bytes = permute_rows(&hf, row, |r| hf_row_of_gguf_row(r, 32));
    error_for(
        &lint_gguf(&w, &c.dir),
        "rope-permuted-wrong-heads",
        Some(name),
    );
}

#[test]
fn gguf_transposed() {
    let (mut w, dir) = converted_qwen();
    let name = "blk.0.attn_output.weight";
    let t = gguf_tensor(&mut w, name);
    assert_eq!(t.dtype, DType::BF16);
    t.bytes = transpose(&t.bytes, 256, 256, 2);
    error_for(&lint_gguf(&w, &dir), "transposed", Some(name));
}

#[test]
fn gguf_tokenizer_with_different_merges() {
    use apr_lint::format::writer::gguf::MetaValue;
    let (mut w, dir) = converted_qwen();
    let merges = w
        .metadata
        .iter_mut()
        .find(|(k, _)| k == "tokenizer.ggml.merges")
        .map(|(_, v)| v)
        .expect("merges");
    let MetaValue::ArrayString(m) = merges else {
        panic!("merges are strings")
    };
    m.swap(0, 1);
    let o = lint_gguf(&w, &dir);
    assert!(has(&o, "tokenizer-mismatch", None), "{}", describe(&o));
    assert_eq!(o.verdict, Verdict::Fail, "{}", describe(&o));
}

/// A copy of the F32 qwen2 checkpoint whose `config.json` `rope_parameters` are `params`.
fn qwen_with_rope(params: serde_json::Value) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture("hf/tiny-qwen2-f32")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), d.path().join(e.file_name())).unwrap();
    }
    let p = d.path().join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    c["rope_parameters"] = params;
    std::fs::write(&p, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    d
}

#[test]
fn gguf_that_lost_the_rope_scaling() {
    // The checkpoint scales RoPE (YaRN ×4); the converted GGUF carries no scaling keys.
    let (w, _) = converted_qwen();
    let d = qwen_with_rope(serde_json::json!({
        "rope_theta": 1000000.0, "rope_type": "yarn", "factor": 4.0,
        "original_max_position_embeddings": 128
    }));
    let o = lint_gguf(&w, d.path());
    error_for(&o, "metadata-mismatch", None);
    assert!(
        finds(&o, "APRL-M023", Some("metadata-mismatch"), ""),
        "{}",
        describe(&o)
    );
}

#[test]
fn gguf_that_lost_rope_freqs() {
    // A Llama 3-scaled checkpoint: llama.cpp's converter writes `rope_freqs.weight`; this GGUF has none.
    let c = Case::from_gguf("gguf/tiny-llama-q8_0.gguf");
    let p = c.dir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    cfg["rope_parameters"] = serde_json::json!({
        "rope_theta": 1000000.0, "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 64
    });
    std::fs::write(&p, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    let w = GgufWriter::from_file(&gguf_file("gguf/tiny-llama-q8_0.gguf"));
    let o = lint_gguf(&w, &c.dir);
    assert!(
        o.findings
            .iter()
            .any(|f| f.class() == "missing-tensor" && f.message.contains("rope_freqs")),
        "{}",
        describe(&o)
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", describe(&o));
}
