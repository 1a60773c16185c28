//! Static checks on clean and damaged pairs built with our writers from real (gguf-py written) GGUFs.

mod common;
use common::*;

use apr_lint::format::writer::apr::{AprWriter, Flavour, apr_code};
use apr_lint::pipeline::Verdict;
use apr_lint::quant::DType;
use serde_json::json;

const QWEN: &str = "gguf/tiny-qwen2-lq-q4_k_m.gguf";
const LLAMA: &str = "gguf/tiny-llama-q8_0.gguf";
const TIED: &str = "gguf/tiny-qwen2-tied-q8_0.gguf";

fn pair_outcome(w: &AprWriter, g: &str) -> apr_lint::pipeline::Outcome {
    let a = apr_view(w);
    let b = gguf_view(g);
    let o = lint_pair(&a, &b);
    check_findings(
        &o,
        &[
            ("model.apr".into(), a.source().len()),
            (b.path().display().to_string(), b.source().len()),
        ],
    );
    o
}

/// The findings of `o` with `code`.
fn with_code<'o>(o: &'o apr_lint::pipeline::Outcome, code: &str) -> Vec<&'o apr_lint::Finding> {
    o.findings.iter().filter(|f| f.code == code).collect()
}

/// The `[APR-LOAD]` summary log of `view` with the words of `findings`.
fn load_log_lines(view: &apr_lint::ModelView, findings: &[apr_lint::Finding]) -> Vec<String> {
    let rules = apr_lint::rules::RuleSet::builtin();
    let mut got: Vec<String> = Vec::new();
    apr_lint::load_log(
        view,
        &rules,
        findings,
        apr_lint::LoadLogMode::Summary,
        |l| got.push(l.to_owned()),
    );
    got
}

fn set_meta(w: &mut AprWriter, key: &str, v: serde_json::Value) {
    match w.metadata.iter_mut().find(|(k, _)| k == key) {
        Some(e) => e.1 = v,
        None => w.metadata.push((key.into(), v)),
    }
}

#[test]
fn oracle_files_lint_clean_alone_and_as_pairs() {
    for g in [QWEN, LLAMA, TIED] {
        let gv = gguf_view(g);
        let o = lint_one(&gv);
        assert_eq!(o.verdict, Verdict::Pass, "{g} alone:\n{}", describe(&o));
        for flavour in [Flavour::Aprender, Flavour::Realizar] {
            let w = clean_apr(g, flavour);
            let av = apr_view(&w);
            let o1 = lint_one(&av);
            assert_eq!(
                o1.verdict,
                Verdict::Pass,
                "{g} {flavour:?} APR alone:\n{}",
                describe(&o1)
            );
            let o2 = pair_outcome(&w, g);
            assert_eq!(
                o2.verdict,
                Verdict::Pass,
                "{g} {flavour:?} pair:\n{}",
                describe(&o2)
            );
            assert!(o2.tensors_compared > 0);
        }
    }
}

#[test]
fn all_2d_dims_left_in_gguf_order() {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    for t in &mut w.tensors {
        if t.dims.len() == 2 {
            t.dims.reverse();
        }
    }
    let o = pair_outcome(&w, QWEN);
    assert_eq!(o.verdict, Verdict::Fail);
    for t in [
        "model.embed_tokens.weight",
        "lm_head.weight",
        "model.layers.0.self_attn.k_proj.weight",
        "model.layers.1.mlp.down_proj.weight",
    ] {
        assert!(
            has(&o, "dims-reversed", Some(t)),
            "{t} not named dims-reversed:\n{}",
            describe(&o)
        );
    }
}

#[test]
fn gh186_lm_head_and_embedding_dims_reversed() {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    for t in &mut w.tensors {
        if t.name == "lm_head.weight" || t.name == "model.embed_tokens.weight" {
            t.dims.reverse();
        }
    }
    let o = pair_outcome(&w, QWEN);
    assert!(
        has(&o, "dims-reversed", Some("lm_head.weight")),
        "{}",
        describe(&o)
    );
    assert!(has(&o, "dims-reversed", Some("model.embed_tokens.weight")));
    // Nothing else is accused.
    assert!(
        errors(&o).iter().all(|f| f
            .tensor
            .as_deref()
            .is_none_or(|t| t == "lm_head.weight" || t == "model.embed_tokens.weight")),
        "{}",
        describe(&o)
    );
    // The APR alone shows it too, from the rules.
    let alone = lint_one(&apr_view(&w));
    assert!(has(&alone, "dims-reversed", Some("lm_head.weight")));
}

#[test]
fn k_projection_sized_with_n_head_under_gqa() {
    // [H, kv*hd] = [256, 128] instead of [kv*hd, H] = [128, 256] is a reversal; a K sized with
    // n_head (256 rows) is a shape mismatch.
    let mut w = clean_apr(LLAMA, Flavour::Realizar);
    let k = w
        .tensors
        .iter_mut()
        .find(|t| t.name == "blk.0.attn_k.weight")
        .expect("k");
    k.dims = vec![256, 128];
    let o = pair_outcome(&w, LLAMA);
    assert!(
        has(&o, "dims-reversed", Some("blk.0.attn_k.weight")),
        "{}",
        describe(&o)
    );
    let mut w = clean_apr(LLAMA, Flavour::Realizar);
    let k = w
        .tensors
        .iter_mut()
        .find(|t| t.name == "blk.1.attn_k.weight")
        .expect("k");
    k.dims = vec![256, 256];
    k.bytes.extend(vec![0u8; k.bytes.len()]);
    let o = lint_one(&apr_view(&w));
    assert!(
        has(&o, "shape-mismatch", Some("blk.1.attn_k.weight")),
        "{}",
        describe(&o)
    );
}

#[test]
fn missing_q_bias_in_qwen2() {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    w.tensors
        .retain(|t| t.name != "model.layers.1.self_attn.q_proj.bias");
    let o = pair_outcome(&w, QWEN);
    let f = o
        .findings
        .iter()
        .find(|f| f.class() == "missing-tensor" && f.layer == Some(1))
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert!(f.message.contains("attn_q_bias"));
    assert_eq!(o.verdict, Verdict::Fail);
}

#[test]
fn gh190_layers_prefix_without_model() {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    for t in &mut w.tensors {
        if let Some(rest) = t.name.strip_prefix("model.layers.0.") {
            t.name = format!("layers.0.{rest}");
        }
    }
    let o = lint_one(&apr_view(&w));
    let f = o
        .findings
        .iter()
        .find(|f| {
            f.class() == "unexpected-tensor"
                && f.tensor.as_deref() == Some("layers.0.self_attn.q_proj.weight")
        })
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert!(
        f.message.contains("model.layers.0.self_attn.q_proj.weight"),
        "{}",
        f.message
    );
    assert!(has(&o, "missing-tensor", None));
}

#[test]
fn zero_byte_lm_head() {
    let mut w = clean_apr(TIED, Flavour::Aprender);
    let h = w
        .tensors
        .iter_mut()
        .find(|t| t.name == "lm_head.weight")
        .expect("synthesized lm_head");
    h.bytes.clear();
    let o = pair_outcome(&w, TIED);
    assert!(
        has(&o, "tied-embedding", Some("lm_head.weight")),
        "{}",
        describe(&o)
    );
    assert!(
        !has(&o, "container", Some("lm_head.weight")),
        "a 0-byte lm_head is not corruption:\n{}",
        describe(&o)
    );
}

#[test]
fn config_values_disagreeing() {
    for (key, v, what) in [
        ("rope_theta", json!(10000.0), "rope θ"),
        ("rms_norm_eps", json!(1e-5), "rms eps"),
        ("num_kv_heads", json!(4), "KV head count"),
    ] {
        let mut w = clean_apr(QWEN, Flavour::Aprender);
        set_meta(&mut w, key, v);
        let o = pair_outcome(&w, QWEN);
        assert!(
            o.findings
                .iter()
                .any(|f| f.class() == "metadata-mismatch" && f.message.contains(what)),
            "{key}:\n{}",
            describe(&o)
        );
        assert_eq!(o.verdict, Verdict::Fail, "{key}");
    }
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    set_meta(&mut w, "rope_type", json!(0));
    let o = pair_outcome(&w, QWEN);
    assert!(
        o.findings
            .iter()
            .any(|f| f.class() == "metadata-mismatch" && f.message.contains("rope_type")),
        "{}",
        describe(&o)
    );
}

#[test]
fn tokenizer_vocab_of_another_size() {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    let vocab = w
        .metadata
        .iter_mut()
        .find(|(k, _)| k == "tokenizer.vocabulary")
        .expect("vocabulary");
    if let serde_json::Value::Array(a) = &mut vocab.1 {
        a.truncate(500);
    }
    let o = pair_outcome(&w, QWEN);
    assert!(has(&o, "tokenizer-mismatch", None), "{}", describe(&o));
}

#[test]
fn bf16_code_on_f16_sized_data_is_readable_but_flagged_by_size_only_when_sizes_differ() {
    // BF16 and F16 have the same size: statically the label is plausible (the numeric stage sees the
    // values). A BF16 code on F32-sized data is a size mismatch the reader reports.
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    let t = w
        .tensors
        .iter_mut()
        .find(|t| t.name == "model.norm.weight")
        .expect("norm");
    t.code = apr_code(DType::BF16);
    let o = lint_one(&apr_view(&w));
    let f = o
        .findings
        .iter()
        .find(|f| f.code == "APRL-F031")
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert_eq!(f.tensor.as_deref(), Some("model.norm.weight"));
}

#[test]
fn alias_duplicates_drop_all_metadata_in_realizar() {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    w.metadata.push(("n_embd".into(), json!(256)));
    let o = lint_one(&apr_view(&w));
    let f = o
        .findings
        .iter()
        .find(|f| f.code == "APRL-M004")
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert_eq!(f.class(), "metadata-mismatch");
}

#[test]
fn ambiguous_dtype_code_is_named() {
    let mut w = clean_apr(LLAMA, Flavour::Realizar);
    // Realizar writes Q8_0 as code 8, which aprender reads as APR_Q4.
    assert!(w.tensors.iter().any(|t| t.code == 8));
    let o = lint_one(&apr_view(&w));
    assert!(has(&o, "ambiguous-dtype-code", None), "{}", describe(&o));
    w.tensors.clear();
}

#[test]
fn square_matrices_are_not_claimed_clean() {
    let w = clean_apr(QWEN, Flavour::Aprender);
    let o = lint_one(&apr_view(&w));
    let f = o
        .findings
        .iter()
        .find(|f| f.code == "APRL-L004")
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert_eq!(f.severity, apr_lint::Severity::Info);
    assert!(f.message.contains("q_proj"));
}

#[test]
fn column_major_flag() {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    w.flags |= 0x0800;
    let o = lint_one(&apr_view(&w));
    assert!(has(&o, "column-major", None), "{}", describe(&o));
}

#[test]
fn tensor_shapes_metadata_disagreeing_with_index() {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    set_meta(
        &mut w,
        "tensor_shapes",
        json!({"lm_head.weight": [256, 512]}),
    );
    let o = lint_one(&apr_view(&w));
    assert!(
        o.findings
            .iter()
            .any(|f| f.code == "APRL-M006" && f.tensor.as_deref() == Some("lm_head.weight")),
        "{}",
        describe(&o)
    );
}

#[test]
fn unknown_architecture_is_inconclusive_not_pass() {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    set_meta(&mut w, "architecture", json!("mamba"));
    let o = lint_one(&apr_view(&w));
    assert_eq!(o.verdict, Verdict::Inconclusive, "{}", describe(&o));
}

#[test]
fn pair_order_does_not_matter() {
    let w = clean_apr(QWEN, Flavour::Aprender);
    let mut bad = w.clone();
    set_meta(&mut bad, "rope_theta", json!(10000.0));
    let (a, b) = apr_lint::pipeline::order_pair(gguf_view(QWEN), apr_view(&bad));
    let o1 = lint_pair(&a, &b);
    let o2 = lint_pair(&apr_view(&bad), &gguf_view(QWEN));
    let codes = |o: &apr_lint::pipeline::Outcome| {
        o.findings
            .iter()
            .map(|f| (f.code, f.tensor.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(codes(&o1), codes(&o2));
}

#[test]
fn old_bf16_code_2_on_f16_sized_data_is_ambiguous() {
    // Old aprender wrote BF16 under code 2, which realizar reads as Q4_0 and aprender now rejects.
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    let t = w
        .tensors
        .iter_mut()
        .find(|t| t.name == "model.norm.weight")
        .expect("norm");
    // 256 F32 values → 256 BF16 values (2n bytes).
    t.bytes = t.bytes.chunks_exact(4).flat_map(|c| [c[2], c[3]]).collect();
    t.code = 2;
    let v = apr_view(&w);
    let norm = v.tensor("model.norm.weight").unwrap();
    assert_eq!(norm.dtype, DType::BF16, "resolved by byte size");
    let o = lint_one(&v);
    let f = o
        .findings
        .iter()
        .find(|f| f.class() == "ambiguous-dtype-code")
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert_eq!(f.tensor.as_deref(), Some("model.norm.weight"));
    assert!(
        f.message.contains("code 2") && f.message.contains("Q4_0"),
        "{}",
        f.message
    );
}

/// §6: a loader gets the same `[APR-LOAD]` lines through a callback, with the words of the findings
/// it passes (here the main job's).
#[test]
fn load_log_through_a_callback() {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    w.tensors
        .iter_mut()
        .filter(|t| t.name == "lm_head.weight")
        .for_each(|t| t.dims.reverse());
    let a = apr_view(&w);
    let o = lint_pair(&a, &gguf_view(QWEN));
    let rules = apr_lint::rules::RuleSet::builtin();
    let got = load_log_lines(&a, &o.findings);
    let n = w.tensors.len();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        got[2].ends_with("- DIMS REVERSED (expected [512, 256]; APRL-L001)"),
        "{got:?}"
    );
    assert_eq!(
        got[3],
        format!("[APR-LOAD] {n} tensors: {} OK, 1 DIMS REVERSED", n - 1)
    );
    // Every tensor in full mode; nothing for a GGUF.
    let mut count = 0;
    apr_lint::load_log(&a, &rules, &o.findings, apr_lint::LoadLogMode::Full, |_| {
        count += 1
    });
    assert_eq!(count, 3 * n + 1);
    let mut count = 0;
    apr_lint::load_log(
        &gguf_view(QWEN),
        &rules,
        &[],
        apr_lint::LoadLogMode::Full,
        |_| count += 1,
    );
    assert_eq!(count, 0);
}

/// §7: a wrong `num_heads` in the APR leads with the metadata fix the reference and the tensors
/// agree on, not with "check the converter's shape arithmetic" on every K/V tensor.
#[test]
fn wrong_num_heads_leads_with_the_metadata_fix() {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    set_meta(&mut w, "num_heads", json!(8));
    let o = pair_outcome(&w, QWEN);
    let want = "set `num_heads` to 4 (the reference and the tensor shapes agree on 4)";
    let first = errors(&o)[0];
    assert_eq!(first.class(), "metadata-mismatch", "{}", describe(&o));
    assert_eq!(first.help, want, "{}", describe(&o));
    assert!(
        o.findings
            .iter()
            .any(|f| f.code == "APRL-M023" && f.help == want),
        "{}",
        describe(&o)
    );
    let shapes = with_code(&o, "APRL-L002");
    assert!(!shapes.is_empty(), "{}", describe(&o));
    // The reference narrows the shape mismatches' help to the one fix too.
    for f in shapes {
        assert_eq!(
            f.help,
            "set `num_heads` to 4: with it every tensor's dims fit the rules, this one's included"
        );
    }
    // Alone, the file still leads with the metadata (the shapes allow two single fixes).
    let alone = lint_one(&apr_view(&w));
    let first = errors(&alone)[0];
    assert_eq!(first.code, "APRL-M003", "{}", describe(&alone));
    assert_eq!(
        first.help,
        "set `num_heads` to 4 or `num_kv_heads` to 4 (each makes every tensor's dims fit the rules)"
    );
    let shapes = with_code(&alone, "APRL-L002");
    assert!(!shapes.is_empty(), "{}", describe(&alone));
    for f in shapes {
        assert_eq!(
            f.help,
            "set `num_heads` to 4 or `num_kv_heads` to 4: with it every tensor's dims fit the rules, this one's included"
        );
    }
}

/// §7: when the reference's metadata contradicts its own tensors, the correct APR is not told to
/// change.
#[test]
fn a_reference_contradicting_its_own_shapes_is_named() {
    let g = view_of(
        gguf_with_keys(QWEN, &[("{arch}.attention.head_count", "8")]),
        "ref.gguf",
    );
    let a = apr_view(&clean_apr(QWEN, Flavour::Aprender));
    let o = lint_pair(&a, &g);
    let f = o
        .findings
        .iter()
        .find(|f| f.code == "APRL-M023" && f.message.contains("head count"))
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert!(
        f.message
            .contains("the reference contradicts its own tensor shapes, which agree on 4"),
        "{}",
        f.message
    );
    assert!(f.help.starts_with("keep `num_heads` = 4"), "{}", f.help);
    assert!(
        !o.findings
            .iter()
            .any(|f| f.help.contains("set `num_heads` to 8")),
        "{}",
        describe(&o)
    );
}

/// When `num_heads` is what the K/V shapes contradict, their `[APR-LOAD]` lines point at the
/// metadata, not at the tensors: the word says the config is at fault and the note gives the key.
#[test]
fn wrong_num_heads_load_log_points_at_the_metadata() {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    set_meta(&mut w, "num_heads", json!(8));
    let a = apr_view(&w);
    for (what, findings) in [
        ("pair", lint_pair(&a, &gguf_view(QWEN)).findings),
        ("alone", lint_one(&a).findings),
    ] {
        let got = load_log_lines(&a, &findings);
        let k_v: Vec<&String> = got.iter().filter(|l| l.contains("Actual layout")).collect();
        // K and V weights and biases of both layers.
        assert_eq!(k_v.len(), 8, "{what}: {got:#?}");
        for l in &k_v {
            assert!(
                l.contains(" - METADATA WRONG (the metadata gives [64")
                    && l.ends_with("; APRL-L002)"),
                "{what}: {l}"
            );
        }
        assert_eq!(
            got.last().unwrap(),
            "[APR-LOAD] 27 tensors: 19 OK, 8 METADATA WRONG",
            "{what}"
        );
    }
    // A shape mismatch no config value explains still blames the tensor.
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    let k = w
        .tensors
        .iter_mut()
        .find(|t| t.name == "model.layers.1.self_attn.k_proj.weight")
        .expect("k");
    k.dims = vec![32, 1024];
    let a = apr_view(&w);
    let got = load_log_lines(&a, &lint_one(&a).findings);
    assert!(
        got.iter()
            .any(|l| l.ends_with("- SHAPE MISMATCH (expected [128, 256]; APRL-L002)")),
        "{got:#?}"
    );
}
