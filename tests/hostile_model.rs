//! Hostile model *contents*, as opposed to hostile bytes (`corrupt_corpus.rs`): files that read
//! cleanly but whose config, tokenizer or weights are nonsense. The whole pipeline runs on each
//! (static checks, weight comparison, probe, `rosetta` trace, every report format) and must not
//! panic, hang or allocate from a header value; where a value is wrong, the finding that names it
//! must be there.
//!
//! Each case is a micro qwen2 or llama model from the project's generator with one metadata value
//! or one set of weights changed, paired with its own bug-free APR conversion (so both files carry
//! the damage, as a converter that copies metadata produces; only per-file checks can see it).

use std::time::Duration;

use apr_lint::Severity;
mod common;

use apr_lint::format::writer::apr::{AprWriter, Flavour};
use apr_lint::format::writer::convert::gguf_to_apr;
use apr_lint::format::writer::generate::{Shape, gguf_model};
use apr_lint::format::writer::gguf::{GgufWriter, MetaValue};
use apr_lint::format::{Source, gguf};
use apr_lint::model::ModelView;
use apr_lint::pipeline::{self, Options, Verdict};
use apr_lint::quant::DType;
use apr_lint::report;
use serde_json::json;

/// hidden 32, 4 heads of 8, 2 KV heads, ffn 64, vocab 300, one layer.
const MICRO: Shape = Shape {
    arch: "qwen2",
    hidden: 32,
    layers: 1,
    heads: 4,
    kv_heads: 2,
    ffn: 64,
    vocab: 300,
    tied: false,
};

struct Case {
    label: String,
    gguf: GgufWriter,
    /// What the findings must show.
    expect: Want,
    /// A change to the APR side only (the GGUF stays as generated): APR-specific keys.
    apr_edit: Option<AprEdit>,
}

type AprEdit = Box<dyn Fn(&mut AprWriter) + std::panic::RefUnwindSafe>;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    /// A code that must be among the findings (and then the verdict must not be a pass when the
    /// code is an error).
    Code(&'static str),
    /// A correct value: no warning or error at all, and a pass.
    Clean,
    /// Anything coded, as long as nothing panics (the value is odd but not wrong, or what is
    /// right depends on a runtime apr-lint does not model).
    Any,
}

const M003: Want = Want::Code("APRL-M003");
const L002: Want = Want::Code("APRL-L002");
const M012: Want = Want::Code("APRL-M012");
const M013: Want = Want::Code("APRL-M013");
const M014: Want = Want::Code("APRL-M014");

/// The code a wrong value of an integer key must get.
type Expect = dyn Fn(u64) -> Want;
/// (code, severity) of every finding.
type Found = Vec<(&'static str, Severity)>;

fn set(w: &mut GgufWriter, key: &str, v: MetaValue) {
    match w.metadata.iter_mut().find(|(k, _)| k == key) {
        Some(e) => e.1 = v,
        None => w.metadata.push((key.to_owned(), v)),
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for arch in ["qwen2", "llama"] {
        let base = gguf_model(&Shape { arch, ..MICRO }, DType::F32, 7);
        let a = arch;
        let mut add = |label: String, expect: Want, f: &dyn Fn(&mut GgufWriter)| {
            let mut gguf = base.clone();
            f(&mut gguf);
            out.push(Case {
                label: format!("{a}: {label}"),
                gguf,
                expect,
                apr_edit: None,
            });
        };
        // The generated model itself.
        add("as generated".into(), Want::Clean, &|_| {});
        // Integer config keys: the correct value is clean, every other value is named.
        // (key, true value, code for a wrong value, code for a value that overflows a formula).
        let int_keys: [(&str, u64, &Expect); 10] = [
            // 4 heads over 2 KV heads, hidden 32: any other count breaks a divisibility the
            // metadata check states, except 2 (head_dim 16: the Q/K/V rows disagree).
            ("attention.head_count", 4, &|v| {
                if v == 2 { L002 } else { M003 }
            }),
            // 1 KV head is a valid GQA config, so the K/V rows disagree; others do not divide 4.
            ("attention.head_count_kv", 2, &|v| {
                if v == 1 || v == 4 { L002 } else { M003 }
            }),
            // hidden must split into 4 heads; a multiple of 4 gives other dims.
            ("embedding_length", 32, &|v| {
                if v % 4 == 0 { L002 } else { M003 }
            }),
            ("feed_forward_length", 64, &|_| L002),
            // More blocks than present: missing tensors (M007) when plausible, one M003 when the
            // count exceeds the tensors; fewer: the extra blocks are one M003.
            ("block_count", 1, &|v| {
                if (2..=10).contains(&v) {
                    Want::Code("APRL-M007")
                } else {
                    M003
                }
            }),
            ("context_length", 32768, &|v| {
                if v == 0 { M013 } else { Want::Any }
            }),
            ("rope.dimension_count", 8, &|_| M013),
            // head_dim from the file: the Q/K/V rows disagree, or the formula overflows u64.
            ("attention.key_length", 8, &|v| {
                if v.checked_mul(4).is_none() {
                    M003
                } else {
                    L002
                }
            }),
            ("attention.value_length", 8, &|_| M013),
            ("vocab_size", 300, &|_| L002),
        ];
        for (key, truth, wrong) in int_keys {
            // The true value, typed as llama.cpp reads it (UINT32): nothing to report.
            add(format!("{key} = {truth} (u32)"), Want::Clean, &|w| {
                set(w, &format!("{a}.{key}"), MetaValue::U32(truth as u32))
            });
            // The true value typed UINT64: llama.cpp's loader reads these keys as `uint32_t` and
            // refuses any other type ("key … has wrong type u64 but expected type u32",
            // `GGUFMeta::GKV::get_kv`). `vocab_size` is read only by its llama loader (qwen2
            // counts the token list), so there the type does not matter.
            let u64_truth = if key == "vocab_size" && a != "llama" {
                Want::Clean
            } else {
                Want::Code("APRL-M005")
            };
            // Other values, typed UINT64: the wrong value is named as well as the type.
            for v in [truth, 0, 1, 2, 3, 5, 64, 1000, u32::MAX as u64, u64::MAX] {
                let expect = if v == truth { u64_truth } else { wrong(v) };
                add(format!("{key} = {v}"), expect, &|w| {
                    set(w, &format!("{a}.{key}"), MetaValue::U64(v))
                });
            }
            for (label, v) in [
                ("-1 (i64)", MetaValue::I64(-1)),
                ("2.5 (f32)", MetaValue::F32(2.5)),
                ("a string", MetaValue::string("4")),
                ("an array", MetaValue::ArrayU32(vec![4, 4])),
                ("a bool", MetaValue::Bool(true)),
            ] {
                add(format!("{key} = {label}"), Want::Code("APRL-M005"), &|w| {
                    set(w, &format!("{a}.{key}"), v.clone())
                });
            }
        }
        for (key, good) in [
            ("rope.freq_base", 10_000.0f32),
            ("attention.layer_norm_rms_epsilon", 1e-5),
        ] {
            add(format!("{key} = {good}"), Want::Clean, &|w| {
                set(w, &format!("{a}.{key}"), MetaValue::F32(good))
            });
            // llama.cpp reads float hyperparameters as f32 and refuses an f64 one.
            add(
                format!("{key} = {good} (f64)"),
                Want::Code("APRL-M005"),
                &|w| set(w, &format!("{a}.{key}"), MetaValue::F64(good as f64)),
            );
            for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -1.0] {
                add(format!("{key} = {v}"), M013, &|w| {
                    set(w, &format!("{a}.{key}"), MetaValue::F32(v))
                });
            }
            add(
                format!("{key} as a string"),
                Want::Code("APRL-M005"),
                &|w| set(w, &format!("{a}.{key}"), MetaValue::string("1e-6")),
            );
        }
        add("rope.freq_base = 0".into(), M013, &|w| {
            set(w, &format!("{a}.rope.freq_base"), MetaValue::F32(0.0))
        });
        // RoPE scaling: llama.cpp divides angles by the factor (0 means none).
        for v in [f32::NAN, f32::INFINITY, 0.0, -1.0, 1e38, 1e-38] {
            let expect = if v.is_finite() && v >= 0.0 {
                Want::Any
            } else {
                M013
            };
            add(format!("rope.scaling.factor = {v}"), expect, &|w| {
                set(w, &format!("{a}.rope.scaling.factor"), MetaValue::F32(v));
                set(
                    w,
                    &format!("{a}.rope.scaling.type"),
                    MetaValue::string("linear"),
                );
            });
        }
        for (label, kind, orig, attn, expect) in [
            ("yarn", "yarn", MetaValue::U32(4096), 1.0, Want::Any),
            (
                // 0 means the training context (llama_context), which the micro model has.
                "yarn, original context 0",
                "yarn",
                MetaValue::U32(0),
                1.0,
                Want::Any,
            ),
            (
                "yarn, original context 2^64-1",
                "yarn",
                MetaValue::U64(u64::MAX),
                1.0,
                Want::Any,
            ),
            (
                "an unknown type",
                "dynamic",
                MetaValue::U32(4096),
                1.0,
                M013,
            ),
            (
                "attn_factor NaN",
                "yarn",
                MetaValue::U32(4096),
                f32::NAN,
                M013,
            ),
            ("attn_factor 0", "linear", MetaValue::U32(4096), 0.0, M013),
        ] {
            add(format!("rope scaling: {label}"), expect, &|w| {
                set(
                    w,
                    &format!("{a}.rope.scaling.type"),
                    MetaValue::string(kind),
                );
                set(w, &format!("{a}.rope.scaling.factor"), MetaValue::F32(4.0));
                set(
                    w,
                    &format!("{a}.rope.scaling.original_context_length"),
                    orig.clone(),
                );
                set(
                    w,
                    &format!("{a}.rope.scaling.attn_factor"),
                    MetaValue::F32(attn),
                );
            });
        }
        add(
            "rope scaling type not a string".into(),
            Want::Code("APRL-M005"),
            &|w| set(w, &format!("{a}.rope.scaling.type"), MetaValue::U32(2)),
        );
        // Tokenizer.
        add("no tokens".into(), M012, &|w| {
            set(w, "tokenizer.ggml.tokens", MetaValue::ArrayString(vec![]))
        });
        add("tokens not strings".into(), Want::Any, &|w| {
            set(
                w,
                "tokenizer.ggml.tokens",
                MetaValue::ArrayU32(vec![1; 300]),
            )
        });
        add("100 000 tokens for 300 rows".into(), M012, &|w| {
            let t = (0..100_000).map(|i| format!("t{i}")).collect();
            set(w, "tokenizer.ggml.tokens", MetaValue::ArrayString(t))
        });
        // llama.cpp aborts on a repeated token string.
        add("tokens all the same".into(), M014, &|w| {
            set(
                w,
                "tokenizer.ggml.tokens",
                MetaValue::ArrayString(vec!["a".into(); 300]),
            )
        });
        for (label, tokens) in [
            ("all empty", vec![String::new(); 300]),
            (
                "not byte-level, with NULs",
                (0..300).map(|i| format!("€{i}\u{0}")).collect(),
            ),
        ] {
            add(format!("tokens {label}"), Want::Any, &|w| {
                set(
                    w,
                    "tokenizer.ggml.tokens",
                    MetaValue::ArrayString(tokens.clone()),
                )
            });
        }
        for m in ["", "a", " ", "  ", "ab", "a "] {
            add(format!("merges [{m:?}]"), M014, &|w| {
                set(
                    w,
                    "tokenizer.ggml.merges",
                    MetaValue::ArrayString(vec![m.into(); 50]),
                )
            });
        }
        for m in ["a b c", "zz zz", "Ġ Ġ", "\u{0} \u{0}"] {
            add(format!("merges [{m:?}]"), Want::Any, &|w| {
                set(
                    w,
                    "tokenizer.ggml.merges",
                    MetaValue::ArrayString(vec![m.into(); 50]),
                )
            });
        }
        add("merges not strings".into(), M014, &|w| {
            set(w, "tokenizer.ggml.merges", MetaValue::ArrayI32(vec![1; 5]))
        });
        add("no merges".into(), M014, &|w| {
            w.metadata.retain(|(k, _)| k != "tokenizer.ggml.merges")
        });
        add("token_type shorter".into(), M014, &|w| {
            set(
                w,
                "tokenizer.ggml.token_type",
                MetaValue::ArrayI32(vec![1; 3]),
            )
        });
        add("token_type values hostile".into(), Want::Any, &|w| {
            set(
                w,
                "tokenizer.ggml.token_type",
                MetaValue::ArrayI32(vec![i32::MIN; 300]),
            )
        });
        add("scores as strings".into(), M014, &|w| {
            set(
                w,
                "tokenizer.ggml.scores",
                MetaValue::ArrayString(vec!["0".into(); 300]),
            )
        });
        add("token_type as f32".into(), M014, &|w| {
            set(
                w,
                "tokenizer.ggml.token_type",
                MetaValue::ArrayF32(vec![1.0; 300]),
            )
        });
        add("scores longer".into(), M014, &|w| {
            set(
                w,
                "tokenizer.ggml.scores",
                MetaValue::ArrayF32(vec![0.0; 301]),
            )
        });
        for id in [300u64, u32::MAX as u64, u64::MAX] {
            add(format!("BOS {id}, add_bos"), M012, &|w| {
                set(w, "tokenizer.ggml.bos_token_id", MetaValue::U64(id));
                set(w, "tokenizer.ggml.add_bos_token", MetaValue::Bool(true));
            });
            add(format!("EOS {id}"), M012, &|w| {
                set(w, "tokenizer.ggml.eos_token_id", MetaValue::U64(id));
            });
        }
        add("BOS -1, add_bos".into(), Want::Any, &|w| {
            set(w, "tokenizer.ggml.bos_token_id", MetaValue::I64(-1));
            set(w, "tokenizer.ggml.add_bos_token", MetaValue::Bool(true));
        });
        for model in ["llama", "bert", "t5", "", "gpt2\u{0}"] {
            add(format!("tokenizer model {model:?}"), Want::Any, &|w| {
                set(w, "tokenizer.ggml.model", MetaValue::string(model))
            });
        }
        add("SentencePiece with NaN scores".into(), Want::Any, &|w| {
            set(w, "tokenizer.ggml.model", MetaValue::string("llama"));
            set(
                w,
                "tokenizer.ggml.scores",
                MetaValue::ArrayF32(vec![f32::NAN; 300]),
            );
        });
        for pre in ["", "unknown-pre", "llama-bpe", "smollm", "gpt2"] {
            add(format!("pre-tokenizer {pre:?}"), Want::Any, &|w| {
                set(w, "tokenizer.ggml.pre", MetaValue::string(pre))
            });
        }
        add("no architecture".into(), Want::Code("APRL-M001"), &|w| {
            w.metadata.retain(|(k, _)| k != "general.architecture")
        });
        add(
            "architecture is a number".into(),
            Want::Code("APRL-M001"),
            &|w| set(w, "general.architecture", MetaValue::U32(3)),
        );
        // Weights.
        for (label, v) in [("NaN", f32::NAN), ("+Inf", f32::INFINITY)] {
            add(
                format!("every weight {label}"),
                Want::Code("APRL-N010"),
                &|w| {
                    for t in &mut w.tensors {
                        t.bytes = v.to_le_bytes().repeat(t.bytes.len() / 4);
                    }
                },
            );
        }
        // Constant weights in both files: they agree, but the reference is dead (a warning).
        for (label, v) in [("3e38", 3e38f32), ("0", 0.0)] {
            add(
                format!("every weight {label}"),
                Want::Code("APRL-N017"),
                &|w| {
                    for t in &mut w.tensors {
                        t.bytes = v.to_le_bytes().repeat(t.bytes.len() / 4);
                    }
                },
            );
        }
        add("norm weights NaN".into(), Want::Code("APRL-N010"), &|w| {
            for t in w.tensors.iter_mut().filter(|t| t.name.contains("norm")) {
                t.bytes = f32::NAN.to_le_bytes().repeat(t.bytes.len() / 4);
            }
        });
    }
    apr_cases(&mut out);
    out
}

/// APR metadata as aprender/realizar read it, with wrong types and values. Each case: the key, the
/// JSON value, and the code that must name it.
fn apr_cases(out: &mut Vec<Case>) {
    let base = gguf_model(&MICRO, DType::F32, 7);
    let m005 = Want::Code("APRL-M005");
    let cases: Vec<(&str, serde_json::Value, Want)> = vec![
        ("hidden_size", json!(32.0), m005),
        ("hidden_size", json!(-32), m005),
        ("hidden_size", json!("32"), m005),
        ("hidden_size", json!(u64::MAX), M003),
        ("num_layers", json!(null), Want::Code("APRL-M002")),
        ("num_layers", json!([1]), m005),
        ("num_heads", json!(0), M003),
        ("num_kv_heads", json!(3), M003),
        ("head_dim", json!(u64::MAX), M003),
        ("head_dim", json!(7), L002),
        ("vocab_size", json!(1u64 << 40), L002),
        ("rope_theta", json!(-1.0), M013),
        ("rope_theta", json!("1e6"), m005),
        ("rms_norm_eps", json!(-1e-6), M013),
        ("rms_norm_eps", json!({"eps": 1e-6}), m005),
        ("rope_type", json!(99), Want::Code("APRL-M011")),
        ("rope_type", json!(0), Want::Code("APRL-M011")),
        ("rope_type", json!("neox"), m005),
        ("tied_embeddings", json!("yes"), m005),
        ("tokenizer.vocabulary", json!([1, 2, 3]), Want::Any),
        ("tokenizer.vocabulary", json!({"a": 1}), Want::Any),
        ("tokenizer.vocabulary", json!(vec!["a"; 1000]), M012),
        ("tokenizer.merges", json!([1, 2]), M014),
        ("tokenizer.merges", json!("a b"), M014),
        ("tokenizer.merges", json!(["ab", "c d"]), M014),
        ("tokenizer.scores", json!([0.0]), M014),
        ("tokenizer.token_type", json!([[1]]), M014),
        ("tokenizer.bos_token_id", json!(1u64 << 40), M012),
        ("tokenizer.model", json!(42), Want::Any),
        ("architecture", json!(null), Want::Code("APRL-M001")),
        ("architecture", json!("qwen2\u{0}"), Want::Code("APRL-M001")),
        ("n_embd", json!(64), Want::Code("APRL-M004")),
        // The GGUF has no scaling: any effective one on the APR side differs from it.
        ("rope_scaling", json!(null), Want::Clean),
        ("rope_scaling", json!("yarn"), m005),
        (
            "rope_scaling",
            json!({"rope_type": "yarn", "factor": "4"}),
            m005,
        ),
        (
            "rope_scaling",
            json!({"rope_type": "linear", "factor": 2.0}),
            Want::Code("APRL-M023"),
        ),
        (
            "rope_scaling",
            json!({"rope_type": "linear", "factor": -2.0}),
            M013,
        ),
        (
            "rope_scaling",
            json!({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 0}),
            Want::Code("APRL-M023"),
        ),
        // Dynamic NTK changes nothing within the trained context; llama.cpp's converter drops it.
        (
            "rope_scaling",
            json!({"type": "dynamic", "factor": 2.0}),
            Want::Clean,
        ),
        (
            "rope_scaling",
            json!({"rope_type": "none", "factor": -2.0}),
            Want::Any,
        ),
        ("rope_scaling", json!({"rope_type": "default"}), Want::Clean),
        (
            "rope_scaling",
            json!({"rope_type": "llama3", "factor": 8.0}),
            Want::Code("APRL-M023"),
        ),
        (
            "rope_scaling",
            json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0}),
            M013,
        ),
        (
            "rope_scaling",
            json!({"rope_type": "llama3", "factor": -8.0}),
            M013,
        ),
        (
            "rope_scaling",
            json!({"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 0}),
            Want::Code("APRL-M023"),
        ),
    ];
    for (key, value, expect) in cases {
        let label = format!("APR `{key}` = {value}");
        let key = key.to_owned();
        out.push(Case {
            label,
            gguf: base.clone(),
            expect,
            apr_edit: Some(Box::new(move |w: &mut AprWriter| {
                match w.metadata.iter_mut().find(|(k, _)| *k == key) {
                    Some(e) => e.1 = value.clone(),
                    None => w.metadata.push((key.clone(), value.clone())),
                }
            })),
        });
    }
}

/// Everything the CLI would do with the pair; the codes found, the verdict.
fn run(gguf_bytes: Vec<u8>, apr_edit: Option<&AprEdit>) -> Result<(Found, Verdict), String> {
    let g = gguf::read(Source::from_vec(gguf_bytes.clone(), "m.gguf"))
        .map_err(|e| format!("the GGUF does not read: {}", e.code()))?;
    let mut apr = gguf_to_apr(&g, Flavour::Aprender);
    if let Some(edit) = apr_edit {
        edit(&mut apr);
    }
    let apr = apr.to_bytes();
    let sources = [
        Source::from_vec(apr, "m.apr"),
        Source::from_vec(gguf_bytes, "m.gguf"),
    ];
    let va = ModelView::from_source(sources[0].clone()).map_err(|e| e.code().to_owned())?;
    let vg = ModelView::from_source(sources[1].clone()).map_err(|e| e.code().to_owned())?;
    let opts = Options::default();
    let o = pipeline::lint(&va, Some(&vg), &opts);
    common::assert_codes_keep_their_class(&o);
    let _ = report::human::render(&o, &[&va, &vg], false, true);
    let _ = report::json::outcome(&o, false);
    common::sarif::valid(&report::sarif::outcome(&o));
    let _ = report::github::outcome(&o);
    for v in [&va, &vg] {
        let r = apr_lint::rules::Resolved::new(v, &opts.rules);
        let _ = report::inspect::human(v, &r);
        let _ = report::inspect::json(v, &r);
    }
    for tf in [false, true] {
        let ro = pipeline::rosetta(&va, &vg, &opts, tf, None);
        let _ = report::rosetta::render_trace(&ro, true);
        let _ = report::rosetta::trace_json(&ro, false);
    }
    Ok((
        o.findings.iter().map(|f| (f.code, f.severity)).collect(),
        o.verdict,
    ))
}

#[test]
fn hostile_model_contents_get_named_not_crashes() {
    let cases = cases();
    let n = cases.len();
    assert!(cases.len() > 250, "{} cases", cases.len());
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    for c in cases {
        let t0 = common::CpuClock::start();
        let got = std::panic::catch_unwind(|| run(c.gguf.to_bytes(), c.apr_edit.as_ref()));
        let dt = t0.elapsed();
        slowest = slowest.max(dt);
        let problem = match got {
            Err(p) => Some(format!(
                "panicked: {}",
                p.downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| p.downcast_ref::<&str>().copied())
                    .unwrap_or("?")
            )),
            Ok(Err(e)) => Some(format!("did not read: {e}")),
            Ok(Ok((found, verdict))) => match c.expect {
                Want::Code(code) if !found.iter().any(|(c, _)| *c == code) => Some(format!(
                    "no {code}; found {:?} ({verdict:?})",
                    found.iter().map(|(c, _)| c).collect::<Vec<_>>()
                )),
                Want::Code(code)
                    if verdict == Verdict::Pass && found.contains(&(code, Severity::Error)) =>
                {
                    Some(format!("an {code} error, but the verdict is a pass"))
                }
                Want::Clean
                    if verdict != Verdict::Pass
                        || found.iter().any(|(_, s)| *s >= Severity::Warning) =>
                {
                    Some(format!("a correct value, but {found:?} ({verdict:?})"))
                }
                _ => None,
            },
        };
        // CPU time of this thread, generous for a debug build; a hang or a per-layer loop over a
        // hostile count takes far longer.
        let problem = problem.or((dt > Duration::from_secs(5)).then(|| format!("took {dt:?}")));
        if let Some(p) = problem {
            failures.push(format!("{}: {p}", c.label));
        }
    }
    eprintln!("{n} cases, slowest {slowest:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Q/K/V biases in a llama file: llama.cpp's llama loads and adds them when present, so they are
/// roles (not unclaimed tensors), compared like any weight.
#[test]
fn llama_qkv_biases_are_claimed_and_compared() {
    let g = gguf_model(
        &Shape {
            arch: "llama",
            ..MICRO
        },
        DType::F32,
        7,
    );
    let gb = g.to_bytes();
    let read = gguf::read(Source::from_vec(gb.clone(), "m.gguf")).expect("reads");
    let vg = ModelView::from_source(Source::from_vec(gb, "m.gguf")).expect("reads");
    let clean = gguf_to_apr(&read, Flavour::Aprender);
    let o = pipeline::lint(
        &ModelView::from_source(Source::from_vec(clean.to_bytes(), "m.apr")).unwrap(),
        Some(&vg),
        &Options::default(),
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", common::describe(&o));
    assert!(
        !o.findings.iter().any(|f| f.code == "APRL-M008"),
        "{}",
        common::describe(&o)
    );
    // A negated Q bias in the APR: named.
    let mut bad = clean.clone();
    let t = bad
        .tensors
        .iter_mut()
        .find(|t| t.name.ends_with("0.self_attn.q_proj.bias") || t.name == "blk.0.attn_q.bias")
        .expect("the converter keeps the Q bias");
    let name = t.name.clone();
    t.bytes = t
        .bytes
        .chunks_exact(4)
        .flat_map(|c| (-f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes())
        .collect();
    let o = pipeline::lint(
        &ModelView::from_source(Source::from_vec(bad.to_bytes(), "m.apr")).unwrap(),
        Some(&vg),
        &Options::default(),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", common::describe(&o));
    assert!(
        o.findings
            .iter()
            .any(|f| f.severity == Severity::Error && f.tensor.as_deref() == Some(&name)),
        "{name}\n{}",
        common::describe(&o)
    );
}
