//! Realistic-size qwen2 model pairs for benchmarks, made on the spot (no download): a GGUF with
//! the tensor set, metadata and tokenizer a converted Qwen2.5 has, random but valid blocks
//! ([`bench_support_random_blocks`]), and its correct APR conversion.
//!
//! Dtype per tensor: 1-D norms and biases F32; every 2-D weight `dtype`, except that with Q4_K
//! (the "Q4_K_M" flavour) the output matrix — the embedding when tied — is Q6_K. A row length that
//! the chosen type's block does not divide falls back the way llama.cpp's `llama-quant.cpp` does
//! (Q2_K/Q3_K/IQ4_XS → IQ4_NL, Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0), then F16 if even that block
//! does not divide it. So Qwen2.5-0.5B (hidden 896 = 3.5 × 256) in Q4_K gets Q5_0 for every
//! matrix with 896-long rows, Q8_0 for its (tied) embedding, and Q4_K only for `ffn_down`
//! (rows of 4864 = 19 × 256) — as the real Q4_K_M file does in spirit.

use std::io;
use std::path::Path;

use rayon::prelude::*;

use super::apr::Flavour;
use super::convert::write_gguf_as_apr;
use super::gguf::{GgufTensor, GgufWriter, MetaValue};
use crate::format::{Source, gguf};
use crate::quant::{DType, bench_support_random_blocks};

/// A decoder-only transformer's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub arch: &'static str,
    pub hidden: u64,
    pub layers: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub ffn: u64,
    pub vocab: u64,
    /// No `output.weight`: the embedding doubles as the output matrix.
    pub tied: bool,
}

/// Qwen2.5-0.5B(-Instruct).
pub const QWEN2_5_0_5B: Shape = Shape {
    arch: "qwen2",
    hidden: 896,
    layers: 24,
    heads: 14,
    kv_heads: 2,
    ffn: 4864,
    vocab: 151936,
    tied: true,
};
/// Qwen2.5-1.5B(-Instruct).
pub const QWEN2_5_1_5B: Shape = Shape {
    arch: "qwen2",
    hidden: 1536,
    layers: 28,
    heads: 12,
    kv_heads: 2,
    ffn: 8960,
    vocab: 151936,
    tied: true,
};
/// The oracle's tiny model size (fast tests); untied.
pub const TINY: Shape = Shape {
    arch: "qwen2",
    hidden: 256,
    layers: 2,
    heads: 4,
    kv_heads: 2,
    ffn: 768,
    vocab: 512,
    tied: false,
};

impl Shape {
    pub fn head_dim(&self) -> u64 {
        self.hidden / self.heads
    }
}

/// The type llama.cpp falls back to when `dt`'s block does not divide a row (`llama-quant.cpp`).
fn fallback(dt: DType) -> DType {
    match dt {
        DType::Q2_K | DType::Q3_K | DType::IQ4_XS => DType::IQ4_NL,
        DType::Q4_K => DType::Q5_0,
        DType::Q5_K => DType::Q5_1,
        DType::Q6_K => DType::Q8_0,
        _ => DType::F16,
    }
}

/// The type a 2-D weight with rows of `cols` elements gets when `dt` is asked for.
pub fn weight_dtype(dt: DType, cols: u64) -> DType {
    let mut t = dt;
    for _ in 0..3 {
        if cols.is_multiple_of(t.block_elems()) {
            return t;
        }
        t = fallback(t);
    }
    DType::F32
}

/// llama.cpp's `general.file_type` (`enum llama_ftype`) for a model mostly in `dt`.
fn file_type(dt: DType) -> u32 {
    match dt {
        DType::F32 => 0,
        DType::F16 => 1,
        DType::Q4_0 => 2,
        DType::Q4_1 => 3,
        DType::Q8_0 => 7,
        DType::Q5_0 => 8,
        DType::Q5_1 => 9,
        DType::Q2_K => 10,
        DType::Q3_K => 12,
        DType::Q4_K => 15,
        DType::Q5_K => 17,
        DType::Q6_K => 18,
        DType::IQ4_NL => 25,
        DType::IQ4_XS => 30,
        DType::BF16 => 32,
        _ => 1024, // LLAMA_FTYPE_GUESSED
    }
}

/// GPT-2's byte → printable-char map (`bytes_to_unicode`), the first 256 tokens of a byte-level BPE.
fn byte_tokens() -> Vec<String> {
    let printable = |b: u32| {
        (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    let mut n = 0u32;
    (0..256u32)
        .map(|b| {
            let c = if printable(b) {
                b
            } else {
                n += 1;
                255 + n
            };
            char::from_u32(c)
                .expect("below 0x200: valid chars")
                .to_string()
        })
        .collect()
}

/// Tokens and merges of a synthetic byte-level BPE with exactly `vocab` tokens: 256 byte tokens,
/// then every lowercase word of length 2, 3, 4… in order (each made by merging its prefix, itself
/// a token, with its last letter), then three control tokens. Returns (tokens, token types, merges).
fn tokenizer(vocab: u64) -> (Vec<String>, Vec<i32>, Vec<String>) {
    let n = usize::try_from(vocab).expect("vocab fits in memory");
    let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
    let n_normal = n.saturating_sub(specials.len()).max(256.min(n));
    let mut tokens: Vec<String> = byte_tokens().into_iter().take(n_normal).collect();
    let mut merges = Vec::new();
    let letters: Vec<char> = ('a'..='z').collect();
    let mut prev: Vec<String> = letters.iter().map(|c| c.to_string()).collect();
    'outer: while tokens.len() < n_normal {
        let mut next = Vec::with_capacity(prev.len() * 26);
        for p in &prev {
            for c in &letters {
                if tokens.len() >= n_normal {
                    break 'outer;
                }
                let w = format!("{p}{c}");
                merges.push(format!("{p} {c}"));
                tokens.push(w.clone());
                next.push(w);
            }
        }
        prev = next;
    }
    let mut types = vec![1i32; tokens.len()];
    for s in specials.iter().take(n - tokens.len()) {
        tokens.push((*s).to_owned());
        types.push(3);
    }
    (tokens, types, merges)
}

/// Tensor names and dims (canonical, `[out, in]`) of a qwen2 model, in convert_hf_to_gguf's order.
fn tensor_specs(s: &Shape) -> Vec<(String, Vec<u64>)> {
    let (h, hd) = (s.hidden, s.head_dim());
    let (q, kv) = (s.heads * hd, s.kv_heads * hd);
    let mut out = vec![("token_embd.weight".to_owned(), vec![s.vocab, h])];
    for i in 0..s.layers {
        let p = |r: &str| format!("blk.{i}.{r}");
        out.extend([
            (p("attn_norm.weight"), vec![h]),
            (p("attn_q.weight"), vec![q, h]),
            (p("attn_k.weight"), vec![kv, h]),
            (p("attn_v.weight"), vec![kv, h]),
            (p("attn_q.bias"), vec![q]),
            (p("attn_k.bias"), vec![kv]),
            (p("attn_v.bias"), vec![kv]),
            (p("attn_output.weight"), vec![h, q]),
            (p("ffn_norm.weight"), vec![h]),
            (p("ffn_gate.weight"), vec![s.ffn, h]),
            (p("ffn_up.weight"), vec![s.ffn, h]),
            (p("ffn_down.weight"), vec![h, s.ffn]),
        ]);
    }
    out.push(("output_norm.weight".to_owned(), vec![h]));
    if !s.tied {
        out.push(("output.weight".to_owned(), vec![s.vocab, h]));
    }
    out
}

/// A GGUF with the qwen2 tensor set for `shape`: 1-D tensors F32, 2-D weights `dtype` (see the
/// module docs for Q6_K output and fallbacks), random valid blocks reproducible from `seed`,
/// metadata as convert_hf_to_gguf + llama-quantize write it, and a synthetic byte-level BPE
/// tokenizer of `shape.vocab` tokens with its merges.
pub fn gguf_model(shape: &Shape, dtype: DType, seed: u64) -> GgufWriter {
    let a = shape.arch;
    let mut w = GgufWriter::new();
    let (tokens, types, merges) = tokenizer(shape.vocab);
    let n_tok = tokens.len() as u32;
    w.meta("general.architecture", MetaValue::string(a))
        .meta(
            "general.name",
            MetaValue::string(format!("synthetic-{a}-{}x{}", shape.layers, shape.hidden)),
        )
        .meta(format!("{a}.context_length"), MetaValue::U32(32768))
        .meta(
            format!("{a}.embedding_length"),
            MetaValue::U32(shape.hidden as u32),
        )
        .meta(
            format!("{a}.block_count"),
            MetaValue::U32(shape.layers as u32),
        )
        .meta(
            format!("{a}.feed_forward_length"),
            MetaValue::U32(shape.ffn as u32),
        )
        .meta(
            format!("{a}.attention.head_count"),
            MetaValue::U32(shape.heads as u32),
        )
        .meta(
            format!("{a}.attention.head_count_kv"),
            MetaValue::U32(shape.kv_heads as u32),
        )
        .meta(format!("{a}.rope.freq_base"), MetaValue::F32(1_000_000.0))
        .meta(
            format!("{a}.attention.layer_norm_rms_epsilon"),
            MetaValue::F32(1e-6),
        )
        .meta("tokenizer.ggml.model", MetaValue::string("gpt2"))
        .meta("tokenizer.ggml.pre", MetaValue::string(a))
        .meta("tokenizer.ggml.tokens", MetaValue::ArrayString(tokens))
        .meta("tokenizer.ggml.token_type", MetaValue::ArrayI32(types))
        .meta("tokenizer.ggml.merges", MetaValue::ArrayString(merges))
        .meta(
            "tokenizer.ggml.bos_token_id",
            MetaValue::U32(n_tok.saturating_sub(3)),
        )
        .meta(
            "tokenizer.ggml.eos_token_id",
            MetaValue::U32(n_tok.saturating_sub(1)),
        )
        .meta(
            "tokenizer.ggml.padding_token_id",
            MetaValue::U32(n_tok.saturating_sub(3)),
        )
        .meta("tokenizer.ggml.add_bos_token", MetaValue::Bool(false));
    if !dtype.is_float() {
        w.meta("general.quantization_version", MetaValue::U32(2));
    }
    w.meta("general.file_type", MetaValue::U32(file_type(dtype)));

    let output_name = if shape.tied {
        "token_embd.weight"
    } else {
        "output.weight"
    };
    let specs = tensor_specs(shape);
    w.tensors = specs
        .into_par_iter()
        .enumerate()
        .map(|(i, (name, dims))| {
            let cols = *dims.last().expect("every tensor has a dim");
            let dt = if dims.len() == 1 {
                DType::F32
            } else if dtype == DType::Q4_K && name == output_name {
                weight_dtype(DType::Q6_K, cols)
            } else {
                weight_dtype(dtype, cols)
            };
            let rows: u64 = dims[..dims.len() - 1].iter().product();
            let n_blocks = rows * cols.div_ceil(dt.block_elems());
            let tensor_seed = seed
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(i as u64);
            let bytes = bench_support_random_blocks(dt, n_blocks, tensor_seed);
            GgufTensor::new(name, dims, dt, bytes)
        })
        .collect();
    w
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Write `gguf_model(shape, dtype, seed)` to `gguf_path` and its correct aprender-flavour APR
/// conversion to `apr_path`.
pub fn write_pair(
    shape: &Shape,
    dtype: DType,
    seed: u64,
    gguf_path: &Path,
    apr_path: &Path,
) -> io::Result<()> {
    write_pair_as(shape, dtype, seed, Flavour::Aprender, gguf_path, apr_path)
}

/// [`write_pair`] with the APR producer chosen. Peak memory is one copy of the model: the GGUF is
/// generated, streamed to disk and dropped; the APR is then streamed from a map of the GGUF.
pub fn write_pair_as(
    shape: &Shape,
    dtype: DType,
    seed: u64,
    flavour: Flavour,
    gguf_path: &Path,
    apr_path: &Path,
) -> io::Result<()> {
    gguf_model(shape, dtype, seed).write(gguf_path)?;
    let g = gguf::read(Source::open(gguf_path).map_err(invalid)?).map_err(invalid)?;
    write_gguf_as_apr(&g, flavour, apr_path)
}
