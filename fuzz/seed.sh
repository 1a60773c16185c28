#!/usr/bin/env bash
# Builds the seed corpora of every fuzz target under fuzz/corpus/<target>/ (gitignored): small
# files from apr-lint's writers, their APR conversions, pairs, the GGUF fixtures and the rule files.
# Idempotent; run from anywhere.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cargo run --quiet --release --manifest-path "$here/Cargo.toml" --features seed --bin seed_corpus -- "$root" "$here/corpus"
# lint_full takes the same two-file inputs as lint_pair.
mkdir -p "$here/corpus/lint_full"
cp -n "$here/corpus/lint_pair/"* "$here/corpus/lint_full/" || true  # -n: keep what lint_full found
for t in gguf_reader apr_reader safetensors_reader rules_file lint_pair lint_full; do
    printf '%-18s %4d seeds\n' "$t" "$(ls "$here/corpus/$t" | wc -l)"
done
