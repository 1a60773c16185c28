//! Each file's own tokenizer against llama.cpp's ids for the oracle prompt.

mod common;
use common::*;

use apr_lint::format::writer::apr::Flavour;

// shared/oracle/act/<model>/tokens.npy: llama.cpp's tokenization of "Hello my name is Tiny".
const QWEN2_IDS: &[u32] = &[357, 267, 121, 273, 359, 32, 336, 32, 455];
const LLAMA_IDS: &[u32] = &[509, 357, 267, 121, 273, 359, 32, 336, 32, 455];

#[test]
fn gguf_tokenizers_match_llama_cpp() {
    let q = gguf_view("gguf/tiny-qwen2-lq-q4_k_m.gguf");
    let t = q.text_tokenizer().unwrap();
    assert_eq!(t.encode("Hello my name is Tiny"), QWEN2_IDS);
    let l = gguf_view("gguf/tiny-llama-q8_0.gguf");
    let t = l.text_tokenizer().unwrap();
    assert_eq!(t.encode("Hello my name is Tiny"), LLAMA_IDS);
}

#[test]
fn apr_tokenizer_agrees_with_its_gguf() {
    for (g, ids) in [
        ("gguf/tiny-qwen2-lq-q4_k_m.gguf", QWEN2_IDS),
        ("gguf/tiny-llama-q8_0.gguf", LLAMA_IDS),
    ] {
        let a = apr_view(&clean_apr(g, Flavour::Aprender));
        let t = a.text_tokenizer().unwrap();
        assert_eq!(t.encode("Hello my name is Tiny"), ids, "{g}");
    }
}

#[test]
fn pruned_tokenizer_gives_the_same_ids() {
    for g in [
        "gguf/tiny-qwen2-lq-q4_k_m.gguf",
        "gguf/tiny-llama-q8_0.gguf",
    ] {
        let v = gguf_view(g);
        let full = v.text_tokenizer().unwrap();
        for text in [
            "Hello my name is Tiny",
            "2+2=",
            "  spaces\n\nand it's 12345 ünïcode!",
            "",
        ] {
            assert_eq!(v.tokenize(text).unwrap(), full.encode(text), "{g} {text:?}");
        }
    }
}

/// `fixtures/tokenizer/llama_cpp_ids.tsv`: llama.cpp's `llama-tokenize --ids` for awkward prompts
/// (contractions, digit runs, whitespace runs, tabs and newlines, accents, CJK, emoji, punctuation)
/// with the qwen2 and llama-bpe byte-level BPE tokenizers of the oracle models and a SentencePiece
/// vocabulary written by gguf-py (`scripts/tokenizer_oracle.sh` made it).
#[test]
fn awkward_prompts_tokenize_as_llama_cpp_does() {
    let tsv = std::fs::read_to_string(fixture("tokenizer/llama_cpp_ids.tsv")).unwrap();
    let mut models = std::collections::BTreeMap::new();
    let mut rows = 0;
    let mut wrong = Vec::new();
    for line in tsv.lines().filter(|l| !l.is_empty()) {
        let mut cols = line.split('\t');
        let (Some(model), Some(prompt), Some(ids)) = (cols.next(), cols.next(), cols.next()) else {
            panic!("bad row {line:?}");
        };
        let prompt: String = serde_json::from_str(prompt).unwrap();
        let ids: Vec<u32> = serde_json::from_str(ids).unwrap();
        let t = models.entry(model.to_owned()).or_insert_with(|| {
            let path = ["gguf", "tokenizer"]
                .iter()
                .map(|d| format!("{d}/{model}"))
                .find(|p| fixture(p).exists())
                .unwrap_or_else(|| panic!("no fixture {model}"));
            gguf_view(&path).text_tokenizer().unwrap()
        });
        let got = t.encode(&prompt);
        if got != ids {
            wrong.push(format!(
                "{model} {prompt:?}: llama.cpp {ids:?}, apr-lint {got:?}"
            ));
        }
        rows += 1;
    }
    assert!(rows >= 50, "{rows} rows");
    assert!(
        wrong.is_empty(),
        "{} of {rows} differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The lint scans the token and merge lists and tokenizes the probe's prompt in one pass
/// (`tokenizer_scan_for`): the scan and the ids are what the two separate passes give, for BPE and
/// SentencePiece vocabularies, GGUF and APR, and a later text that was not the prompt.
#[test]
fn one_pass_scan_and_prompt_give_what_two_passes_give() {
    let mut views: Vec<(String, Box<dyn Fn() -> apr_lint::model::ModelView>)> = Vec::new();
    for g in [
        "gguf/tiny-qwen2-lq-q4_k_m.gguf",
        "gguf/tiny-llama-q8_0.gguf",
        "tokenizer/spm-vocab.gguf",
    ] {
        views.push((g.to_owned(), Box::new(move || gguf_view(g))));
    }
    for g in [
        "gguf/tiny-qwen2-lq-q4_k_m.gguf",
        "gguf/tiny-llama-q8_0.gguf",
    ] {
        let w = clean_apr(g, Flavour::Aprender);
        views.push((format!("{g} as APR"), Box::new(move || apr_view(&w))));
    }
    for (name, open) in &views {
        for prompt in ["2+2=", "Hello my name is Tiny", "  a\n\tb 12345 ü!", ""] {
            let two = open();
            let one = open();
            let scan = one.tokenizer_scan_for(prompt).clone();
            assert_eq!(scan, two.scan_tokenizer(), "{name} {prompt:?}");
            assert_eq!(
                one.tokenize(prompt),
                two.tokenize(prompt),
                "{name} {prompt:?}"
            );
            let other = "other text 7";
            assert_eq!(one.tokenize(other), two.tokenize(other), "{name}");
        }
    }
}
