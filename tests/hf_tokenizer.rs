//! Hugging Face `tokenizer.json` + `tokenizer_config.json` (written by transformers 5.25 for the
//! oracle models, `fixtures/hf/`): the token data equals the GGUF's of the same vocabulary, and
//! the hand-written BPE gives Hugging Face's ids (`fixtures/hf/<model>/ids.json`, copied from
//! the oracle's PROVENANCE.json) and llama.cpp's on the awkward prompts.

mod common;
use common::*;

use apr_lint::format::gguf::Value;
use apr_lint::model::Tokenizer;
use apr_lint::model::hf_tokenizer::{HfTokenizer, read_tokenizer, token_type};
use apr_lint::model::tokenize::TextTokenizer;

/// (HF fixture directory, the GGUF fixture of the same vocabulary).
const MODELS: &[(&str, &str)] = &[
    ("tiny-qwen2-f32", "gguf/tiny-qwen2-lq-q4_k_m.gguf"),
    ("tiny-llama-f32", "gguf/tiny-llama-q8_0.gguf"),
    ("tiny-qwen2-tied-f32", "gguf/tiny-qwen2-tied-q8_0.gguf"),
];

fn hf(model: &str) -> HfTokenizer {
    let json = std::fs::read(fixture(&format!("hf/{model}/tokenizer.json"))).unwrap();
    let cfg = std::fs::read(fixture(&format!("hf/{model}/tokenizer_config.json"))).unwrap();
    read_tokenizer(&json, Some(&cfg)).unwrap()
}

fn oracle_ids(model: &str) -> (String, Vec<u32>) {
    let text = std::fs::read_to_string(fixture(&format!("hf/{model}/ids.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ids = v["hf_tokenizer_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    (v["prompt"].as_str().unwrap().to_owned(), ids)
}

#[test]
fn ids_equal_hugging_faces() {
    for (model, _) in MODELS {
        let t = hf(model);
        assert!(t.findings.is_empty(), "{model}: {:?}", t.findings);
        let (prompt, ids) = oracle_ids(model);
        let tok = TextTokenizer::from_hf(&t).unwrap();
        assert_eq!(tok.encode(&prompt), ids, "{model}");
    }
}

/// Token strings, merges, token types, BOS/EOS, add_bos and the pre-tokenizer name equal the
/// GGUF's (written by gguf-py from the same vocabulary).
#[test]
fn token_data_equals_the_gguf() {
    for (model, gguf) in MODELS {
        let t = hf(model);
        let g = gguf_file(gguf);
        let strings = |k: &str| match g.get(k).map(|kv| &kv.value) {
            Some(Value::Array(a)) => g.array_strings(a).into_iter().map(str::to_owned).collect(),
            _ => Vec::<String>::new(),
        };
        let int = |k: &str| g.get(k).and_then(|kv| kv.value.as_int());
        assert_eq!(t.tokens, strings("tokenizer.ggml.tokens"), "{model} tokens");
        assert_eq!(t.merges, strings("tokenizer.ggml.merges"), "{model} merges");
        let types: Vec<i32> = match g.get("tokenizer.ggml.token_type").map(|kv| &kv.value) {
            Some(Value::Array(a)) => g.array_numbers(a).into_iter().map(|x| x as i32).collect(),
            _ => panic!("{gguf}: no token types"),
        };
        assert_eq!(t.token_types, types, "{model} token types");
        assert_eq!(
            t.model,
            g.get("tokenizer.ggml.model")
                .and_then(|kv| kv.value.as_str())
                .unwrap()
        );
        assert_eq!(
            t.pre.as_deref(),
            g.get("tokenizer.ggml.pre").and_then(|kv| kv.value.as_str()),
            "{model} pre"
        );
        assert_eq!(
            t.bos.map(i128::from),
            int("tokenizer.ggml.bos_token_id"),
            "{model} bos"
        );
        assert_eq!(
            t.eos.map(i128::from),
            int("tokenizer.ggml.eos_token_id"),
            "{model} eos"
        );
        let add_bos = g
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|kv| kv.value.as_bool());
        assert_eq!(
            t.add_bos.unwrap_or(false),
            add_bos.unwrap_or(false),
            "{model} add_bos"
        );
        assert!(
            t.token_types[509..]
                .iter()
                .all(|&x| x == token_type::CONTROL)
        );
        // The summary `inspect` and the checks read (a GGUF without `add_bos_token` and a
        // tokenizer that adds none agree).
        let mut summary = Tokenizer::from_hf(&t);
        let mut theirs = gguf_view(gguf).tokenizer;
        summary.add_bos = summary.add_bos.filter(|&b| b);
        theirs.add_bos = theirs.add_bos.filter(|&b| b);
        assert_eq!(summary, theirs, "{model} summary");
    }
}

/// `fixtures/tokenizer/llama_cpp_ids.tsv`: llama.cpp's ids for awkward prompts with the GGUFs of
/// the same vocabularies; Hugging Face's tokenizer gives llama.cpp's ids on the oracle prompt
/// (PROVENANCE.json), and ours, built from `tokenizer.json`, gives them on all of these.
#[test]
fn awkward_prompts_tokenize_as_llama_cpp_does() {
    let tsv = std::fs::read_to_string(fixture("tokenizer/llama_cpp_ids.tsv")).unwrap();
    let mut rows = 0;
    for (model, gguf) in &MODELS[..2] {
        let tok = TextTokenizer::from_hf(&hf(model)).unwrap();
        let gguf_name = gguf.trim_start_matches("gguf/");
        for line in tsv.lines().filter(|l| l.starts_with(gguf_name)) {
            let cols: Vec<&str> = line.split('\t').collect();
            let prompt: String = serde_json::from_str(cols[1]).unwrap();
            let ids: Vec<u32> = serde_json::from_str(cols[2]).unwrap();
            assert_eq!(tok.encode(&prompt), ids, "{model} {prompt:?}");
            rows += 1;
        }
    }
    assert!(rows >= 30, "{rows}");
}
