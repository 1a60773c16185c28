//! Writes the seed corpora of the fuzz targets (run by `seed.sh`): small files from apr-lint's own
//! writers (micro qwen2/llama models in every dtype the generator quantizes to, a file with one
//! tensor of every GGML type, every metadata value type, their APR conversions in both flavours and
//! a few legal-but-unusual APR variants), the GGUF fixtures, the shipped rule files, and SafeTensors
//! seeds (small written files, the fixtures/hf/ shards and indexes).
//!
//! Usage: `seed_corpus <repo root> <corpus dir>`; writes `<corpus dir>/<target>/<name>`.

use std::path::{Path, PathBuf};

use apr_lint::Source;
use apr_lint::format::gguf::{self, GgufFile};
use apr_lint::format::writer::apr::{AprTensor, AprWriter, Flavour, apr_code};
use apr_lint::format::writer::convert::gguf_to_apr;
use apr_lint::format::writer::generate::{Shape, gguf_model};
use apr_lint::format::writer::gguf::{GgufTensor, GgufWriter, MetaValue};
use apr_lint::quant::{DType, bench_support_random_blocks};
use apr_lint_fuzz::join_pair;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("create corpus dir");
    std::fs::write(d.join(name), bytes).expect("write seed");
}

fn read(bytes: &[u8]) -> GgufFile {
    gguf::read(Source::from_vec(bytes.to_vec(), "seed.gguf")).expect("writer output reads")
}

fn micro(arch: &'static str, tied: bool) -> Shape {
    Shape {
        arch,
        hidden: 32,
        layers: 1,
        heads: 2,
        kv_heads: 1,
        ffn: 64,
        vocab: 8,
        tied,
    }
}

/// One [2, 256] tensor of every GGML type (256 divides every block length), plus every metadata
/// value type.
fn every_type_gguf() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.meta("general.architecture", MetaValue::string("qwen2"))
        .meta("v.u8", MetaValue::U8(200))
        .meta("v.i8", MetaValue::I8(-100))
        .meta("v.u16", MetaValue::U16(60000))
        .meta("v.i16", MetaValue::I16(-30000))
        .meta("v.u32", MetaValue::U32(4_000_000_000))
        .meta("v.i32", MetaValue::I32(-2_000_000_000))
        .meta("v.f32", MetaValue::F32(1e-6))
        .meta("v.bool", MetaValue::Bool(true))
        .meta("v.string", MetaValue::string("héllo"))
        .meta("v.u64", MetaValue::U64(u64::MAX - 1))
        .meta("v.i64", MetaValue::I64(i64::MIN + 1))
        .meta("v.f64", MetaValue::F64(-2.5e300))
        .meta("a.u8", MetaValue::ArrayU8(vec![1, 2, 255]))
        .meta("a.bool", MetaValue::ArrayBool(vec![true, false]))
        .meta(
            "a.string",
            MetaValue::ArrayString(vec!["a".into(), String::new()]),
        )
        .meta("a.f64", MetaValue::ArrayF64(vec![1.0 / 3.0]))
        .meta("a.empty", MetaValue::ArrayU32(vec![]));
    for (i, &dt) in DType::all()
        .iter()
        .filter(|d| d.ggml_id().is_some())
        .enumerate()
    {
        let n_blocks = 2 * 256 / dt.block_elems();
        let bytes = bench_support_random_blocks(dt, n_blocks, i as u64);
        w.tensor(GgufTensor::new(
            format!("t.{}", dt.name().to_lowercase()),
            vec![2, 256],
            dt,
            bytes,
        ));
    }
    w
}

/// One [2, 64] tensor under every APR code a producer writes.
fn every_code_apr(flavour: Flavour) -> AprWriter {
    let mut w = AprWriter::new(flavour);
    w.meta("architecture", serde_json::json!("qwen2"))
        .meta("hidden_size", serde_json::json!(64));
    for (i, &dt) in DType::all().iter().enumerate() {
        if 64 % dt.block_elems() != 0 {
            continue;
        }
        let n_blocks = 2 * 64 / dt.block_elems();
        let bytes = bench_support_random_blocks(dt, n_blocks, i as u64);
        let mut t = AprTensor::new(
            format!("t.{}", dt.name().to_lowercase()),
            vec![2, 64],
            dt,
            bytes,
        );
        t.code = apr_code(dt);
        w.tensor(t);
    }
    w
}

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [root, out] = &args[..] else {
        eprintln!("usage: seed_corpus <repo root> <corpus dir>");
        std::process::exit(2);
    };

    let mut ggufs: Vec<(String, Vec<u8>)> = Vec::new();
    for (arch, tied) in [("qwen2", false), ("qwen2", true), ("llama", false)] {
        for dt in [
            DType::F32,
            DType::F16,
            DType::BF16,
            DType::Q8_0,
            DType::Q4_0,
            DType::Q4_1,
            DType::Q5_0,
            DType::Q5_1,
            DType::IQ4_NL,
        ] {
            if arch != "qwen2" && !matches!(dt, DType::F16 | DType::Q8_0)
                || tied && dt != DType::Q8_0
            {
                continue;
            }
            let bytes = gguf_model(&micro(arch, tied), dt, 7).to_bytes();
            ggufs.push((
                format!(
                    "{arch}{}-{}",
                    if tied { "-tied" } else { "" },
                    dt.name().to_lowercase()
                ),
                bytes,
            ));
        }
    }
    ggufs.push(("every-type".into(), every_type_gguf().to_bytes()));
    // RoPE context scaling keys and Llama 3's `rope_freqs.weight`: what the probe's RoPE reads.
    let g = read(&gguf_model(&micro("qwen2", false), DType::Q8_0, 7).to_bytes());
    let mut w = GgufWriter::from_file(&g);
    w.meta("qwen2.rope.scaling.type", MetaValue::string("yarn"))
        .meta("qwen2.rope.scaling.factor", MetaValue::F32(4.0))
        .meta(
            "qwen2.rope.scaling.original_context_length",
            MetaValue::U32(2048),
        );
    ggufs.push(("qwen2-yarn-q8_0".into(), w.to_bytes()));
    let g = read(&gguf_model(&micro("llama", false), DType::Q8_0, 7).to_bytes());
    let mut w = GgufWriter::from_file(&g);
    w.meta("llama.rope.scaling.type", MetaValue::string("linear"))
        .meta("llama.rope.scaling.factor", MetaValue::F32(2.0))
        .meta("llama.rope.scaling.attn_factor", MetaValue::F32(0.5));
    let factors: Vec<u8> = (0..8)
        .flat_map(|i| (1.0f32 + i as f32).to_le_bytes())
        .collect();
    w.tensor(GgufTensor::new(
        "rope_freqs.weight",
        vec![8],
        DType::F32,
        factors,
    ));
    ggufs.push(("llama-linear-ropefreqs-q8_0".into(), w.to_bytes()));

    let mut aprs: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, bytes) in &ggufs {
        write(out, "gguf_reader", &format!("{name}.gguf"), bytes);
        let g = read(bytes);
        for flavour in [Flavour::Aprender, Flavour::Realizar] {
            let f = format!("{flavour:?}").to_lowercase();
            let w = gguf_to_apr(&g, flavour);
            let apr = w.to_bytes();
            write(out, "apr_reader", &format!("{name}-{f}.apr"), &apr);
            if apr.len() < 1 << 16 && bytes.len() < 1 << 17 {
                write(
                    out,
                    "lint_pair",
                    &format!("{name}-{f}.pair"),
                    &join_pair(&apr, bytes),
                );
            }
            aprs.push((format!("{name}-{f}"), apr));
            if name == "qwen2-q8_0" {
                let mut u = w.clone();
                u.sort_index = false;
                u.tensors.reverse();
                let k = u.metadata[0].clone();
                u.metadata.push(k);
                write(
                    out,
                    "apr_reader",
                    &format!("{name}-{f}-unsorted-dupkey.apr"),
                    &u.to_bytes(),
                );
                let mut m = w.clone();
                m.magic = *b"APR2";
                write(
                    out,
                    "apr_reader",
                    &format!("{name}-{f}-apr2.apr"),
                    &m.to_bytes(),
                );
                let mut z = w.clone();
                if let Some(t) = z
                    .tensors
                    .iter_mut()
                    .find(|t| t.name.contains("lm_head") || t.name.starts_with("output."))
                {
                    t.bytes.clear();
                }
                write(
                    out,
                    "apr_reader",
                    &format!("{name}-{f}-lm-head-0-bytes.apr"),
                    &z.to_bytes(),
                );
            }
        }
    }
    for flavour in [Flavour::Aprender, Flavour::Realizar] {
        let f = format!("{flavour:?}").to_lowercase();
        write(
            out,
            "apr_reader",
            &format!("every-code-{f}.apr"),
            &every_code_apr(flavour).to_bytes(),
        );
    }
    // Mismatched pairs: the same model in two types, two architectures, APR against APR.
    let find = |n: &str| &ggufs.iter().find(|(k, _)| k == n).expect("made above").1;
    let find_apr = |n: &str| &aprs.iter().find(|(k, _)| k == n).expect("made above").1;
    write(
        out,
        "lint_pair",
        "apr-q8_0-vs-gguf-f16.pair",
        &join_pair(find_apr("qwen2-q8_0-aprender"), find("qwen2-f16")),
    );
    write(
        out,
        "lint_pair",
        "qwen2-vs-llama.pair",
        &join_pair(find_apr("qwen2-q8_0-realizar"), find("llama-q8_0")),
    );
    // Hugging Face `llama3` scaling in the APR against the GGUF's `rope_freqs.weight`.
    {
        let g = read(find("llama-linear-ropefreqs-q8_0"));
        let mut w = gguf_to_apr(&g, Flavour::Aprender);
        w.tensors.retain(|t| t.name != "rope_freqs.weight");
        w.metadata.retain(|(k, _)| k != "rope_scaling");
        w.metadata.push((
            "rope_scaling".into(),
            serde_json::json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
        ));
        write(
            out,
            "lint_pair",
            "apr-llama3-vs-gguf-ropefreqs.pair",
            &join_pair(&w.to_bytes(), find("llama-linear-ropefreqs-q8_0")),
        );
    }
    write(
        out,
        "lint_pair",
        "gguf-vs-gguf.pair",
        &join_pair(find("qwen2-q4_0"), find("qwen2-q8_0")),
    );
    write(
        out,
        "lint_pair",
        "apr-vs-apr.pair",
        &join_pair(
            find_apr("qwen2-q4_0-realizar"),
            find_apr("qwen2-q8_0-aprender"),
        ),
    );

    // The real fixtures (libFuzzer truncates them to -max_len when loading).
    for entry in std::fs::read_dir(root.join("fixtures/gguf")).expect("fixtures/gguf") {
        let p = entry.expect("dir entry").path();
        if p.extension().is_some_and(|e| e == "gguf") {
            let bytes = std::fs::read(&p).expect("read fixture");
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            write(out, "gguf_reader", &name, &bytes);
        }
    }

    // Rule files: the shipped ones and a few small edge cases.
    for entry in std::fs::read_dir(root.join("rules")).expect("rules/") {
        let p = entry.expect("dir entry").path();
        if p.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read(&p).expect("read rule file");
            write(
                out,
                "rules_file",
                &p.file_name().expect("file name").to_string_lossy(),
                &text,
            );
        }
    }
    write(
        out,
        "rules_file",
        "minimal.toml",
        b"arch = \"x\"\nnames = [\"x\"]\n",
    );
    write(
        out,
        "rules_file",
        "formula.toml",
        b"arch = \"qwen2\"\nnames = [\"qwen2\"]\nrope_type = \"neox\"\n[config]\nhead_dim = \"hidden / n_head\"\n[roles.w]\nper_layer = true\ngguf = [\"blk.{i}.attn_q.weight\"]\napr = [\"blk.{i}.attn_q.weight\"]\ndims = [\"n_head * head_dim\", \"hidden - 0 + vocab * 0\"]\n",
    );

    // SafeTensors: small files from the test writer (every dtype, metadata, zero-sized, unusual
    // header order), the real BF16 shards of fixtures/hf/ (truncated to -max_len when loaded) and the
    // real shard index files.
    {
        use apr_lint::format::safetensors::{with_header, write as st_write};
        let st = "safetensors_reader";
        for (i, d) in [
            "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "U16", "U32",
            "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "C64",
        ]
        .into_iter()
        .enumerate()
        {
            let size = [4, 2, 2, 8, 8, 4, 2, 1, 1, 1, 2, 4, 8, 1, 1, 1, 8][i];
            let bytes = vec![0x3cu8; 6 * size];
            write(
                out,
                st,
                &format!("one-{}.safetensors", d.to_lowercase()),
                &st_write(&[("w", d, &[2, 3], &bytes)], &[]),
            );
        }
        let two = st_write(
            &[
                ("model.embed_tokens.weight", "BF16", &[4, 2], &[1u8; 16]),
                ("model.norm.weight", "F32", &[2], &[2u8; 8]),
                ("empty", "F32", &[0, 2], &[]),
            ],
            &[("format", "pt")],
        );
        write(out, st, "three-with-metadata.safetensors", &two);
        write(
            out,
            st,
            "reversed-order.safetensors",
            &with_header(
                r#"{"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#,
                &[1, 2, 3, 4],
            ),
        );
        for entry in std::fs::read_dir(root.join("fixtures/hf")).expect("fixtures/hf") {
            let dir = entry.expect("dir entry").path();
            if !dir.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&dir).expect("fixture dir") {
                let p = f.expect("dir entry").path();
                let name = p
                    .file_name()
                    .expect("file name")
                    .to_string_lossy()
                    .into_owned();
                if name.ends_with(".safetensors") || name.ends_with(".index.json") {
                    let bytes = std::fs::read(&p).expect("read fixture");
                    let tag = dir
                        .file_name()
                        .expect("dir name")
                        .to_string_lossy()
                        .into_owned();
                    write(out, st, &format!("{tag}-{name}"), &bytes);
                }
            }
        }
    }
    eprintln!("seeds written under {}", out.display());
}
