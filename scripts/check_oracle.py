#!/usr/bin/env python3
"""Check `apr-lint dump` against ggml for every tensor of every oracle GGUF.

For each model in ORACLE/models, every tensor is dumped with apr-lint and compared bit for bit with
ggml's own dequantization (ORACLE/weights/<model>/<tensor>.npy) where it exists, and with
gguf-py's `gguf.quants.dequantize` (bit-identical to ggml for these types) for the rest. It also
checks `inspect --format json`: dims = reversed ne, dtype = the GGUF type.

    pip install gguf==0.19.0
    cargo build --release
    python3 scripts/check_oracle.py [--oracle ../shared/oracle] [--bin target/release/apr-lint]

Exit status 0 when every tensor matches exactly (max abs diff 0, same NaN pattern).
"""
import argparse, json, os, subprocess, sys, tempfile

import numpy as np
import gguf
from gguf.quants import dequantize


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oracle", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "oracle"))
    ap.add_argument("--bin", default="target/release/apr-lint")
    args = ap.parse_args()
    models = sorted(f for f in os.listdir(os.path.join(args.oracle, "models")) if f.endswith(".gguf"))
    total = bad = vs_ggml = 0
    with tempfile.TemporaryDirectory() as tmp:
        for m in models:
            path = os.path.join(args.oracle, "models", m)
            stem = m[:-5]
            info = json.loads(subprocess.run([args.bin, "inspect", "--format", "json", path], check=True, capture_output=True).stdout)
            reader = gguf.GGUFReader(path)
            by_name = {t["name"]: t for t in info["tensors"]}
            for t in reader.tensors:
                total += 1
                ne = [int(x) for x in t.shape]
                mine = by_name.get(t.name)
                if mine is None or mine["dims"] != ne[::-1] or mine["file_dims"] != ne or mine["dtype"] != t.tensor_type.name:
                    print(f"INSPECT MISMATCH {m} {t.name}: {mine and (mine['dims'], mine['dtype'])} vs ne={ne} {t.tensor_type.name}")
                    bad += 1
                    continue
                out = os.path.join(tmp, "t.npy")
                subprocess.run([args.bin, "dump", "-q", path, t.name, "-o", out], check=True)
                got = np.load(out)
                ref_path = os.path.join(args.oracle, "weights", stem, t.name + ".npy")
                if os.path.exists(ref_path):
                    ref = np.load(ref_path)
                    vs_ggml += 1
                else:
                    ref = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(ne[::-1])
                same = got.shape == ref.shape and np.array_equal(got.view(np.uint32), ref.astype(np.float32).view(np.uint32))
                if not same:
                    diff = np.nanmax(np.abs(got - ref)) if got.shape == ref.shape else "shape"
                    print(f"VALUE MISMATCH {m} {t.name} {t.tensor_type.name}: max diff {diff}")
                    bad += 1
            print(f"{m}: {len(reader.tensors)} tensors checked")
    print(f"{total} tensors, {vs_ggml} against ggml's own dump, {total - vs_ggml} against gguf-py; {bad} mismatches")
    print(f"{total - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
