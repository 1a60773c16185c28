#!/usr/bin/env bash
# llama.cpp's own token ids for a set of awkward prompts, for every tokenizer apr-lint implements:
# byte-level BPE with the qwen2 and llama-bpe pre-tokenizers (the oracle's tiny models, copied in
# fixtures/gguf/) and SentencePiece (a vocab-only GGUF made by scripts/make_spm_gguf.py with gguf-py).
# Writes fixtures/tokenizer/llama_cpp_ids.tsv: model <TAB> prompt as a JSON string <TAB> ids as JSON.
#
#   bash scripts/tokenizer_oracle.sh LLAMA_CPP_BIN_DIR
#
# LLAMA_CPP_BIN_DIR holds `llama-tokenize` (shared/oracle/scripts/build_llamacpp.sh builds it).
set -euo pipefail
BIN="$1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/fixtures/tokenizer"
mkdir -p "$OUT"
python3 "$ROOT/scripts/make_spm_gguf.py" "$OUT/spm-vocab.gguf"
PROMPTS=(
  "Hello my name is Tiny"
  "2+2="
  "Hello world"
  "The quick brown fox"
  "it's I'M we'll they'D you've"
  "12345 3.14159 1,000,000"
  "a  b   c    d"
  " leading space"
  "trailing space "
  $'two\n\nlines\tand\ttabs'
  $' \t \n '
  "ünïcode naïve café"
  "日本語 and 中文"
  "emoji 😀👍🏽 here"
  "!!!??? ... --- +++"
  "CamelCase snake_case kebab-case"
  "x"
)
TSV="$OUT/llama_cpp_ids.tsv"
: > "$TSV"
for m in "$ROOT/fixtures/gguf/tiny-qwen2-lq-q4_k_m.gguf" "$ROOT/fixtures/gguf/tiny-llama-q8_0.gguf" "$OUT/spm-vocab.gguf"; do
  for p in "${PROMPTS[@]}"; do
    ids=$("$BIN/llama-tokenize" -m "$m" -p "$p" --ids --log-disable 2>/dev/null | tail -n 1)
    printf '%s\t%s\t%s\n' "$(basename "$m")" "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$p")" "$ids" >> "$TSV"
  done
done
wc -l "$TSV"
