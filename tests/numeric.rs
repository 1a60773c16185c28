//! The numeric weight comparison on clean and mutated pairs built with our writers: clean pairs in
//! every dtype pass (quantization noise as info), each layout bug gets its exact class and tensor,
//! and the result does not depend on argument order or on the run.

mod common;
use common::*;

use std::path::PathBuf;

use apr_lint::diag::{Finding, Severity};
use apr_lint::format::writer::apr::{AprTensor, AprWriter, Flavour, apr_code};
use apr_lint::format::writer::convert::gguf_to_apr;
use apr_lint::format::writer::generate::{Shape, TINY, gguf_model};
use apr_lint::format::writer::gguf::GgufWriter;
use apr_lint::format::{Source, gguf};
use apr_lint::model::ModelView;
use apr_lint::numeric::forward::permute::row::{gguf_to_hf, hf_to_gguf};
use apr_lint::pipeline::{self, Options, Outcome, Verdict};
use apr_lint::quant::DType;
use apr_lint::rules::Resolved;
use tempfile::TempDir;

const QWEN_Q4K: &str = "gguf/tiny-qwen2-lq-q4_k_m.gguf";
const LLAMA_Q8: &str = "gguf/tiny-llama-q8_0.gguf";
const TIED_Q8: &str = "gguf/tiny-qwen2-tied-q8_0.gguf";

/// A reference GGUF on disk and the APR a correct converter makes of it (to be damaged).
struct Case {
    dir: TempDir,
    gguf: PathBuf,
    apr: AprWriter,
}

impl Case {
    fn from_writer(w: &GgufWriter) -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        let gguf = dir.path().join("model.gguf");
        w.write(&gguf).expect("write gguf");
        Case::at(dir, gguf)
    }

    fn from_fixture(name: &str) -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        Case::at(dir, fixture(name))
    }

    fn generated(shape: &Shape, dt: DType) -> Case {
        Case::from_writer(&gguf_model(shape, dt, 7))
    }

    fn at(dir: TempDir, gguf: PathBuf) -> Case {
        let g = gguf::read(Source::open(&gguf).expect("open")).expect("read gguf");
        let apr = gguf_to_apr(&g, Flavour::Aprender);
        Case { dir, gguf, apr }
    }

    fn t(&mut self, name: &str) -> &mut AprTensor {
        self.apr
            .tensors
            .iter_mut()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
    }

    fn views(&self) -> (ModelView, ModelView) {
        let apr = self.dir.path().join("model.apr");
        self.apr.write(&apr).expect("write apr");
        (
            ModelView::open(&apr).expect("apr reads"),
            ModelView::open(&self.gguf).expect("gguf reads"),
        )
    }

    fn lint(&self) -> Outcome {
        let (a, b) = self.views();
        let o = pipeline::lint(&a, Some(&b), &Options::default());
        check_findings(
            &o,
            &[
                (a.path().display().to_string(), a.source().len()),
                (b.path().display().to_string(), b.source().len()),
            ],
        );
        o
    }
}

fn numeric(o: &Outcome) -> Vec<&Finding> {
    o.findings
        .iter()
        .filter(|f| f.code.starts_with("APRL-N0") && f.code < "APRL-N020")
        .collect()
}

/// The numeric finding of `class` naming `tensor`, at error severity.
fn error_for<'o>(o: &'o Outcome, class: &str, tensor: &str) -> &'o Finding {
    if std::env::var_os("NUMERIC_DUMP").is_some() {
        eprintln!("---- {class} {tensor}\n{}", describe(o));
    }
    numeric(o)
        .into_iter()
        .find(|f| {
            f.class() == class
                && f.tensor.as_deref() == Some(tensor)
                && f.severity == Severity::Error
        })
        .unwrap_or_else(|| panic!("no {class} error for {tensor}:\n{}", describe(o)))
}

fn assert_clean(o: &Outcome) {
    assert_eq!(o.verdict, Verdict::Pass, "{}", describe(o));
    assert!(o.tensors_compared > 0);
    assert!(
        numeric(o).iter().all(|f| f.severity == Severity::Info),
        "{}",
        describe(o)
    );
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Rows of `row_bytes` bytes reordered: new row r = old row `src(r)`.
fn permute_rows(bytes: &[u8], row_bytes: usize, src: impl Fn(u64) -> u64) -> Vec<u8> {
    let n = bytes.len() / row_bytes;
    (0..n)
        .flat_map(|r| {
            let s = src(r as u64) as usize;
            bytes[s * row_bytes..(s + 1) * row_bytes].to_vec()
        })
        .collect()
}

fn transpose_f32(bytes: &[u8], rows: usize, cols: usize) -> Vec<u8> {
    let v = f32s(bytes);
    let mut t = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = v[r * cols + c];
        }
    }
    to_bytes(&t)
}

fn swap_data(c: &mut Case, x: &str, y: &str) {
    let bx = c.t(x).bytes.clone();
    let by = std::mem::replace(&mut c.t(y).bytes, bx);
    c.t(x).bytes = by;
}

fn set_meta(w: &mut AprWriter, key: &str, v: serde_json::Value) {
    match w.metadata.iter_mut().find(|(k, _)| k == key) {
        Some(kv) => kv.1 = v,
        None => w.metadata.push((key.into(), v)),
    }
}

// ---------------------------------------------------------------- a simple Q4_K quantizer

fn f16_bytes(x: f32) -> ([u8; 2], f32) {
    let h = half::f16::from_f32(x);
    (h.to_le_bytes(), h.to_f32())
}

/// Quantize 256 values to one Q4_K block (the layout of `src/quant/q4_k.rs`; a plain min/max
/// quantizer, not llama.cpp's search, so its noise is a little larger).
fn q4_k_block(x: &[f32]) -> [u8; 144] {
    let mut b = [0u8; 144];
    let (mut scale, mut min) = ([0f32; 8], [0f32; 8]);
    for j in 0..8 {
        let s = &x[32 * j..32 * j + 32];
        let lo = s.iter().copied().fold(0f32, f32::min);
        let hi = s.iter().copied().fold(f32::MIN, f32::max);
        scale[j] = (hi - lo) / 15.0;
        min[j] = -lo;
    }
    let (dbytes, d) = f16_bytes(scale.iter().copied().fold(0f32, f32::max) / 63.0);
    let (mbytes, dmin) = f16_bytes(min.iter().copied().fold(0f32, f32::max) / 63.0);
    b[0..2].copy_from_slice(&dbytes);
    b[2..4].copy_from_slice(&mbytes);
    let q6 = |v: f32, s: f32| {
        if s > 0.0 {
            (v / s).round().clamp(0.0, 63.0) as u8
        } else {
            0
        }
    };
    let sc: Vec<u8> = scale.iter().map(|&s| q6(s, d)).collect();
    let m: Vec<u8> = min.iter().map(|&v| q6(v, dmin)).collect();
    let q = &mut b[4..16];
    for j in 0..4 {
        q[j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6);
        q[j + 4] = (m[j] & 63) | ((m[j + 4] >> 4) << 6);
        q[j + 8] = (sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4);
    }
    let mut qv = [0u8; 256];
    for j in 0..8 {
        let (step, off) = (d * sc[j] as f32, dmin * m[j] as f32);
        for l in 0..32 {
            let v = x[32 * j + l];
            qv[32 * j + l] = if step > 0.0 {
                ((v + off) / step).round().clamp(0.0, 15.0) as u8
            } else {
                0
            };
        }
    }
    for j in 0..4 {
        for l in 0..32 {
            b[16 + 32 * j + l] = qv[64 * j + l] | (qv[64 * j + 32 + l] << 4);
        }
    }
    b
}

fn quantize_q4_k(values: &[f32]) -> Vec<u8> {
    values.chunks_exact(256).flat_map(q4_k_block).collect()
}

// ---------------------------------------------------------------- clean pairs

#[test]
fn clean_f32_pair_passes() {
    let o = Case::generated(&TINY, DType::F32).lint();
    assert_clean(&o);
}

#[test]
fn clean_f16_pair_passes() {
    assert_clean(&Case::generated(&TINY, DType::F16).lint());
}

#[test]
fn clean_q8_0_llama_pair_passes() {
    assert_clean(&Case::from_fixture(LLAMA_Q8).lint());
}

#[test]
fn clean_q4_k_m_pair_passes() {
    assert_clean(&Case::from_fixture(QWEN_Q4K).lint());
}

#[test]
fn clean_tied_pair_passes_and_compares_lm_head_with_the_embedding() {
    let c = Case::from_fixture(TIED_Q8);
    assert!(c.apr.tensors.iter().any(|t| t.name == "lm_head.weight"));
    let o = c.lint();
    assert_clean(&o);
    // The same file with a wrong lm_head: compared with the embedding, so it fails.
    let mut c = Case::from_fixture(TIED_Q8);
    let t = c.t("lm_head.weight");
    let row = t.bytes.len() / t.dims[0] as usize;
    t.bytes = permute_rows(&t.bytes.clone(), row, |r| (r + 1) % 512);
    let o = c.lint();
    assert_eq!(
        error_for(&o, "tied-embedding", "lm_head.weight").code,
        "APRL-N016"
    );
}

#[test]
fn apr_f32_against_gguf_q4_k_of_the_same_weights_passes_with_noise_info() {
    let f32_model = gguf_model(&TINY, DType::F32, 11);
    let mut q = f32_model.clone();
    for t in &mut q.tensors {
        if t.dims.len() == 2 && t.dims[1] % 256 == 0 {
            t.bytes = quantize_q4_k(&f32s(&t.bytes));
            t.dtype = DType::Q4_K;
        }
    }
    // The APR is the correct conversion of the F32 file; the reference is the Q4_K file.
    let c32 = Case::from_writer(&f32_model);
    let cq = Case::from_writer(&q);
    let apr_path = cq.dir.path().join("f32.apr");
    c32.apr.write(&apr_path).expect("write");
    let a = ModelView::open(&apr_path).expect("apr");
    let b = ModelView::open(&cq.gguf).expect("gguf");
    let o = pipeline::lint(&a, Some(&b), &Options::default());
    assert_clean(&o);
    let noise = o
        .findings
        .iter()
        .find(|f| f.code == "APRL-N011")
        .unwrap_or_else(|| panic!("no noise summary:\n{}", describe(&o)));
    let ev = noise.evidence.as_ref().expect("evidence");
    let nmse = ev["worst_nmse"].as_f64().expect("nmse");
    assert!(nmse > 1e-4 && nmse < 1e-2, "{nmse}");
    assert!(ev["min_cosine"].as_f64().expect("cos") > 0.995);
}

// ---------------------------------------------------------------- layout bugs

#[test]
fn square_q_proj_transposed() {
    let mut c = Case::generated(&TINY, DType::F32);
    let name = "model.layers.0.self_attn.q_proj.weight";
    let t = c.t(name);
    assert_eq!(t.dims, [256, 256]);
    t.bytes = transpose_f32(&t.bytes, 256, 256);
    let o = c.lint();
    let f = error_for(&o, "transposed", name);
    assert_eq!(f.code, "APRL-N002");
    assert_eq!(f.layer, Some(0));
    let ev = f.evidence.as_ref().expect("evidence");
    assert_eq!(ev["transform"], "transpose");
    assert!(ev["cosine_after_fix"].as_f64().expect("after") > 0.99999);
    assert!(ev["cosine_as_stored"].as_f64().expect("stored").abs() < 0.2);
    assert_eq!(
        errors(&o).len(),
        errors(&o)
            .iter()
            .filter(|f| f.tensor.as_deref() == Some(name) || f.code >= "APRL-N020")
            .count(),
        "{}",
        describe(&o)
    );
}

#[test]
fn transposed_and_dims_swapped_is_column_major() {
    let mut c = Case::generated(&TINY, DType::F32);
    let name = "model.layers.1.mlp.gate_proj.weight";
    let t = c.t(name);
    assert_eq!(t.dims, [768, 256]);
    t.bytes = transpose_f32(&t.bytes, 768, 256);
    t.dims = vec![256, 768];
    let o = c.lint();
    let f = error_for(&o, "column-major", name);
    assert_eq!(f.code, "APRL-N003");
    assert!(f.help.contains("transpose"), "{}", f.help);
}

#[test]
fn dims_reversed_on_every_2d_tensor() {
    let mut c = Case::generated(&TINY, DType::F32);
    let mut names = Vec::new();
    for t in &mut c.apr.tensors {
        // A square tensor's reversed dims are its dims.
        if t.dims.len() == 2 && t.dims[0] != t.dims[1] {
            t.dims.reverse();
            names.push(t.name.clone());
        }
    }
    let o = c.lint();
    assert_eq!(o.verdict, Verdict::Fail);
    for n in &names {
        let f = numeric(&o)
            .into_iter()
            .find(|f| f.tensor.as_deref() == Some(n.as_str()) && f.class() == "dims-reversed")
            .unwrap_or_else(|| panic!("no numeric dims-reversed for {n}:\n{}", describe(&o)));
        assert_eq!(f.code, "APRL-N004");
        assert_eq!(f.evidence.as_ref().expect("evidence")["exact_bytes"], true);
        assert!(f.help.contains("keep the bytes"));
        // Nothing else numeric about that tensor (no transposed/column-major guess).
        assert!(
            numeric(&o)
                .iter()
                .filter(|g| g.tensor.as_deref() == Some(n.as_str()))
                .count()
                == 1
        );
    }
}

#[test]
fn qwen2_q_rows_rope_permuted() {
    let mut c = Case::from_fixture(QWEN_Q4K);
    let name = "model.layers.0.self_attn.q_proj.weight";
    let t = c.t(name);
    let row = t.bytes.len() / t.dims[0] as usize;
    // llama.cpp's permute with n_head = 4 (head_dim 64): new row r = HF row gguf_to_hf(r).
    t.bytes = permute_rows(&t.bytes.clone(), row, |r| gguf_to_hf(r, 64));
    let o = c.lint();
    let f = error_for(&o, "rope-permuted", name);
    assert_eq!(f.code, "APRL-N005");
    assert!(f.help.contains("n_head=4"), "{}", f.help);
    assert_eq!(f.evidence.as_ref().expect("ev")["exact_bytes"], true);
}

#[test]
fn llama_k_permuted_with_n_head_instead_of_n_head_kv() {
    let mut c = Case::from_fixture(LLAMA_Q8);
    let name = "blk.1.attn_k.weight";
    let t = c.t(name);
    assert_eq!(t.dims, [128, 256]);
    let row = t.bytes.len() / 128;
    // GGUF K = permute(HF, n_head_kv = 2): back to HF, then permute with n_head = 4 (heads of 32).
    let hf = permute_rows(&t.bytes.clone(), row, |x| hf_to_gguf(x, 64));
    t.bytes = permute_rows(&hf, row, |r| gguf_to_hf(r, 32));
    let o = c.lint();
    let f = error_for(&o, "rope-permuted-wrong-heads", name);
    assert_eq!(f.code, "APRL-N006");
    assert!(
        f.help.contains("n_head_kv=2") && f.help.contains("n_head=4"),
        "{}",
        f.help
    );
}

#[test]
fn llama_hf_row_order_is_legitimate_with_neox_only() {
    let unpermute = |c: &mut Case| {
        for l in 0..2 {
            for (role, d) in [("attn_q", 64), ("attn_k", 64)] {
                let t = c.t(&format!("blk.{l}.{role}.weight"));
                let row = t.bytes.len() / t.dims[0] as usize;
                t.bytes = permute_rows(&t.bytes.clone(), row, |x| hf_to_gguf(x, d));
            }
        }
    };
    let mut c = Case::from_fixture(LLAMA_Q8);
    unpermute(&mut c);
    set_meta(&mut c.apr, "rope_type", serde_json::json!(2));
    let o = c.lint();
    assert!(
        numeric(&o).iter().all(|f| f.severity == Severity::Info),
        "{}",
        describe(&o)
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", describe(&o));
    let info = o
        .findings
        .iter()
        .find(|f| f.code == "APRL-N014")
        .expect("rope info");
    assert_eq!(
        info.evidence.as_ref().expect("ev")["tensors"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );

    // The same rows with rope_type 0 (NORM): wrong.
    let mut c = Case::from_fixture(LLAMA_Q8);
    unpermute(&mut c);
    let o = c.lint();
    let f = error_for(&o, "rope-permuted", "blk.0.attn_q.weight");
    assert!(f.help.contains("rope_type"), "{}", f.help);
    error_for(&o, "rope-permuted", "blk.1.attn_k.weight");

    // GGUF (NORM) rows kept but NEOX declared: wrong too.
    let mut c = Case::from_fixture(LLAMA_Q8);
    set_meta(&mut c.apr, "rope_type", serde_json::json!(2));
    let o = c.lint();
    error_for(&o, "rope-permuted", "blk.0.attn_k.weight");
}

#[test]
fn q_and_k_swapped_when_n_head_equals_n_head_kv() {
    let mha = Shape {
        kv_heads: 4,
        ..TINY
    };
    let mut c = Case::generated(&mha, DType::F32);
    let (q, k) = (
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.k_proj.weight",
    );
    swap_data(&mut c, q, k);
    let o = c.lint();
    for n in [q, k] {
        let f = error_for(&o, "swapped-tensors", n);
        assert_eq!(f.code, "APRL-N007");
        assert!(f.help.contains(q) && f.help.contains(k), "{}", f.help);
    }
}

#[test]
fn gate_and_up_swapped_in_layer_1() {
    let mut c = Case::generated(&TINY, DType::F32);
    let (g, u) = (
        "model.layers.1.mlp.gate_proj.weight",
        "model.layers.1.mlp.up_proj.weight",
    );
    swap_data(&mut c, g, u);
    let o = c.lint();
    let f = error_for(&o, "swapped-tensors", g);
    assert_eq!(f.layer, Some(1));
    error_for(&o, "swapped-tensors", u);
    assert!(
        !numeric(&o).iter().any(|f| f.layer == Some(0)),
        "{}",
        describe(&o)
    );
}

#[test]
fn layers_0_and_1_swapped() {
    let mut c = Case::generated(&TINY, DType::F32);
    for t in &mut c.apr.tensors {
        if let Some(rest) = t.name.strip_prefix("model.layers.0.") {
            t.name = format!("model.layers.1.{rest}");
        } else if let Some(rest) = t.name.strip_prefix("model.layers.1.") {
            t.name = format!("model.layers.0.{rest}");
        }
    }
    let o = c.lint();
    for l in 0..2 {
        for sub in [
            "self_attn.q_proj.weight",
            "self_attn.v_proj.bias",
            "mlp.down_proj.weight",
            "input_layernorm.weight",
        ] {
            let n = format!("model.layers.{l}.{sub}");
            let f = error_for(&o, "swapped-tensors", &n);
            assert!(
                f.message.contains(&format!("layer {}", 1 - l)),
                "{}",
                f.message
            );
        }
    }
}

#[test]
fn bf16_bytes_labelled_f16() {
    let mut c = Case::generated(&TINY, DType::BF16);
    let name = "model.layers.0.self_attn.o_proj.weight";
    c.t(name).code = apr_code(DType::F16);
    let o = c.lint();
    let f = error_for(&o, "dtype-mislabeled", name);
    assert_eq!(f.code, "APRL-N008");
    assert!(f.help.contains("BF16"), "{}", f.help);
    assert_eq!(f.evidence.as_ref().expect("ev")["exact_bytes"], true);
}

/// Swap the two nibbles of every quant byte of one Q4_K block (`qs` at offset 16).
fn swap_nibbles(block: &mut [u8]) {
    for b in &mut block[16..144] {
        *b = b.rotate_left(4);
    }
}

#[test]
fn corrupted_q4_k_block_nibble_order() {
    // One block of a small tensor (fully compared).
    let mut c = Case::from_fixture(QWEN_Q4K);
    let name = "model.layers.0.self_attn.q_proj.weight";
    let t = c.t(name);
    assert_eq!(t.code, apr_code(DType::Q4_K));
    let at = 37 * 144; // row 37, block 0
    swap_nibbles(&mut t.bytes[at..at + 144]);
    let o = c.lint();
    let f = error_for(&o, "quant-block-corrupt", name);
    assert_eq!(f.code, "APRL-N009");
    let (a, _) = c.views();
    let ta = a.tensor(name).expect("tensor");
    assert_eq!(f.span.map(|s| s.offset), Some(ta.data.offset + at as u64));

    // Every block of a large tensor (sampled): a nibble-order bug in the block writer.
    let mut c = Case::from_fixture(QWEN_Q4K);
    let name = "model.layers.0.mlp.gate_proj.weight";
    let t = c.t(name);
    assert_eq!(t.code, apr_code(DType::Q4_K));
    assert!(t.bytes.len() > 64 * 1024);
    for b in t.bytes.chunks_exact_mut(144) {
        swap_nibbles(b);
    }
    let o = c.lint();
    let f = error_for(&o, "quant-block-corrupt", name);
    assert!(f.message.contains("0..16"), "{}", f.message);
}

#[test]
fn nan_block_scales() {
    let mut c = Case::from_fixture(QWEN_Q4K);
    let name = "model.layers.1.self_attn.k_proj.weight";
    let t = c.t(name);
    assert_eq!(t.code, apr_code(DType::Q4_K));
    let at = 5 * 144;
    t.bytes[at..at + 2].copy_from_slice(&half::f16::NAN.to_le_bytes());
    let o = c.lint();
    let f = error_for(&o, "non-finite", name);
    assert_eq!(f.code, "APRL-N010");
    let (a, _) = c.views();
    let ta = a.tensor(name).expect("tensor");
    assert_eq!(
        f.span.map(|s| (s.offset, s.len)),
        Some((ta.data.offset + at as u64, 144))
    );
}

#[test]
fn trimmed_rows_are_a_sub_block() {
    let mut c = Case::generated(&TINY, DType::F32);
    let name = "model.layers.0.self_attn.k_proj.weight";
    let t = c.t(name);
    assert_eq!(t.dims, [128, 256]);
    // Rows 64..128 only (the second KV head), as a wrong fused-QKV split would write them.
    t.bytes = t.bytes[64 * 256 * 4..].to_vec();
    t.dims = vec![64, 256];
    let o = c.lint();
    let f = numeric(&o)
        .into_iter()
        .find(|f| f.class() == "shape-mismatch" && f.tensor.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no sub-block finding:\n{}", describe(&o)));
    assert_eq!(f.code, "APRL-N013");
    assert!(f.message.contains("rows 64..128"), "{}", f.message);
    assert_eq!(f.evidence.as_ref().expect("ev")["exact_bytes"], true);
}

#[test]
fn zeroed_tensor_is_degenerate() {
    let mut c = Case::generated(&TINY, DType::F32);
    let name = "model.layers.1.self_attn.v_proj.weight";
    let t = c.t(name);
    t.bytes.iter_mut().for_each(|b| *b = 0);
    let o = c.lint();
    assert_eq!(error_for(&o, "degenerate", name).code, "APRL-N012");
}

/// A reference whose matrix is all zeros, and a file under test that agrees: a warning, since the
/// agreement proves nothing. Both comparison paths: identical bytes (Q8_0 both sides) and
/// dequantized values (F32 against F16).
#[test]
fn zeroed_reference_matrix_is_a_dead_reference() {
    for (dt_ref, name_gguf) in [
        (DType::Q8_0, "blk.0.ffn_up.weight"),
        (DType::F16, "blk.1.attn_k.weight"),
    ] {
        let mut w = gguf_model(&TINY, dt_ref, 7);
        let t = w
            .tensors
            .iter_mut()
            .find(|t| t.name == name_gguf)
            .expect("tensor");
        t.bytes.iter_mut().for_each(|b| *b = 0);
        let mut c = Case::from_writer(&w);
        if dt_ref == DType::F16 {
            // The file under test holds the same zeros as F32: values, not bytes, are compared.
            let apr_name = apr_lint::format::writer::convert::hf_name(name_gguf).expect("hf name");
            let t = c.t(&apr_name);
            t.bytes = vec![0; t.bytes.len() * 2];
            t.code = apr_code(DType::F32);
        }
        let o = c.lint();
        let f = o
            .findings
            .iter()
            .find(|f| f.code == "APRL-N017")
            .unwrap_or_else(|| panic!("{dt_ref}: no dead-reference finding:\n{}", describe(&o)));
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.message.contains(name_gguf), "{}", f.message);
        // Nothing else: the files agree.
        assert!(errors(&o).is_empty(), "{}", describe(&o));
    }
    // A different constant in the file under test is a disagreement, not a dead reference.
    let mut w = gguf_model(&TINY, DType::F32, 7);
    let t = w
        .tensors
        .iter_mut()
        .find(|t| t.name == "blk.0.ffn_up.weight")
        .expect("tensor");
    t.bytes.iter_mut().for_each(|b| *b = 0);
    let mut c = Case::from_writer(&w);
    let t = c.t("model.layers.0.mlp.up_proj.weight");
    t.bytes = 1f32.to_le_bytes().repeat(t.bytes.len() / 4);
    let o = c.lint();
    assert!(
        !o.findings.iter().any(|f| f.code == "APRL-N017"),
        "{}",
        describe(&o)
    );
    assert!(!errors(&o).is_empty(), "{}", describe(&o));
    // A clean pair has none.
    let o = Case::generated(&TINY, DType::Q8_0).lint();
    assert!(
        !o.findings.iter().any(|f| f.code == "APRL-N017"),
        "{}",
        describe(&o)
    );
}

#[test]
fn unexplained_difference_is_value_mismatch() {
    let mut c = Case::generated(&TINY, DType::F32);
    let name = "model.layers.0.mlp.down_proj.weight";
    let t = c.t(name);
    let mut v = f32s(&t.bytes);
    // A deterministic scramble no candidate models.
    let n = v.len();
    for i in 0..n {
        v.swap(i, (i * 7919 + 13) % n);
    }
    t.bytes = to_bytes(&v);
    let o = c.lint();
    let f = error_for(&o, "value-mismatch", name);
    assert_eq!(f.code, "APRL-N001");
    let ev = f.evidence.as_ref().expect("ev");
    assert!(ev["metrics"]["cosine"].as_f64().expect("cos").abs() < 0.5);
}

// ---------------------------------------------------------------- properties

fn keyed(o: &Outcome) -> Vec<(String, String, Option<String>, String)> {
    o.findings
        .iter()
        .map(|f| {
            (
                f.code.to_string(),
                f.class().to_string(),
                f.tensor.clone(),
                f.message.clone(),
            )
        })
        .collect()
}

#[test]
fn argument_order_does_not_matter_and_runs_are_deterministic() {
    let mut c = Case::generated(&TINY, DType::F32);
    let name = "model.layers.0.self_attn.q_proj.weight";
    let t = c.t(name);
    t.bytes = transpose_f32(&t.bytes, 256, 256);
    swap_data(
        &mut c,
        "model.layers.1.mlp.gate_proj.weight",
        "model.layers.1.mlp.up_proj.weight",
    );
    let run = |first_apr: bool| {
        let (a, b) = c.views();
        let (x, y) = if first_apr {
            pipeline::order_pair(a, b)
        } else {
            pipeline::order_pair(b, a)
        };
        pipeline::lint(&x, Some(&y), &Options::default())
    };
    let (ab, ba) = (run(true), run(false));
    assert_eq!(keyed(&ab), keyed(&ba));
    assert_eq!(ab.verdict, Verdict::Fail);
    let again = run(true);
    assert_eq!(keyed(&ab), keyed(&again));
    assert_eq!(
        ab.findings.iter().map(|f| &f.evidence).collect::<Vec<_>>(),
        again
            .findings
            .iter()
            .map(|f| &f.evidence)
            .collect::<Vec<_>>()
    );
}

/// Bytes of tensor data the weight comparison reads on clean pairs: a few KB per tensor.
#[test]
fn clean_pairs_touch_a_few_kb_per_tensor() {
    for name in [QWEN_Q4K, LLAMA_Q8] {
        let c = Case::from_fixture(name);
        let (a, b) = c.views();
        let opts = Options::default();
        let (ra, rb) = (
            Resolved::new(&a, &opts.rules),
            Resolved::new(&b, &opts.rules),
        );
        let mut out = Vec::new();
        let r = apr_lint::numeric::run(&a, &ra, &b, &rb, &opts.numeric(), &mut out);
        assert!(r.ran && r.tensors_compared > 0);
        let per = r.bytes_read / r.tensors_compared as u64;
        eprintln!(
            "{name}: {} tensors compared, {} bytes read ({per} per tensor, both sides)",
            r.tensors_compared, r.bytes_read
        );
        // Small tensors (< 64 KiB) are compared whole for certainty; large ones are sampled.
        assert!(per <= 2 * 64 * 1024, "{per}");
    }
}
