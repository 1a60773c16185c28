#!/usr/bin/env python3
"""The tiny llama with a Llama-3-style `rope_freqs.weight`, written by gguf-py.

Copies every key and every tensor (raw bytes, same type) of IN.gguf and adds `rope_freqs.weight`
(F32, [head_dim/2]): llama.cpp divides the angle of rotary pair i by factor i
(ggml-cpu `ggml_rope_cache_init`: theta/ff). Llama 3.1's factors (1 for fast pairs, 8 for slow ones)
barely move a 10-token prompt, so the factors here are chosen to be visible at positions 0..9: they
run from 0.5 to 8 over the pairs, in a fixed shuffled order, so that an implementation that ignores
them, inverts them or reverses them disagrees with llama.cpp's activations.

    pip install gguf==0.19.0
    python3 scripts/make_rope_freqs_gguf.py fixtures/gguf/tiny-llama-q8_0.gguf OUT.gguf
"""
import sys

import numpy as np

import gguf


def factors(n: int) -> np.ndarray:
    base = np.geomspace(0.5, 8.0, n)
    order = np.random.default_rng(31).permutation(n)
    return base[order].astype(np.float32)


def main(src: str, out: str) -> None:
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(out, arch)
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(name, field.contents(), vtype, sub_type=sub)
    n_embd = r.fields[f"{arch}.embedding_length"].contents()
    n_head = r.fields[f"{arch}.attention.head_count"].contents()
    half = n_embd // n_head // 2
    w.add_tensor("rope_freqs.weight", factors(half))
    for t in r.tensors:
        w.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
