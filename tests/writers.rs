//! The test writers: GGUF round trip and byte identity with a real llama.cpp-written file, the APR
//! writer against the worked example of `apr-v2.md`, the GGUF→APR converter in both flavours, and
//! the benchmark model generator.

use std::path::PathBuf;

use apr_lint::format::apr::{self, AprFile, Footer, flags};
use apr_lint::format::gguf::{self, GgufFile, Value, ValueType};
use apr_lint::format::writer::apr::{AprTensor, AprWriter, Flavour, apr_code};
use apr_lint::format::writer::convert::{gguf_to_apr, hf_name, write_gguf_as_apr};
use apr_lint::format::writer::generate::{self, QWEN2_5_0_5B, Shape, TINY};
use apr_lint::format::writer::gguf::{GgufTensor, GgufWriter, MetaValue};
use apr_lint::format::{Container, Source, crc32};
use apr_lint::model::ModelView;
use apr_lint::quant::{DType, bench_support_random_blocks, tensor_n_bytes};
use serde_json::json;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn read_gguf(bytes: Vec<u8>) -> GgufFile {
    gguf::read(Source::from_vec(bytes, "test.gguf")).expect("our GGUF reads back")
}

fn read_apr(bytes: Vec<u8>) -> AprFile {
    apr::read(Source::from_vec(bytes, "test.apr")).expect("our APR reads back")
}

/// Random valid bytes for a tensor with canonical `dims`.
fn random_tensor(name: &str, dims: Vec<u64>, dt: DType, seed: u64) -> GgufTensor {
    let cols = *dims.last().unwrap();
    let rows: u64 = dims[..dims.len() - 1].iter().product();
    let bytes = bench_support_random_blocks(dt, rows * cols.div_ceil(dt.block_elems()), seed);
    assert_eq!(Some(bytes.len() as u64), tensor_n_bytes(dt, &dims));
    GgufTensor::new(name, dims, dt, bytes)
}

fn every_value_type() -> Vec<(String, MetaValue)> {
    let s = |x: &str| x.to_owned();
    vec![
        (s("v.u8"), MetaValue::U8(200)),
        (s("v.i8"), MetaValue::I8(-100)),
        (s("v.u16"), MetaValue::U16(60000)),
        (s("v.i16"), MetaValue::I16(-30000)),
        (s("v.u32"), MetaValue::U32(4_000_000_000)),
        (s("v.i32"), MetaValue::I32(-2_000_000_000)),
        (s("v.f32"), MetaValue::F32(1e-6)),
        (s("v.bool"), MetaValue::Bool(true)),
        (s("v.string"), MetaValue::string("héllo ∑")),
        (s("v.u64"), MetaValue::U64(u64::MAX - 1)),
        (s("v.i64"), MetaValue::I64(i64::MIN + 1)),
        (s("v.f64"), MetaValue::F64(-2.5e300)),
        (s("a.u8"), MetaValue::ArrayU8(vec![1, 2, 255])),
        (s("a.i8"), MetaValue::ArrayI8(vec![-1, 0, 127])),
        (s("a.u16"), MetaValue::ArrayU16(vec![1, 65535])),
        (s("a.i16"), MetaValue::ArrayI16(vec![-32768, 5])),
        (s("a.u32"), MetaValue::ArrayU32(vec![7, 8, 9])),
        (s("a.i32"), MetaValue::ArrayI32(vec![-7, 8])),
        (s("a.f32"), MetaValue::ArrayF32(vec![0.5, -1.25, f32::MAX])),
        (s("a.bool"), MetaValue::ArrayBool(vec![true, false, true])),
        (
            s("a.string"),
            MetaValue::ArrayString(vec![s("a"), s(""), s("Ġthe")]),
        ),
        (s("a.u64"), MetaValue::ArrayU64(vec![u64::MAX, 0])),
        (s("a.i64"), MetaValue::ArrayI64(vec![i64::MIN, -1])),
        (s("a.f64"), MetaValue::ArrayF64(vec![1.0 / 3.0])),
        (s("a.empty"), MetaValue::ArrayU32(vec![])),
    ]
}

#[test]
fn gguf_round_trip_every_value_type_and_tensor() {
    let mut w = GgufWriter::new();
    for (k, v) in every_value_type() {
        w.meta(k, v);
    }
    let f32s: Vec<u8> = (0..6)
        .flat_map(|i| (i as f32 * 0.5 - 1.0).to_le_bytes())
        .collect();
    w.tensor(GgufTensor::new(
        "t.f32",
        vec![2, 3],
        DType::F32,
        f32s.clone(),
    ))
    .tensor(random_tensor("t.f16", vec![5], DType::F16, 1))
    .tensor(random_tensor("t.q8_0", vec![3, 64], DType::Q8_0, 2))
    .tensor(random_tensor("t.q4_k", vec![2, 256], DType::Q4_K, 3));
    let bytes = w.to_bytes();
    let g = read_gguf(bytes.clone());

    assert_eq!(g.version, 3);
    assert_eq!(g.alignment, 32);
    assert!(g.findings.is_empty(), "{:?}", g.findings);
    assert_eq!(g.data_offset % 32, 0);
    assert_eq!(g.data_offset, w.data_offset());

    // Metadata: keys in order, scalars by the reader's own decoding, arrays by type and contents.
    let expected = every_value_type();
    assert_eq!(g.metadata.len(), expected.len());
    for (kv, (k, v)) in g.metadata.iter().zip(&expected) {
        assert_eq!(&kv.key, k);
        let got = &kv.value;
        match (v, got) {
            (MetaValue::U8(a), Value::U8(b)) => assert_eq!(a, b),
            (MetaValue::I8(a), Value::I8(b)) => assert_eq!(a, b),
            (MetaValue::U16(a), Value::U16(b)) => assert_eq!(a, b),
            (MetaValue::I16(a), Value::I16(b)) => assert_eq!(a, b),
            (MetaValue::U32(a), Value::U32(b)) => assert_eq!(a, b),
            (MetaValue::I32(a), Value::I32(b)) => assert_eq!(a, b),
            (MetaValue::F32(a), Value::F32(b)) => assert_eq!(a.to_bits(), b.to_bits()),
            (MetaValue::Bool(a), Value::Bool(b)) => assert_eq!(a, b),
            (MetaValue::String(a), Value::String(b)) => assert_eq!(a, b),
            (MetaValue::U64(a), Value::U64(b)) => assert_eq!(a, b),
            (MetaValue::I64(a), Value::I64(b)) => assert_eq!(a, b),
            (MetaValue::F64(a), Value::F64(b)) => assert_eq!(a.to_bits(), b.to_bits()),
            (_, Value::Array(arr)) => {
                let (elem, len, numbers): (ValueType, usize, Option<Vec<f64>>) = match v {
                    MetaValue::ArrayU8(x) => (
                        ValueType::U8,
                        x.len(),
                        Some(x.iter().map(|&y| y as f64).collect()),
                    ),
                    MetaValue::ArrayI8(x) => (
                        ValueType::I8,
                        x.len(),
                        Some(x.iter().map(|&y| y as f64).collect()),
                    ),
                    MetaValue::ArrayU16(x) => (
                        ValueType::U16,
                        x.len(),
                        Some(x.iter().map(|&y| y as f64).collect()),
                    ),
                    MetaValue::ArrayI16(x) => (
                        ValueType::I16,
                        x.len(),
                        Some(x.iter().map(|&y| y as f64).collect()),
                    ),
                    MetaValue::ArrayU32(x) => (
                        ValueType::U32,
                        x.len(),
                        Some(x.iter().map(|&y| y as f64).collect()),
                    ),
                    MetaValue::ArrayI32(x) => (
                        ValueType::I32,
                        x.len(),
                        Some(x.iter().map(|&y| y as f64).collect()),
                    ),
                    MetaValue::ArrayF32(x) => (
                        ValueType::F32,
                        x.len(),
                        Some(x.iter().map(|&y| y as f64).collect()),
                    ),
                    MetaValue::ArrayBool(x) => (ValueType::Bool, x.len(), None),
                    MetaValue::ArrayString(x) => {
                        assert_eq!(
                            g.array_strings(arr),
                            x.iter().map(String::as_str).collect::<Vec<_>>()
                        );
                        (ValueType::String, x.len(), None)
                    }
                    MetaValue::ArrayU64(x) => (
                        ValueType::U64,
                        x.len(),
                        Some(x.iter().map(|&y| y as f64).collect()),
                    ),
                    MetaValue::ArrayI64(x) => (
                        ValueType::I64,
                        x.len(),
                        Some(x.iter().map(|&y| y as f64).collect()),
                    ),
                    MetaValue::ArrayF64(x) => (ValueType::F64, x.len(), Some(x.clone())),
                    other => panic!("{k}: unexpected {other:?}"),
                };
                assert_eq!(arr.elem, elem, "{k}");
                assert_eq!(arr.len, len as u64, "{k}");
                if let Some(n) = numbers {
                    assert_eq!(g.array_numbers(arr), n, "{k}");
                }
                // Exact element types and values (u64::MAX, i64::MIN survive, unlike through f64).
                assert_eq!(&MetaValue::from_value(&g, got), v, "{k}");
            }
            (v, got) => panic!("{k}: wrote {v:?}, read {got:?}"),
        }
    }

    // Tensors: ne = dims reversed, dtype, offsets packed and aligned, bytes unchanged.
    assert_eq!(g.tensors.len(), 4);
    let mut expected_offset = 0;
    for (t, wt) in g.tensors.iter().zip(&w.tensors) {
        assert_eq!(t.name, wt.name);
        assert_eq!(t.ne, wt.dims.iter().rev().copied().collect::<Vec<_>>());
        assert_eq!(t.dtype, wt.dtype);
        assert_eq!(t.offset, expected_offset);
        assert_eq!(g.tensor_bytes(t), &wt.bytes[..]);
        expected_offset += (wt.bytes.len() as u64).div_ceil(32) * 32;
    }
    assert_eq!(
        g.tensor("t.f32").map(|t| g.tensor_bytes(t).to_vec()),
        Some(f32s)
    );
    // Padding after the last tensor too, as gguf-py writes.
    assert_eq!(bytes.len() as u64, g.data_offset + expected_offset);
    // Copying a read file reproduces it.
    assert_eq!(GgufWriter::from_file(&g).to_bytes(), bytes);
}

#[test]
fn gguf_overrides_write_raw_fields() {
    let mut w = GgufWriter::new();
    w.alignment = 64;
    w.meta("general.alignment", MetaValue::U32(64));
    let mut t = random_tensor("w", vec![4, 32], DType::Q8_0, 9);
    t.ne_override = Some(vec![4, 32]);
    w.tensor(t)
        .tensor(random_tensor("b", vec![4], DType::F32, 10));
    let g = gguf::read(Source::from_vec(w.to_bytes(), "o.gguf"));
    // ne[0] = 4 is not a multiple of Q8_0's 32: the reader refuses the damaged record.
    assert!(g.is_err());
    w.tensors[0].ne_override = Some(vec![32, 4]);
    let g = read_gguf(w.to_bytes());
    assert_eq!(g.alignment, 64);
    assert_eq!(g.tensors[1].offset, 192); // 4 * 34 = 136 bytes, padded to 64
    assert_eq!(g.data_offset % 64, 0);
}

/// Both fixtures: `tiny-llama-q8_0.gguf` was written by gguf-py alone, `tiny-qwen2-lq-q4_k_m.gguf`
/// re-written by llama-quantize (ggml's `gguf_write_to_file`); the two lay files out the same way.
#[test]
fn gguf_writer_reproduces_real_files_byte_for_byte() {
    for (name, n_tensors) in [
        ("gguf/tiny-qwen2-lq-q4_k_m.gguf", 27),
        ("gguf/tiny-llama-q8_0.gguf", 21),
    ] {
        let path = fixture(name);
        let original = std::fs::read(&path).expect("fixture present");
        let g = gguf::read(Source::open(&path).unwrap()).unwrap();
        assert!(g.findings.is_empty(), "{name}: {:?}", g.findings);
        let w = GgufWriter::from_file(&g);
        assert_eq!(w.tensors.len(), n_tensors, "{name}");
        let rebuilt = w.to_bytes();
        assert_eq!(rebuilt.len(), original.len(), "{name}");
        let first_diff = rebuilt.iter().zip(&original).position(|(a, b)| a != b);
        assert_eq!(
            first_diff, None,
            "{name}: rebuilt file differs from the fixture"
        );
    }
}

/// Both files give the same config and tokenizer summary through the model view.
fn check_same_config(g: &GgufFile, a: &AprFile) {
    let gv = ModelView::from_container(Container::Gguf(g.clone()));
    let av = ModelView::from_container(Container::Apr(a.clone()));
    let (gc, ac) = (&gv.config, &av.config);
    assert!(ac.problems.is_empty(), "{:?}", ac.problems);
    let v = |x: &Option<apr_lint::model::ConfigValue<u64>>| x.as_ref().map(|c| c.value);
    let f = |x: &Option<apr_lint::model::ConfigValue<f64>>| x.as_ref().map(|c| c.value);
    assert_eq!(ac.arch(), gc.arch());
    for (what, gx, ax) in [
        ("hidden", &gc.hidden, &ac.hidden),
        ("layers", &gc.layers, &ac.layers),
        ("heads", &gc.heads, &ac.heads),
        ("kv_heads", &gc.kv_heads, &ac.kv_heads),
        ("head_dim", &gc.head_dim, &ac.head_dim),
        ("vocab", &gc.vocab, &ac.vocab),
        ("ffn", &gc.ffn, &ac.ffn),
        ("context_length", &gc.context_length, &ac.context_length),
    ] {
        assert!(v(gx).is_some(), "{what} missing from the GGUF");
        assert_eq!(v(gx), v(ax), "{what}");
    }
    // f32 in GGUF, its shortest decimal in APR JSON.
    for (what, gx, ax) in [
        ("rope_theta", &gc.rope_theta, &ac.rope_theta),
        ("rms_eps", &gc.rms_eps, &ac.rms_eps),
    ] {
        assert_eq!(f(gx).map(|x| x as f32), f(ax).map(|x| x as f32), "{what}");
    }
    assert_eq!(gv.tokenizer, av.tokenizer);
}

fn check_conversion(g: &GgufFile, flavour: Flavour, a: &AprFile) {
    check_same_config(g, a);
    assert!(a.findings.is_empty(), "{flavour:?}: {:?}", a.findings);
    assert_eq!(a.header.header_crc, a.header.computed_crc);
    assert_eq!(a.header.magic, *b"APR\0");
    assert_eq!((a.header.version_major, a.header.version_minor), (2, 0));
    assert_eq!(a.header.metadata_offset, 64);
    assert_eq!(
        a.header.tensor_index_offset,
        64 + (a.header.metadata_size as u64).div_ceil(64) * 64
    );
    assert_eq!(a.header.data_offset % 64, 0);
    let arch = g
        .get("general.architecture")
        .and_then(|kv| kv.value.as_str())
        .unwrap();
    match flavour {
        Flavour::Aprender => {
            assert_eq!(a.header.flags, flags::LAYOUT_ROW_MAJOR);
            assert_eq!(a.footer, Footer::Valid);
        }
        Flavour::Realizar => {
            assert_eq!(a.header.flags, flags::QUANTIZED);
            assert_eq!(a.footer, Footer::Absent);
        }
    }
    // Index sorted by name bytes, unique.
    for w in a.tensors.windows(2) {
        assert!(w[0].name.as_bytes() < w[1].name.as_bytes());
    }
    let is_hf = flavour == Flavour::Aprender && arch == "qwen2";
    for t in &g.tensors {
        let name = if is_hf {
            hf_name(&t.name).unwrap()
        } else {
            t.name.clone()
        };
        let e = a.tensor(&name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(
            e.dims,
            t.ne.iter().rev().copied().collect::<Vec<_>>(),
            "{name}"
        );
        assert_eq!(e.dtype(), t.dtype, "{name}");
        assert_eq!(e.resolution.code, apr_code(t.dtype), "{name}");
        assert!(e.resolution.size_ok, "{name}");
        assert_eq!(a.tensor_bytes(e), g.tensor_bytes(t), "{name}");
        assert_eq!(e.offset % 64, 0);
    }
    let shapes = a.get_value("tensor_shapes").unwrap();
    for e in &a.tensors {
        assert_eq!(shapes[&e.name], json!(e.dims), "{}", e.name);
    }
    assert_eq!(a.get_value("architecture"), Some(json!(arch)));
    // qwen2 rotates NEOX pairs; GGUF llama Q/K rows are permuted for NORM rotation.
    let rope_type = if arch == "qwen2" { 2 } else { 0 };
    assert_eq!(a.get_value("rope_type"), Some(json!(rope_type)));
    assert_eq!(a.get_value("original_format"), Some(json!("gguf")));
    let hidden_key = format!("{arch}.embedding_length");
    let hidden = g.get(&hidden_key).unwrap().value.as_int().unwrap() as u64;
    assert_eq!(a.get_value("hidden_size"), Some(json!(hidden)));
    assert_eq!(a.get_value("rms_norm_eps"), Some(json!(1e-6)));
    assert_eq!(a.get_value("rope_theta"), Some(json!(1e6)));
    let Some(Value::Array(toks)) = g.get("tokenizer.ggml.tokens").map(|kv| &kv.value) else {
        panic!()
    };
    assert_eq!(a.get_value("vocab_size"), Some(json!(toks.len)));
    assert_eq!(
        a.get_value("tokenizer.vocabulary"),
        Some(json!(g.array_strings(toks)))
    );
    assert_eq!(a.get_value("tokenizer.model"), Some(json!("gpt2")));
    // Data end: padded payloads (+ footer).
    let end = a
        .tensors
        .iter()
        .map(|t| a.header.data_offset + t.offset + t.n_bytes.div_ceil(64) * 64)
        .max()
        .unwrap();
    let footer = if flavour == Flavour::Aprender { 4 } else { 0 };
    assert_eq!(a.source.len(), end + footer);
}

#[test]
fn gguf_to_apr_of_real_files_in_both_flavours() {
    for fixture_name in [
        "gguf/tiny-qwen2-lq-q4_k_m.gguf",
        "gguf/tiny-llama-q8_0.gguf",
    ] {
        let g = gguf::read(Source::open(&fixture(fixture_name)).unwrap()).unwrap();
        for flavour in [Flavour::Aprender, Flavour::Realizar] {
            let w = gguf_to_apr(&g, flavour);
            let bytes = w.to_bytes();
            let a = read_apr(bytes.clone());
            check_conversion(&g, flavour, &a);
            assert_eq!(
                a.tensors.len(),
                g.tensors.len(),
                "untied: nothing synthesized"
            );
            assert_eq!(a.get_value("tied_embeddings"), None);
            // The streaming path writes the same bytes.
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("m.apr");
            write_gguf_as_apr(&g, flavour, &out).unwrap();
            assert_eq!(
                std::fs::read(&out).unwrap(),
                bytes,
                "{fixture_name} {flavour:?}: streamed copy differs"
            );
        }
    }
}

#[test]
fn hf_names_follow_apr_v2_spec() {
    let cases = [
        ("token_embd.weight", "model.embed_tokens.weight"),
        (
            "blk.0.attn_norm.weight",
            "model.layers.0.input_layernorm.weight",
        ),
        (
            "blk.3.attn_q.weight",
            "model.layers.3.self_attn.q_proj.weight",
        ),
        ("blk.3.attn_k.bias", "model.layers.3.self_attn.k_proj.bias"),
        (
            "blk.3.attn_output.weight",
            "model.layers.3.self_attn.o_proj.weight",
        ),
        (
            "blk.3.attn_q_norm.weight",
            "model.layers.3.self_attn.q_norm.weight",
        ),
        (
            "blk.12.ffn_norm.weight",
            "model.layers.12.post_attention_layernorm.weight",
        ),
        (
            "blk.12.ffn_gate.weight",
            "model.layers.12.mlp.gate_proj.weight",
        ),
        (
            "blk.12.ffn_down.weight",
            "model.layers.12.mlp.down_proj.weight",
        ),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
    ];
    for (gguf_name, hf) in cases {
        assert_eq!(hf_name(gguf_name).as_deref(), Some(hf));
    }
    assert_eq!(hf_name("blk.x.attn_q.weight"), None);
    assert_eq!(hf_name("rope_freqs.weight"), None);
}

#[test]
fn apr_writer_matches_worked_example_layout() {
    // apr-v2.md's 516-byte golden file: `bias` F32 [1] at +0, `weights` F32 [8] at +64, metadata
    // 189 bytes. Its JSON is not given, so pad a string to 189 bytes; the header (and so its CRC)
    // depends only on the numbers.
    let mut w = AprWriter::new(Flavour::Aprender);
    w.meta("name", json!(""));
    let filler = 189 - w.metadata_json().len();
    w.metadata[0].1 = json!("x".repeat(filler));
    assert_eq!(w.metadata_json().len(), 189);
    w.tensor(AprTensor::new(
        "bias",
        vec![1],
        DType::F32,
        0.5f32.to_le_bytes().to_vec(),
    ));
    w.tensor(AprTensor::new(
        "weights",
        vec![8],
        DType::F32,
        (0..8).flat_map(|i| (i as f32).to_le_bytes()).collect(),
    ));
    let bytes = w.to_bytes();
    assert_eq!(bytes.len(), 516);
    assert_eq!(
        &bytes[0..8],
        &[0x41, 0x50, 0x52, 0x00, 0x02, 0x00, 0x00, 0x04]
    );
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    assert_eq!(u32_at(8), 2);
    assert_eq!(u64_at(12), 64);
    assert_eq!(u32_at(20), 189);
    assert_eq!(u64_at(24), 256);
    assert_eq!(u64_at(32), 384);
    assert_eq!(u32_at(40), 0x3BC0_8C02, "header CRC of the golden file");
    assert!(bytes[44..64].iter().all(|&b| b == 0));
    assert_eq!(u32_at(512), crc32::crc32(&bytes[..512]));
    let a = read_apr(bytes);
    assert!(a.findings.is_empty(), "{:?}", a.findings);
    assert_eq!(a.footer, Footer::Valid);
    let names: Vec<_> = a
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), t.offset, t.n_bytes))
        .collect();
    assert_eq!(names, [("bias", 0, 4), ("weights", 64, 32)]);
}

#[test]
fn apr_writer_sorts_index_but_keeps_payload_order() {
    let mut w = AprWriter::new(Flavour::Realizar);
    w.tensor(AprTensor::new("z", vec![3], DType::F32, vec![1; 12]));
    w.tensor(AprTensor::new("a", vec![100], DType::F32, vec![2; 400]));
    let a = read_apr(w.to_bytes());
    assert!(a.findings.is_empty(), "{:?}", a.findings);
    assert_eq!(a.tensors[0].name, "a");
    assert_eq!(a.tensors[0].offset, 64);
    assert_eq!(a.tensors[1].offset, 0);
    assert_eq!(a.footer, Footer::Absent);
    // Damage knob: unsorted index is reported by the reader.
    w.sort_index = false;
    let a = read_apr(w.to_bytes());
    assert_eq!(a.findings.len(), 1);
}

#[test]
fn generated_tiny_pair_reads_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (gp, ap) = (dir.path().join("m.gguf"), dir.path().join("m.apr"));
    generate::write_pair(&TINY, DType::Q4_K, 7, &gp, &ap).unwrap();
    let g = gguf::read(Source::open(&gp).unwrap()).unwrap();
    assert!(g.findings.is_empty(), "{:?}", g.findings);
    assert_eq!(g.tensors.len(), 1 + 2 * 12 + 2);
    assert_eq!(g.tensor("output.weight").unwrap().dtype, DType::Q6_K);
    assert_eq!(g.tensor("blk.0.attn_q.weight").unwrap().dtype, DType::Q4_K);
    assert_eq!(g.tensor("blk.0.attn_q.bias").unwrap().dtype, DType::F32);
    let a = apr::read(Source::open(&ap).unwrap()).unwrap();
    check_conversion(&g, Flavour::Aprender, &a);
    // Every block decodes to finite values.
    for t in &g.tensors {
        let dims: Vec<u64> = t.ne.iter().rev().copied().collect();
        let v = apr_lint::quant::dequantize_to_vec(t.dtype, g.tensor_bytes(t), &dims).unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{}", t.name);
    }
    // Deterministic from the seed.
    assert_eq!(
        generate::gguf_model(&TINY, DType::Q4_K, 7).to_bytes(),
        std::fs::read(&gp).unwrap()
    );
    assert_ne!(
        generate::gguf_model(&TINY, DType::Q4_K, 8).to_bytes(),
        std::fs::read(&gp).unwrap()
    );
}

#[test]
fn generated_tied_model_gets_lm_head_in_aprender_flavour_only() {
    let tied = Shape { tied: true, ..TINY };
    let g = read_gguf(generate::gguf_model(&tied, DType::Q8_0, 1).to_bytes());
    assert!(g.tensor("output.weight").is_none());
    let a = read_apr(gguf_to_apr(&g, Flavour::Aprender).to_bytes());
    assert!(a.findings.is_empty(), "{:?}", a.findings);
    assert_eq!(a.get_value("tied_embeddings"), Some(json!(true)));
    let lm = a.tensor("lm_head.weight").unwrap();
    let emb = a.tensor("model.embed_tokens.weight").unwrap();
    assert_eq!(lm.dims, [512, 256]);
    assert_eq!(a.tensor_bytes(lm), a.tensor_bytes(emb));
    let r = read_apr(gguf_to_apr(&g, Flavour::Realizar).to_bytes());
    assert_eq!(r.tensors.len(), g.tensors.len());
    assert_eq!(r.get_value("tied_embeddings"), None);
}

#[test]
fn k_quant_rows_not_multiple_of_256_fall_back_like_llama_cpp() {
    assert_eq!(generate::weight_dtype(DType::Q4_K, 896), DType::Q5_0);
    assert_eq!(generate::weight_dtype(DType::Q6_K, 896), DType::Q8_0);
    assert_eq!(generate::weight_dtype(DType::Q4_K, 4864), DType::Q4_K);
    // A cut-down 0.5B (real hidden, ffn and head counts; one layer, small vocab) reads cleanly.
    let small = Shape {
        layers: 1,
        vocab: 1000,
        ..QWEN2_5_0_5B
    };
    let g = read_gguf(generate::gguf_model(&small, DType::Q4_K, 3).to_bytes());
    assert!(g.findings.is_empty(), "{:?}", g.findings);
    assert_eq!(g.tensor("token_embd.weight").unwrap().dtype, DType::Q8_0);
    assert_eq!(g.tensor("blk.0.attn_q.weight").unwrap().dtype, DType::Q5_0);
    assert_eq!(
        g.tensor("blk.0.ffn_down.weight").unwrap().dtype,
        DType::Q4_K
    );
    let a = read_apr(gguf_to_apr(&g, Flavour::Aprender).to_bytes());
    assert!(a.findings.is_empty(), "{:?}", a.findings);
    assert_eq!(
        a.tensor("blk.0.attn_q.weight").map(|t| t.name.clone()),
        None
    );
    assert_eq!(
        a.tensor("model.layers.0.self_attn.q_proj.weight")
            .unwrap()
            .dims,
        [896, 896]
    );
    assert_eq!(a.tensor("lm_head.weight").unwrap().dims, [1000, 896]);
}

/// Both converters' output, pinned byte for byte (length and CRC-32 of the written APR): a change
/// of the metadata they write (keys, order, values) must be deliberate. Covers the GGUF→APR path in
/// both flavours, with a synthesized tied output, and the Hugging Face→APR path, untied (transformers'
/// sharded checkpoint) and tied (a tied fixture GGUF written as a checkpoint by our writer).
#[test]
fn converters_write_the_pinned_bytes() {
    use apr_lint::format::hf;
    use apr_lint::format::writer::convert::hf_to_apr;
    use apr_lint::format::writer::safetensors::{HfDtype, write_gguf_as_hf};
    // FNV-1a 64 (a CRC-32 of the whole file is useless here: an APR ending in its own CRC-32 footer
    // always gives the CRC residue 0x2144df1c).
    let fnv = |bytes: &[u8]| {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let pin = |what: &str, bytes: &[u8]| {
        format!("{what}: {} bytes, fnv {:#018x}", bytes.len(), fnv(bytes))
    };
    let mut got = Vec::new();
    for (name, flavour) in [
        ("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender),
        ("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Realizar),
        ("gguf/tiny-qwen2-tied-q8_0.gguf", Flavour::Aprender),
        ("gguf/tiny-llama-q8_0.gguf", Flavour::Realizar),
    ] {
        let g = gguf::read(Source::open(&fixture(name)).unwrap()).unwrap();
        got.push(pin(
            &format!("{name} {flavour:?}"),
            &gguf_to_apr(&g, flavour).to_bytes(),
        ));
    }
    let ck = hf::open(&fixture("hf/tiny-qwen2-f32-hf-bf16-sharded")).unwrap();
    got.push(pin(
        "hf/tiny-qwen2-f32-hf-bf16-sharded",
        &hf_to_apr(&ck).unwrap().to_bytes(),
    ));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hf");
    let g = gguf::read(Source::open(&fixture("gguf/tiny-qwen2-tied-q8_0.gguf")).unwrap()).unwrap();
    write_gguf_as_hf(&g, HfDtype::F32, None, &dir).unwrap();
    let ck = hf::open(&dir).unwrap();
    got.push(pin(
        "tied qwen2 as a checkpoint",
        &hf_to_apr(&ck).unwrap().to_bytes(),
    ));
    // Taken from the converters before their shared config tail (`config_tail`) was factored out.
    let want = [
        "gguf/tiny-qwen2-lq-q4_k_m.gguf Aprender: 1144132 bytes, fnv 0x4532b746967e296b",
        "gguf/tiny-qwen2-lq-q4_k_m.gguf Realizar: 1143232 bytes, fnv 0x1c6f8a98dfed4c47",
        "gguf/tiny-qwen2-tied-q8_0.gguf Aprender: 1968708 bytes, fnv 0xd128c8d89ceed0db",
        "gguf/tiny-llama-q8_0.gguf Realizar: 1963328 bytes, fnv 0x23fcba1bee3ecec5",
        "hf/tiny-qwen2-f32-hf-bf16-sharded: 3684484 bytes, fnv 0x6c3f5e0f7149ae2e",
        "tied qwen2 as a checkpoint: 7359108 bytes, fnv 0x6d09196c390cf8e8",
    ];
    assert_eq!(got, want);
}
