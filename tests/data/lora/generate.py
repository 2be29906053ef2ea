#!/usr/bin/env python3
"""Writes a random PEFT LoRA adapter for tests/data/smolvlm2/tiny-256m-style, laid out as PEFT's
save_pretrained writes one (adapter_config.json, adapter_model.safetensors with
base_model.model.<module>.lora_A.weight / lora_B.weight), and expected.json: values of the
merged weights W + (lora_alpha / r) * B @ A computed here with numpy, independently of iris, at
a few positions of every adapted tensor.

Run from the repository root: python3 tests/data/lora/generate.py (needs python3-numpy).
"""
import json
import os

import numpy as np

import st

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "smolvlm2", "tiny-256m-style", "model.safetensors")
OUT = os.path.join(HERE, "tiny-256m-style")
RANK, ALPHA = 4, 8.0
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
           "out_proj", "fc1", "fc2", "proj")


def main():
    base = st.read(MODEL)
    rng = np.random.default_rng(20261203)
    adapter, expected = {}, {}
    scale = ALPHA / RANK
    for name in sorted(base):
        if not name.endswith(".weight") or base[name].ndim != 2:
            continue
        module = name[: -len(".weight")]
        if module.split(".")[-1] not in TARGETS:
            continue
        w = base[name]
        out_dim, in_dim = w.shape
        a = (rng.standard_normal((RANK, in_dim)) / np.sqrt(in_dim)).astype(np.float32)
        b = (rng.standard_normal((out_dim, RANK)) * 0.05).astype(np.float32)
        adapter[f"base_model.model.{module}.lora_A.weight"] = a
        adapter[f"base_model.model.{module}.lora_B.weight"] = b
        merged = w.astype(np.float64) + scale * (b.astype(np.float64) @ a.astype(np.float64))
        picks = [(0, 0), (out_dim - 1, in_dim - 1), (out_dim // 2, in_dim // 3)]
        expected[name] = [[i, j, float(np.float32(merged[i, j]))] for i, j in picks]
    os.makedirs(OUT, exist_ok=True)
    st.write(os.path.join(OUT, "adapter_model.safetensors"), adapter)
    config = {
        "peft_type": "LORA", "task_type": None, "r": RANK, "lora_alpha": ALPHA,
        "lora_dropout": 0.05, "bias": "none", "use_rslora": False, "use_dora": False,
        "fan_in_fan_out": False, "init_lora_weights": "gaussian",
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                           "down_proj", "out_proj", "fc1", "fc2", "proj"],
        "modules_to_save": None, "rank_pattern": {}, "alpha_pattern": {},
        "base_model_name_or_path": "tiny-256m-style",
    }
    with open(os.path.join(OUT, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(HERE, "expected_merged.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
    print(f"{len(adapter) // 2} adapted layers written to {OUT}")


if __name__ == "__main__":
    main()
