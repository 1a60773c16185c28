#!/usr/bin/env python3
"""A variant of a GGUF, written by gguf-py: every key and tensor copied unchanged (raw bytes, same
type), plus what the options add. Used to make llama.cpp oracles for features the tiny models lack.

  --rope-freqs      add a Llama-3-style `rope_freqs.weight` (F32, [head_dim/2]). llama.cpp divides
                    the angle of rotary pair i by factor i (ggml-cpu `ggml_rope_cache_init`:
                    theta/ff). Llama 3.1's factors (1 for fast pairs, 8 for slow ones) barely move a
                    10-token prompt, so these run from 0.5 to 8 over the pairs in a fixed shuffled
                    order: an implementation that ignores, inverts or reverses them disagrees with
                    llama.cpp's activations.
  --llama3-freqs F,LOW,HIGH,ORIG
                    add `rope_freqs.weight` as llama.cpp's converter computes it from Hugging Face's
                    `rope_scaling` {"rope_type": "llama3", "factor": F, "low_freq_factor": LOW,
                    "high_freq_factor": HIGH, "original_max_position_embeddings": ORIG}
                    (conversion/llama.py `generate_extra_tensors`, ported from torch to numpy
                    float32).
  --set KEY=VALUE   add or replace a key; `{arch}` in KEY is the architecture. VALUE is an integer
                    (written UINT32), a number with a point (FLOAT32) or else a string.

    pip install gguf==0.19.0
    python3 scripts/derive_gguf.py IN.gguf OUT.gguf --rope-freqs
    python3 scripts/derive_gguf.py IN.gguf OUT.gguf --set '{arch}.rope.scaling.type=yarn' \\
        --set '{arch}.rope.scaling.factor=4.0'
"""
import argparse
import math

import numpy as np

import gguf


def factors(n: int) -> np.ndarray:
    base = np.geomspace(0.5, 8.0, n)
    order = np.random.default_rng(31).permutation(n)
    return base[order].astype(np.float32)


def llama3(base: float, dim: int, factor: float, low: float, high: float, old: float) -> np.ndarray:
    freqs = 1.0 / (np.float32(base) ** (np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim)))
    low_wl, high_wl = old / low, old / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wl:
            out.append(1)
        elif wavelen > low_wl:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def typed(value: str):
    try:
        return int(value), gguf.GGUFValueType.UINT32
    except ValueError:
        pass
    if "." in value:
        try:
            return float(value), gguf.GGUFValueType.FLOAT32
        except ValueError:
            pass
    return value, gguf.GGUFValueType.STRING


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--rope-freqs", action="store_true")
    ap.add_argument("--llama3-freqs")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    r = gguf.GGUFReader(args.src)
    arch = r.fields["general.architecture"].contents()
    extra = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        extra[k.replace("{arch}", arch)] = typed(v)
    w = gguf.GGUFWriter(args.out, arch)
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture" or name in extra:
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(name, field.contents(), vtype, sub_type=sub)
    for k, (v, t) in extra.items():
        w.add_key_value(k, v, t)
    if args.rope_freqs:
        n_embd = r.fields[f"{arch}.embedding_length"].contents()
        n_head = r.fields[f"{arch}.attention.head_count"].contents()
        w.add_tensor("rope_freqs.weight", factors(n_embd // n_head // 2))
    if args.llama3_freqs:
        f, low, high, old = (float(x) for x in args.llama3_freqs.split(","))
        n_embd = r.fields[f"{arch}.embedding_length"].contents()
        n_head = r.fields[f"{arch}.attention.head_count"].contents()
        base = r.fields[f"{arch}.rope.freq_base"].contents()
        w.add_tensor("rope_freqs.weight", llama3(base, n_embd // n_head, f, low, high, old))
    for t in r.tensors:
        w.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
