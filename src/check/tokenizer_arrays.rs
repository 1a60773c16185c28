//! The tokenizer's parallel arrays, one file at a time: a byte-level BPE vocabulary without merges,
//! merges that are not strings or not `"left right"`, and score or token-type arrays whose length
//! is not the token count. (Vocabulary size against the embedding is `APRL-M012`; the two files'
//! tokenizers against each other are `APRL-M025`.)

use crate::diag::{Finding, Span, lint};
use crate::format::Container;
use crate::format::gguf::{Value, ValueType};
use crate::model::ModelView;
use crate::model::tokenizer::{Tokenizer, count_array};

lint!(TOKENIZER_ARRAYS, "APRL-M014", "tokenizer-mismatch", Error, "the tokenizer's arrays are malformed",
"What it catches: a byte-level BPE (`gpt2`) tokenizer with tokens but no merges; merges that are not strings, or entries that are not two non-empty parts split by a space (`\"Ġ t\"`); a scores or token-type array whose length differs from the token list's.
Why it matters: llama.cpp refuses a BPE vocabulary without merges, and splits each merge at its first space after the first byte: an entry without one is no merge, so words fall apart into bytes and the token ids no longer match what the model was trained on. Loaders index scores and token types by token id: a shorter array is read past its end (or the tokenizer is refused), a longer one belongs to another vocabulary.
How to fix: copy `tokenizer.ggml.merges` / `tokenizer.merges`, `scores` and `token_type` from the same tokenizer as the token list (gguf-py's `SpecialVocab` and `add_token_*` write all of them from one `tokenizer.json`).
Precedent: aprender #1623 (tokenizer of another model); llama.cpp `llama-vocab.cpp` (\"cannot find tokenizer merges in model file\").");

pub static ALL: &[&crate::diag::Lint] = &[&TOKENIZER_ARRAYS];

/// At most this many malformed merges are quoted.
const QUOTED: usize = 3;

pub fn check(view: &ModelView, out: &mut Vec<Finding>) {
    let c = &view.container;
    let tk = &view.tokenizer;
    let (merges_key, scores_key, types_key) = match c {
        Container::Gguf(_) => (
            "tokenizer.ggml.merges",
            "tokenizer.ggml.scores",
            "tokenizer.ggml.token_type",
        ),
        Container::Apr(_) => (
            "tokenizer.merges",
            "tokenizer.scores",
            "tokenizer.token_type",
        ),
    };
    let bpe = tk.model.as_deref() == Some("gpt2");
    let merges = array(c, merges_key);
    match &merges {
        None if bpe && tk.n_tokens.is_some_and(|n| n > 0) => out.push(
            Finding::new(&TOKENIZER_ARRAYS, format!("the byte-level BPE (`gpt2`) tokenizer has {} tokens but no `{merges_key}`: nothing can be merged", tk.n_tokens.unwrap_or(0)))
                .help("write the merges of this tokenizer"),
        ),
        Some(a) if !a.strings => out.push(
            at(Finding::new(&TOKENIZER_ARRAYS, format!("`{merges_key}` is not an array of strings")), a.span)
                .help("write each merge as a string \"left right\""),
        ),
        Some(a) => {
            let mut bad = 0u64;
            let mut quoted = Vec::new();
            let mut rank = 0u64;
            Tokenizer::visit_merges(c, &mut |m| {
                if !is_merge(m) {
                    bad += 1;
                    if quoted.len() < QUOTED {
                        quoted.push(format!("#{rank} {m:?}"));
                    }
                }
                rank += 1;
            });
            if bad > 0 {
                out.push(
                    at(
                        Finding::new(&TOKENIZER_ARRAYS, format!("{bad} of the {rank} entries of `{merges_key}` are not \"left right\" with two non-empty parts (e.g. {})", quoted.join(", "))),
                        a.span,
                    )
                    .help("write the merges exactly as the tokenizer's `merges` list has them"),
                );
            }
        }
        None => {}
    }
    let Some(n) = tk.n_tokens else { return };
    for key in [scores_key, types_key] {
        if let Some(a) = array(c, key)
            && a.len != n
        {
            out.push(
                at(
                    Finding::new(
                        &TOKENIZER_ARRAYS,
                        format!("`{key}` has {} entries for {n} tokens", a.len),
                    ),
                    a.span,
                )
                .help("write one entry per token, from the same tokenizer as the token list"),
            );
        }
    }
}

/// How llama.cpp reads a merge: split at the first space after the first byte; both parts must be
/// non-empty.
fn is_merge(m: &str) -> bool {
    match m.as_bytes().iter().skip(1).position(|&b| b == b' ') {
        Some(p) => p + 2 < m.len(),
        None => false,
    }
}

struct Array {
    len: u64,
    strings: bool,
    span: Option<Span>,
}

fn array(c: &Container, key: &str) -> Option<Array> {
    match c {
        Container::Gguf(g) => {
            let kv = g.get(key)?;
            match &kv.value {
                Value::Array(a) => Some(Array {
                    len: a.len,
                    strings: a.elem == ValueType::String,
                    span: Some(kv.span),
                }),
                _ => Some(Array {
                    len: 0,
                    strings: false,
                    span: Some(kv.span),
                }),
            }
        }
        Container::Apr(f) => {
            let e = f.get(key)?;
            let raw = e.raw.get();
            if raw == "null" {
                return None;
            }
            let span = Some(f.metadata_span);
            Some(match count_array(raw) {
                Some(len) => Array {
                    len,
                    // Non-string elements are found when visiting: a JSON array of strings
                    // starts with `"` after `[` (or is empty).
                    strings: raw
                        .trim_start_matches('[')
                        .trim_start()
                        .starts_with(['"', ']']),
                    span,
                },
                None => Array {
                    len: 0,
                    strings: false,
                    span,
                },
            })
        }
    }
}

fn at(f: Finding, span: Option<Span>) -> Finding {
    match span {
        Some(s) => f.span(s),
        None => f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_split_as_llama_cpp_splits_them() {
        for ok in ["a b", "Ġ t", "Ġt he", "  x", "é ab", "a b c"] {
            assert!(is_merge(ok), "{ok:?}");
        }
        for bad in ["", "a", " ", "ab", "a ", "é", "éé"] {
            assert!(!is_merge(bad), "{bad:?}");
        }
    }
}
