"""Llama 3 RoPE divisors (`rope_freqs.weight`) made by llama.cpp's own converter code, for
fixtures/rope/llama3_divisors.json (used by tests/rope_freqs.rs).

For each Hugging Face config below, this constructs llama.cpp's `LlamaModel` converter class
(`conversion/llama.py`, which `convert_hf_to_gguf.py` uses for `LlamaForCausalLM`) on the config,
unchanged, and runs its `generate_extra_tensors()`: the code that writes `rope_freqs.weight` into a
converted GGUF. Nothing of the formula is reimplemented here.

torch and transformers are not installed: the converter imports them at module level, so this
script puts stand-ins in `sys.modules` first. Of torch, `generate_extra_tensors` calls only
`torch.arange(0, dim, 2, dtype=torch.float32)` and `torch.tensor(list, dtype=torch.float32)`; they
are numpy's `arange` and `array` with float32, whose type promotion for the float32 array and
Python scalars that follow (`base ** (arange / dim)`, `2 * math.pi / freq`, …) is torch's (numpy ≥ 2,
NEP 50). Of transformers, the converter's `AutoConfig.from_pretrained` fails and it falls back to
reading config.json, as it logs.

Source: llama.cpp commit 0c1e57098bba (the copy vendored in the PyPI sdist of
llama-cpp-python==0.3.36, the same llama.cpp the oracle activations were made with):

    pip download --no-binary :all: --no-deps llama-cpp-python==0.3.36   # or fetch the sdist
    tar xzf llama_cpp_python-0.3.36.tar.gz
    python3 -m venv venv && venv/bin/pip install numpy pyyaml
    venv/bin/python scripts/llama3_divisors_converter.py \
        llama_cpp_python-0.3.36/vendor/llama.cpp > fixtures/rope/llama3_divisors.json
"""
import json
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

LLAMA_CPP = Path(sys.argv[1])
sys.path.insert(0, str(LLAMA_CPP / "gguf-py"))
sys.path.insert(0, str(LLAMA_CPP))


class _Stub(types.ModuleType):
    """A module whose every attribute is an inert class (for import-time references only)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


torch = _Stub("torch")
torch.float32 = np.float32
torch.Tensor = type("Tensor", (), {})
torch.arange = lambda start, end, step, dtype: np.arange(start, end, step, dtype=dtype)
torch.tensor = lambda data, dtype: np.array(data, dtype=dtype)
sys.modules["torch"] = torch
sys.modules["transformers"] = _Stub("transformers")

import gguf  # noqa: E402  (the vendored gguf-py)
from conversion.llama import LlamaModel  # noqa: E402

BASE = {
    "architectures": ["LlamaForCausalLM"],
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "intermediate_size": 768,
    "vocab_size": 512,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
}

CASES = [
    # The oracle's tiny llama (fixtures/act/tiny-llama-llama3-q8_0): most pairs divided by 8.
    dict(hidden_size=256, num_attention_heads=4, rope_theta=1e6,
         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                       "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
    # Llama 3.1 8B's config.
    dict(hidden_size=4096, num_attention_heads=32, rope_theta=500000.0,
         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                       "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    # Llama 3.2 1B's config.
    dict(hidden_size=2048, num_attention_heads=32, rope_theta=500000.0,
         rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                       "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    # Only the type: the converter's defaults (factor 8, 1, 4, 8192).
    dict(hidden_size=4096, num_attention_heads=32, rope_theta=500000.0,
         rope_scaling={"rope_type": "llama3"}),
    # The legacy `type` key, other factors, and an explicit head_dim narrower than hidden / heads.
    dict(hidden_size=512, num_attention_heads=4, head_dim=96, rope_theta=10000.0,
         rope_scaling={"type": "llama3", "factor": 4.0, "low_freq_factor": 2.0,
                       "high_freq_factor": 8.0, "original_max_position_embeddings": 1024}),
]


def divisors(cfg):
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "config.json").write_text(json.dumps(cfg))
        m = LlamaModel(d, gguf.LlamaFileType.ALL_F32, d / "out.gguf",
                       hparams=json.loads(json.dumps(cfg)), dry_run=True, eager=True)
        out = dict(m.generate_extra_tensors())
    t = out["rope_freqs.weight"]
    assert t.dtype == np.float32 and t.ndim == 1, (t.dtype, t.shape)
    return t


cases = []
for c in CASES:
    cfg = {**BASE, **c}
    t = divisors(cfg)
    dim = cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    assert len(t) == dim // 2
    cases.append({
        "rope_theta": cfg["rope_theta"],
        "head_dim": dim,
        "rope_scaling": cfg["rope_scaling"],
        # float(np.float32) is the exact value; its repr round-trips to the same f32.
        "divisors": [float(x) for x in t],
    })

print(json.dumps({
    "provenance": "llama.cpp 0c1e57098bba (llama-cpp-python==0.3.36 sdist), conversion/llama.py "
                  "LlamaModel.generate_extra_tensors run on each config by "
                  "scripts/llama3_divisors_converter.py (torch replaced by numpy float32 for "
                  "arange/tensor)",
    "cases": cases,
}, indent=1))
