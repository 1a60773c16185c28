#!/usr/bin/env python3
"""Extract the dequantization fixtures in fixtures/quant/ from the oracle folder.

For every oracle model that has a ggml weight dump (shared/oracle/weights/<model>/), take the tensor
`blk.0.attn_k.weight` (GGUF ne = [256, 128], i.e. canonical dims [128, 256]) and write

  fixtures/quant/<TYPE>.bin   the tensor's raw bytes exactly as stored in the GGUF file
  fixtures/quant/<TYPE>.npy   ggml's own dequantization of it (to_float, dumped by llama_dump --weights)

plus fixtures/quant/README.md with one provenance line per file. The values are never ours: the .npy
files are copied byte for byte from the oracle dump; the script only checks that gguf-py agrees.

Needs the pip package gguf==0.19.0 (and numpy, which it pulls in).

Usage: python3 scripts/extract_quant_fixtures.py [--oracle DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGUFReader, GGMLQuantizationType
from gguf.quants import dequantize

TENSOR = "blk.0.attn_k.weight"
# model stem -> printed dtype name (the name used by src/quant/table.rs)
MODELS = {
    "tiny-qwen2-f16": "F16",
    "tiny-qwen2-bf16": "BF16",
    "tiny-qwen2-lq-pure-q4_0": "Q4_0",
    "tiny-qwen2-lq-pure-q4_1": "Q4_1",
    "tiny-qwen2-lq-pure-q5_0": "Q5_0",
    "tiny-qwen2-lq-pure-q5_1": "Q5_1",
    "tiny-qwen2-lq-pure-q8_0": "Q8_0",
    "tiny-qwen2-lq-pure-q2_k": "Q2_K",
    "tiny-qwen2-lq-pure-q3_k": "Q3_K",
    "tiny-qwen2-lq-pure-q4_k": "Q4_K",
    "tiny-qwen2-lq-pure-q5_k": "Q5_K",
    "tiny-qwen2-lq-pure-q6_k": "Q6_K",
    "tiny-qwen2-lq-pure-iq4_nl": "IQ4_NL",
    "tiny-qwen2-lq-pure-iq4_xs": "IQ4_XS",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--oracle", type=Path, default=root.parent / "shared" / "oracle")
    ap.add_argument("--out", type=Path, default=root / "fixtures" / "quant")
    args = ap.parse_args()

    if getattr(gguf, "__version__", None) not in (None, "0.19.0"):
        print(f"warning: gguf {gguf.__version__}, fixtures were made with 0.19.0", file=sys.stderr)

    args.out.mkdir(parents=True, exist_ok=True)
    lines = []
    for stem, type_name in MODELS.items():
        model = args.oracle / "models" / f"{stem}.gguf"
        dump = args.oracle / "weights" / stem / f"{TENSOR}.npy"
        reader = GGUFReader(model)
        [tensor] = [t for t in reader.tensors if t.name == TENSOR]
        qtype = GGMLQuantizationType(tensor.tensor_type)
        if qtype.name != type_name:
            raise SystemExit(f"{model}: {TENSOR} is {qtype.name}, expected {type_name}")
        ne = [int(x) for x in tensor.shape]
        if ne != [256, 128]:
            raise SystemExit(f"{model}: {TENSOR} has ne {ne}, expected [256, 128]")

        with open(model, "rb") as f:
            f.seek(int(tensor.data_offset))
            raw = f.read(int(tensor.n_bytes))
        if len(raw) != int(tensor.n_bytes):
            raise SystemExit(f"{model}: short read of {TENSOR}")

        values = np.load(dump)
        if values.dtype != np.dtype("<f4") or values.shape != (128, 256):
            raise SystemExit(f"{dump}: dtype {values.dtype} shape {values.shape}, expected <f4 (128, 256)")

        # Cross-check only: gguf-py's numpy dequantizer must agree with ggml bit for bit.
        ours = dequantize(np.frombuffer(raw, dtype=np.uint8).reshape(128, -1), qtype).astype(np.float32)
        if ours.reshape(-1).view(np.uint32).tolist() != values.reshape(-1).view(np.uint32).tolist():
            raise SystemExit(f"{stem}: gguf-py and ggml disagree on {TENSOR}")

        bin_path = args.out / f"{type_name}.bin"
        npy_path = args.out / f"{type_name}.npy"
        bin_path.write_bytes(raw)
        shutil.copyfile(dump, npy_path)
        lines.append(
            f"| `{type_name}.bin` | raw bytes of `{TENSOR}` ({type_name}, GGUF ne [256, 128], {len(raw)} bytes) "
            f"from `oracle/models/{stem}.gguf` at offset {int(tensor.data_offset)} | sha256 `{sha256(bin_path)[:16]}` |"
        )
        lines.append(
            f"| `{type_name}.npy` | ggml `to_float` of the same tensor, dumped by `llama_dump --weights` "
            f"(llama.cpp 0c1e57098bba, ggml 0.25.3): copy of `oracle/weights/{stem}/{TENSOR}.npy`, <f4 (128, 256) "
            f"| sha256 `{sha256(npy_path)[:16]}` |"
        )
        print(f"{type_name:7} {len(raw):6} bytes  <- {stem}")

    readme = args.out / "README.md"
    readme.write_text(
        "# Dequantization fixtures\n\n"
        "Made by `scripts/extract_quant_fixtures.py` from the oracle folder (`shared/oracle`, see its README).\n"
        "Each `<TYPE>.bin` is one real GGUF tensor's bytes; the matching `<TYPE>.npy` holds the values ggml's\n"
        "own dequantizer (`ggml_get_type_traits(type)->to_float`) produced for it, so they do not come from\n"
        "apr-lint. The models were written by gguf-py 0.19.0 (F16, BF16) and quantized by `llama-quantize --pure`\n"
        "(all other types). The tensor is `blk.0.attn_k.weight`, canonical dims [128, 256] (128 rows of 256).\n"
        "gguf-py's `gguf.quants.dequantize` was checked to give the same bits for every file.\n"
        "`tests/dequant.rs` compares apr-lint's dequantizer with them bit for bit.\n\n"
        "| file | provenance | hash |\n|---|---|---|\n" + "\n".join(lines) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
