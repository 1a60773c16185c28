//! Lints of the Hugging Face side files (`APRL-F06x`): `config.json`, `tokenizer.json` and
//! `tokenizer_config.json`, as `model/hf_config.rs` and `model/hf_tokenizer.rs` read them. Wrongly
//! typed config keys are not here: they are `Config::problems`, reported as `APRL-M005` like APR's.

use crate::diag::{Lint, lint};

lint!(HF_JSON, "APRL-F060", "container", Error, "a Hugging Face JSON file is not a JSON object",
"What it catches: a `config.json`, `tokenizer.json` or `tokenizer_config.json` that is not UTF-8, not valid JSON (truncated, a trailing comma, NaN), or valid JSON whose top level is not an object.
Why it matters: transformers and llama.cpp's converter stop on it; nothing in it (dims, RoPE, tokens) can be compared.
How to fix: download the file again (a truncated download is the usual cause) or restore it from the model's repository.
Precedent: hub repositories whose `config.json` was hand-edited and left with a trailing comma.");

lint!(HF_TOKENIZER_FIELD, "APRL-F061", "container", Error, "a `tokenizer.json` field is missing or has the wrong type",
"What it catches: a `tokenizer.json` without a `model`, a BPE model whose `vocab` is not an object of integer ids, `merges` that are neither \"a b\" strings nor [\"a\", \"b\"] pairs, `added_tokens` entries without an integer `id` and a string `content`, or a `bos_token`/`eos_token` in `tokenizer_config.json` that is neither a string nor an object with `content`.
Why it matters: the tokens and merges cannot be read, so the tokenizer cannot be compared with the converted file's or run on the probe prompt.
How to fix: re-save the tokenizer with `tokenizer.save_pretrained(DIR)` from a working copy.
Precedent: —");

lint!(HF_TOKENIZER_MODEL, "APRL-F062", "container", Error, "the `tokenizer.json` model is not BPE",
"What it catches: a `tokenizer.json` whose model is WordPiece, WordLevel or Unigram.
Why it matters: apr-lint reads byte-level and SentencePiece-style BPE only, as llama.cpp's `gpt2` and `llama` vocabularies; it can neither compare this tokenizer with a converted file's nor run it on the probe prompt.
How to fix: nothing in the file; compare against a GGUF or APR reference instead.
Precedent: —");

lint!(HF_TOKEN_IDS, "APRL-F063", "container", Error, "token ids in `tokenizer.json` collide or run past the file",
"What it catches: two different token strings with one id (in `vocab`, or an `added_tokens` entry whose content differs from the vocab's token at its id), the same string with two ids, or an id larger than the file could describe.
Why it matters: the id → token table is ambiguous: the converted file's token list depends on which entry the converter kept.
How to fix: give every token one id; re-save the tokenizer from a working copy.
Precedent: —");

lint!(HF_PRE_TOKENIZER, "APRL-F064", "container", Warning, "the `tokenizer.json` pre-tokenizer is not one apr-lint runs",
"What it catches: a pre-tokenizer other than ByteLevel with GPT-2's pattern, a Sequence of a Split with the qwen2, Llama 3 or GPT-2 pattern before a regex-less ByteLevel (what transformers writes for Qwen2 and Llama 3), or Metaspace; a ByteLevel that adds a prefix space; or none at all for a byte-level BPE.
Why it matters: the text would be split differently from Hugging Face's, so the probe prompt's ids could differ; the token list and merges are still read and compared.
How to fix: nothing in the file; compare against a GGUF or APR reference, which names its pre-tokenizer, or report the pattern so it can be added.
Precedent: llama.cpp's converter refuses BPE tokenizers whose pre-tokenizer hash it does not know (`NotImplementedError: BPE pre-tokenizer was not recognized`).");

pub static ALL: &[&Lint] = &[
    &HF_JSON,
    &HF_TOKENIZER_FIELD,
    &HF_TOKENIZER_MODEL,
    &HF_TOKEN_IDS,
    &HF_PRE_TOKENIZER,
];
