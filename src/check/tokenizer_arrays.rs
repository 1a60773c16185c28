//! The tokenizer's parallel arrays, one file at a time, held to what llama.cpp's vocabulary loader
//! (`llama-vocab.cpp`, commit 0c1e570 of the oracle) enforces: a byte-level BPE vocabulary without
//! merges, merges that are not strings or not `"left right"`, score or token-type arrays of the
//! wrong type or shorter than the token list (refused), longer (accepted, but from another
//! vocabulary), and duplicate token strings (llama.cpp aborts). Vocabulary size against the
//! embedding is `APRL-M012`; the two files' tokenizers against each other are `APRL-M025`.

use crate::diag::{Finding, Severity, Span, lint};
use crate::model::ModelView;
use crate::model::describe::ElemType as ValueType;

lint!(TOKENIZER_ARRAYS, "APRL-M014", "tokenizer-mismatch", Error, "the tokenizer's arrays are malformed",
"What it catches: a byte-level BPE (`gpt2`) tokenizer with tokens but no merges; merges that are not strings, or entries that are not two non-empty parts split by a space (`\"Ġ t\"`); scores that are not f32/i32 or token types that are not i32; a scores or token-type array shorter than the token list (longer: a warning); the same token string twice (GGUF).
Why it matters: llama.cpp's vocabulary loader refuses a BPE vocabulary without merges (\"cannot find tokenizer merges\"), merges, scores or token types of the wrong type (\"invalid gguf type\") and score or type arrays shorter than the token list (\"Index out of array bounds\"), and aborts on a duplicated token string (`GGML_ASSERT(id_to_token.size() == token_to_id.size())`). It splits each merge at its first space after the first byte: an entry without one is no merge, so words fall apart into smaller pieces than the model was trained on. A longer array belongs to another vocabulary.
How to fix: write `tokens`, `merges`, `scores` and `token_type` from one tokenizer (gguf-py's `SpecialVocab` and `add_token_*` write them all from one `tokenizer.json`).
Precedent: aprender #1623 (tokenizer of another model); llama.cpp `llama-vocab.cpp` `load`.");

pub static ALL: &[&crate::diag::Lint] = &[&TOKENIZER_ARRAYS];

pub fn check(view: &ModelView, out: &mut Vec<Finding>) {
    let tk = &view.tokenizer;
    let keys = view.tokenizer_keys();
    let (merges_key, scores_key, types_key) = (keys.merges, keys.scores, keys.types);
    let bpe = tk.model.as_deref() == Some("gpt2");
    let merges = view.tokenizer_array(merges_key);
    match &merges {
        None if bpe && tk.n_tokens.is_some_and(|n| n > 0) => out.push(
            Finding::new(&TOKENIZER_ARRAYS, format!("the byte-level BPE (`gpt2`) tokenizer has {} tokens but no `{merges_key}`: nothing can be merged", tk.n_tokens.unwrap_or(0)))
                .help("write the merges of this tokenizer"),
        ),
        Some(a) if !a.strings => out.push(
            Finding::new(&TOKENIZER_ARRAYS, format!("`{merges_key}` is not an array of strings")).at_key(merges_key, a.span)
                .help("write each merge as a string \"left right\""),
        ),
        Some(a) => {
            let scan = view.tokenizer_scan();
            if scan.bad_merges > 0 {
                let quoted: Vec<String> = scan
                    .bad_merge_examples
                    .iter()
                    .map(|(rank, m)| format!("#{rank} {m:?}"))
                    .collect();
                out.push(
                    Finding::new(&TOKENIZER_ARRAYS, format!("{} of the {} entries of `{merges_key}` are not \"left right\" with two non-empty parts (e.g. {})", scan.bad_merges, scan.merges.1, quoted.join(", ")))
                        .at_key(merges_key, a.span)
                    .help("write the merges exactly as the tokenizer's `merges` list has them"),
                );
            }
        }
        None => {}
    }
    let Some(n) = tk.n_tokens else { return };
    let gguf = keys.strict;
    for (key, types) in [
        (scores_key, &[ValueType::F32, ValueType::I32][..]),
        (types_key, &[ValueType::I32][..]),
    ] {
        let Some(a) = view.tokenizer_array(key) else {
            continue;
        };
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
                    )
                    .key(key),
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
                )
                .key(key),
                a.span,
            )
            .help("write one entry per token, from the same tokenizer as the token list");
            if a.len > n {
                f = f.severity(Severity::Warning);
            }
            out.push(f);
        }
    }
    let scan = view.tokenizer_scan();
    if let (Some((id, t)), true) = (&scan.first_duplicate, keys.strict) {
        let mut f = Finding::new(&TOKENIZER_ARRAYS, format!("{} token strings repeat an earlier one (first: id {id}, {t:?}): llama.cpp aborts loading (`id_to_token.size() == token_to_id.size()`)", scan.duplicate_tokens))
            .help("write the token list of one tokenizer, each string once");
        f.span = view.token_list_span();
        out.push(f);
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
    use crate::format::Source;
    use crate::format::writer::apr::Flavour;
    use crate::format::writer::convert::gguf_to_apr;
    use crate::format::writer::generate::{TINY, gguf_model};
    use crate::format::writer::gguf::MetaValue;
    use crate::model::ModelView;
    use crate::model::tokenizer::is_merge;
    use crate::quant::DType;

    fn views(tokens: Option<Vec<String>>) -> (ModelView, ModelView) {
        let mut w = gguf_model(&TINY, DType::Q8_0, 3);
        if let Some(t) = tokens {
            let e = w
                .metadata
                .iter_mut()
                .find(|(k, _)| k == "tokenizer.ggml.tokens");
            e.expect("the generator writes tokens").1 = MetaValue::ArrayString(t);
        }
        let g = ModelView::from_source(Source::from_vec(w.to_bytes(), "m.gguf")).unwrap();
        let gf = crate::format::gguf::read(Source::from_vec(w.to_bytes(), "m.gguf")).unwrap();
        let apr = gguf_to_apr(&gf, Flavour::Aprender).to_bytes();
        let a = ModelView::from_source(Source::from_vec(apr, "m.apr")).unwrap();
        (g, a)
    }

    #[test]
    fn one_pass_gives_the_fingerprints_of_both_formats() {
        let (g, a) = views(None);
        for v in [&g, &a] {
            let s = v.scan_tokenizer();
            assert_eq!(s.tokens, v.tokenizer_fingerprint(false));
            assert_eq!(s.merges, v.tokenizer_fingerprint(true));
            assert_eq!((s.bad_merges, s.duplicate_tokens), (0, 0));
            assert_eq!(s.tokens.1, TINY.vocab);
        }
        assert_eq!(g.tokenizer_scan(), a.tokenizer_scan());
    }

    #[test]
    fn repeated_tokens_are_counted_exactly() {
        let mut t: Vec<String> = (0..TINY.vocab).map(|i| format!("t{i}")).collect();
        t[7] = "t3".into();
        t[9] = "t3".into();
        t[11] = String::new();
        t[12] = String::new();
        let (g, a) = views(Some(t));
        let s = g.tokenizer_scan();
        assert_eq!(s.duplicate_tokens, 2);
        assert_eq!(s.first_duplicate, Some((7, "t3".to_owned())));
        // APR files are not held to llama.cpp's rule.
        assert_eq!(a.tokenizer_scan().duplicate_tokens, 0);
    }

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
