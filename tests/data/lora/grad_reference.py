#!/usr/bin/env python3
"""The reference for iris's LoRA gradients: the tiny-256m-style text decoder written in PyTorch
(Llama: RMSNorm, rotate-half RoPE, grouped-query causal attention, SiLU-gated MLP, untied
lm_head), checked against the transformers goldens of the fixture, with LoRA on every linear
layer of both decoder layers (y = x W^T + (alpha / r) (x A^T) B^T, as PEFT computes it). For two
sequences with labels on some positions it writes the loss (the mean cross-entropy over all
labelled positions of both) and its gradients with respect to every A and B, by autograd.

Run once with Debian's python3-torch and python3-numpy, from the repository root:
    python3 tests/data/lora/grad_reference.py
It writes tests/data/lora/grad_reference.{json,safetensors}; the C++ test reads them.
"""
import json
import math
import os

import numpy as np
import torch

import st
from torch_text_model import TextModel

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "smolvlm2", "tiny-256m-style")
RANK, ALPHA = 4, 8.0


def main():
    torch.manual_seed(0)
    cfg = json.load(open(os.path.join(FIXTURE, "config.json")))["text_config"]
    w = {k: torch.tensor(v) for k, v in st.read(os.path.join(FIXTURE, "model.safetensors")).items()}
    model = TextModel(w, cfg)
    rng = np.random.default_rng(7)

    def init(module, out_dim, in_dim):
        a = rng.standard_normal((RANK, in_dim)) / math.sqrt(in_dim)
        b = rng.standard_normal((out_dim, RANK)) * 0.1
        return (torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32))

    model.add_lora(RANK, ALPHA, init)
    lora = model.lora

    def forward(ids, adapted=True):
        if adapted:
            return model.logits(model.embed(ids))
        saved, model.lora = model.lora, {}
        try:
            return model.logits(model.embed(ids))
        finally:
            model.lora = saved

    # The model itself first: the base forward reproduces the transformers goldens.
    goldens = st.read(os.path.join(FIXTURE, "goldens.safetensors"))
    meta = json.load(open(os.path.join(FIXTURE, "goldens.json")))["cases"]["text_only"]
    with torch.no_grad():
        got = forward(meta["input_ids"], adapted=False)
    want = torch.tensor(goldens["text_only.logits"][0])
    err = (got - want).abs().max().item() / want.abs().max().item()
    assert err < 1e-5, f"the reference model is not the fixture's: relative error {err}"

    seq1 = meta["input_ids"] + meta["generated_ids"]
    labels1 = [-1] * len(seq1)
    for t in range(len(meta["input_ids"]) - 1, len(seq1) - 1):
        labels1[t] = seq1[t + 1]
    seq2 = list(reversed(meta["input_ids"][:10]))
    labels2 = [seq2[t + 1] if t + 1 < len(seq2) else -1 for t in range(len(seq2))]
    total, count = 0.0, 0
    for ids, labels in ((seq1, labels1), (seq2, labels2)):
        logits = forward(ids)
        rows = [t for t, l in enumerate(labels) if l >= 0]
        total = total + torch.nn.functional.cross_entropy(
            logits[rows], torch.tensor([labels[t] for t in rows]), reduction="sum")
        count += len(rows)
    loss = total / count
    loss.backward()

    out = {}
    for module, (a, b) in lora.items():
        out[module + ".lora_A"] = a.detach().numpy()
        out[module + ".lora_B"] = b.detach().numpy()
        out[module + ".grad_A"] = a.grad.numpy()
        out[module + ".grad_B"] = b.grad.numpy()
    st.write(os.path.join(HERE, "grad_reference.safetensors"), out)
    with open(os.path.join(HERE, "grad_reference.json"), "w") as f:
        json.dump({"rank": RANK, "alpha": ALPHA, "loss": loss.item(), "labelled": count,
                   "torch": torch.__version__,
                   "sequences": [{"ids": seq1, "labels": labels1},
                                 {"ids": seq2, "labels": labels2}]}, f, indent=1)
    print(f"loss {loss.item():.6f} over {count} positions; golden check {err:.2e}")


if __name__ == "__main__":
    main()
