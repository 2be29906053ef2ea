#!/usr/bin/env python3
"""The PyTorch side of bench/finetune.sh: LoRA training steps of the SmolVLM2 text decoder
(tests/data/lora/torch_text_model.py, f32 on the CPU, autograd, torch.optim.AdamW) on the same
checkpoint and sequence shape iris trains on: `prompt` positions (the image's features stand in
as random embeddings: the tower is frozen, its features computed once) and `answer` labelled
tokens. Prints one JSON object with the tokens per second of the timed steps.

    python3 bench/finetune_reference.py CHECKPOINT_DIR --prompt 90 --answer 128 --steps 4 --threads 2
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "data", "lora"))
import st  # noqa: E402
from torch_text_model import TextModel  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--prompt", type=int, required=True)
    ap.add_argument("--answer", type=int, required=True)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = json.load(open(os.path.join(args.checkpoint, "config.json")))["text_config"]
    weights = {k: torch.from_numpy(v.copy())
               for k, v in st.read(os.path.join(args.checkpoint, "model.safetensors")).items()
               if k.startswith("model.text_model.") or k == "lm_head.weight"}
    model = TextModel(weights, cfg)

    def init(module, out_dim, in_dim):  # PEFT's: A kaiming-uniform, B zero
        a = torch.empty(args.rank, in_dim)
        torch.nn.init.kaiming_uniform_(a, a=5 ** 0.5)
        return a, torch.zeros(out_dim, args.rank)

    model.add_lora(args.rank, args.alpha, init)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.0)
    T = args.prompt + args.answer
    vocab = cfg["vocab_size"]
    times = []
    for step in range(args.steps + 1):  # the first step warms up
        ids = torch.randint(0, vocab, (T + 1,))
        x = model.embed(ids[:T].tolist())
        x[: args.prompt // 2] = torch.randn(args.prompt // 2, x.shape[1]) * 0.02  # image features
        rows = list(range(args.prompt - 1, T - 1))
        t0 = time.perf_counter()
        opt.zero_grad()
        logits = model.logits(x, rows)
        loss = torch.nn.functional.cross_entropy(logits, ids[[r + 1 for r in rows]])
        loss.backward()
        opt.step()
        if step > 0:
            times.append(time.perf_counter() - t0)
    seconds = sum(times)
    print(json.dumps({"tokens_per_s": T * len(times) / seconds, "step_seconds": seconds / len(times),
                      "tokens_per_step": T, "threads": args.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
