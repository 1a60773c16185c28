//! The tokenizer's parallel arrays, one file at a time, held to what llama.cpp's vocabulary loader
//! (`llama-vocab.cpp`, commit 0c1e570 of the oracle) enforces: a byte-level BPE vocabulary without
//! merges, merges that are not strings or not `"left right"`, score or token-type arrays of the
//! wrong type or shorter than the token list (refused), longer (accepted, but from another
//! vocabulary), and duplicate token strings (llama.cpp aborts). Vocabulary size against the
//! embedding is `APRL-M012`; the two files' tokenizers against each other are `APRL-M025`.

use std::collections::HashSet;

use crate::diag::{Finding, Severity, Span, lint};
use crate::format::Container;
use crate::format::gguf::{Value, ValueType};
use crate::model::ModelView;
use crate::model::tokenizer::{Tokenizer, count_array};

lint!(TOKENIZER_ARRAYS, "APRL-M014", "tokenizer-mismatch", Error, "the tokenizer's arrays are malformed",
"What it catches: a byte-level BPE (`gpt2`) tokenizer with tokens but no merges; merges that are not strings, or entries that are not two non-empty parts split by a space (`\"Ġ t\"`); scores that are not f32/i32 or token types that are not i32; a scores or token-type array shorter than the token list (longer: a warning); the same token string twice (GGUF).
Why it matters: llama.cpp's vocabulary loader refuses a BPE vocabulary without merges (\"cannot find tokenizer merges\"), merges, scores or token types of the wrong type (\"invalid gguf type\") and score or type arrays shorter than the token list (\"Index out of array bounds\"), and aborts on a duplicated token string (`GGML_ASSERT(id_to_token.size() == token_to_id.size())`). It splits each merge at its first space after the first byte: an entry without one is no merge, so words fall apart into smaller pieces than the model was trained on. A longer array belongs to another vocabulary.
How to fix: write `tokens`, `merges`, `scores` and `token_type` from one tokenizer (gguf-py's `SpecialVocab` and `add_token_*` write them all from one `tokenizer.json`).
Precedent: aprender #1623 (tokenizer of another model); llama.cpp `llama-vocab.cpp` `load`.");

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
    let gguf = matches!(c, Container::Gguf(_));
    for (key, types) in [
        (scores_key, &[ValueType::F32, ValueType::I32][..]),
        (types_key, &[ValueType::I32][..]),
    ] {
        let Some(a) = array(c, key) else { continue };
        if gguf && !a.elem.is_some_and(|e| types.contains(&e)) {
            out.push(
                at(
                    Finding::new(
                        &TOKENIZER_ARRAYS,
                        format!(
                            "`{key}` is {}, not an array of {}: llama.cpp refuses it",
                            a.elem.map_or("not an array".to_owned(), |e| format!(
                                "an array of {e:?}"
                            )),
                            types
                                .iter()
                                .map(|t| format!("{t:?}"))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ),
                    ),
                    a.span,
                )
                .help("write the array with the type llama.cpp reads"),
            );
        } else if a.len != n {
            let mut f = at(
                Finding::new(
                    &TOKENIZER_ARRAYS,
                    format!(
                        "`{key}` has {} entries for {n} tokens{}",
                        a.len,
                        if a.len < n {
                            ": llama.cpp refuses it (\"Index out of array bounds\")"
                        } else {
                            ": the extra entries belong to another vocabulary"
                        }
                    ),
                ),
                a.span,
            )
            .help("write one entry per token, from the same tokenizer as the token list");
            if a.len > n {
                f = f.severity(Severity::Warning);
            }
            out.push(f);
        }
    }
    if let Container::Gguf(g) = c
        && let Some(kv) = g.get("tokenizer.ggml.tokens")
        && let Value::Array(a) = &kv.value
    {
        let tokens = g.array_strings(a);
        let mut seen: HashSet<&str> = HashSet::with_capacity(tokens.len());
        let mut dups = 0u64;
        let mut first = None;
        for (id, t) in tokens.iter().enumerate() {
            // llama.cpp renames empty tokens `[EMPTY_<id>]`, so they never collide.
            if !t.is_empty() && !seen.insert(t) {
                dups += 1;
                first.get_or_insert((id, *t));
            }
        }
        if let Some((id, t)) = first {
            out.push(
                Finding::new(&TOKENIZER_ARRAYS, format!("{dups} token strings repeat an earlier one (first: id {id}, {t:?}): llama.cpp aborts loading (`id_to_token.size() == token_to_id.size()`)"))
                    .span(kv.span)
                    .help("write the token list of one tokenizer, each string once"),
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
    /// GGUF element type (None: not an array, or APR).
    elem: Option<ValueType>,
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
                    elem: Some(a.elem),
                    span: Some(kv.span),
                }),
                _ => Some(Array {
                    len: 0,
                    strings: false,
                    elem: None,
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
                    elem: None,
                    span,
                },
                None => Array {
                    len: 0,
                    strings: false,
                    elem: None,
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
