#!/usr/bin/env python3
"""A vocab-only llama GGUF with a SentencePiece (`llama`) tokenizer, written by gguf-py.

Layout as Llama 2's tokenizer.model converts: <unk>, <s>, </s> (UNKNOWN, CONTROL, CONTROL), the 256
byte-fallback tokens <0x00>..<0xFF> (BYTE), then pieces (NORMAL) with scores that fall with rank, so
that merges are chosen by score as llama.cpp's SPM tokenizer chooses them. No tensors: llama.cpp's
`llama-tokenize` loads the vocabulary only.

    pip install gguf==0.19.0
    python3 scripts/make_spm_gguf.py OUT.gguf
"""
import sys

import gguf

PIECES = [
    # whole words and their parts, in the order a trainer might have found them
    "▁", "e", "t", "a", "o", "i", "n", "s", "r", "h", "l", "d", "c", "u", "m", "w", "f", "g",
    "y", "p", "b", "v", "k", "x", "q", "j", "z", "H", "T", "W", "A", "I", ",", ".", "!", "?",
    "'", "+", "=", "-", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "é", "ü", "ï", "日",
    "本", "\n", "\t",
    "▁t", "he", "▁the", "in", "▁a", "er", "on", "▁w", "or", "ll", "▁H", "▁He", "llo", "▁Hello",
    "▁wor", "ld", "▁world", "▁qu", "ick", "▁quick", "▁b", "ro", "wn", "▁brown", "▁f", "ox",
    "▁fox", "12", "123", "▁1", "▁2", "▁▁", "▁▁▁▁", "▁T", "▁The", "is", "▁is", "▁it", "'s",
    "▁n", "am", "▁name", "▁my", "▁Ti", "ny", "▁Tiny", "an", "nd", "▁and", "es", "▁spaces",
    "sp", "ac", "▁日本", "日本", "co", "de", "▁code", "ün", "ïc", "ode",
]


def main(out: str) -> None:
    w = gguf.GGUFWriter(out, "llama")
    w.add_context_length(4096)
    w.add_embedding_length(256)
    w.add_block_count(2)
    w.add_feed_forward_length(768)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_rope_dimension_count(64)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    tokens, scores, types = [], [], []
    for t, ty in (("<unk>", 2), ("<s>", 3), ("</s>", 3)):
        tokens.append(t)
        scores.append(0.0)
        types.append(ty)
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(6)
    assert len(set(PIECES)) == len(PIECES)
    for i, p in enumerate(PIECES):
        tokens.append(p)
        scores.append(-float(i))
        types.append(1)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main(sys.argv[1])
