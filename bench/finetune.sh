#!/usr/bin/env bash
# Fine-tuning speed: `iris finetune` on a random-weight SmolVLM2-256M checkpoint of the real shape
# (iris-make-checkpoint; image splitting off, so a picture is one 64-token tile), conversations
# of one image and a question, with answers of about 128 tokens; and, as the baseline, in the same run on the same machine, the same
# LoRA step (rank 8, all seven text linear layers, AdamW) in PyTorch (bench/finetune_reference.py,
# Debian's python3-torch, f32) on sequences of the same length. Prints one JSON object: training
# tokens (prompt and answer) per second for both, and their ratio.
#
#   bash bench/finetune.sh
#
# Environment: IRIS_BIN (default build/release/iris), THREADS (default: the number of cores),
# STEPS (default 6 timed steps), BASELINE=0 skips PyTorch, COMPUTE=bf16 trains with iris's
# opt-in bf16 products (AVX512-BF16 CPUs). Needs a Release build
# (scripts/build.sh release); installs python3-torch, python3-numpy and libopenblas0-pthread
# (PyTorch's BLAS; Debian's default is the slow reference BLAS) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
iris_bin="${IRIS_BIN:-build/release/iris}"
make_ckpt="$(dirname "$iris_bin")/iris-make-checkpoint"
threads="${THREADS:-$(nproc)}"
steps="${STEPS:-6}"
baseline="${BASELINE:-1}"
compute="${COMPUTE:-exact}"
[[ -x "$iris_bin" && -x "$make_ckpt" ]] ||
  { echo "finetune bench: build first: scripts/build.sh release" >&2; exit 1; }
py="${PYTHON:-/usr/bin/python3}"
[[ -x "$py" ]] || py=python3
# PyTorch's matrix products go through the system BLAS: OpenBLAS, not the reference one.
if [[ "$baseline" == 1 ]] && { ! "$py" -c 'import torch, numpy' 2>/dev/null ||
                               ! ls /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 >/dev/null 2>&1; }; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    python3-torch python3-numpy libopenblas0-pthread >&2
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/iris-bench/models/256m-safetensors"
if [[ ! -f "$cache/model.safetensors" ]]; then
  echo "finetune bench: writing a random 256M checkpoint to $cache" >&2
  "$make_ckpt" --size 256m --dtype bf16 --out "$cache" >/dev/null 2>&1
fi
# One image tile per picture (64 image tokens): no splitting into 512-pixel tiles.
"$py" - "$cache/preprocessor_config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["do_image_splitting"] = False
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# `steps` conversations, one per step; two epochs, the second timed (each image's features are
# computed once, in the first).
"$py" - "$work/train.jsonl" "$steps" <<'PY'
import base64, json, random, sys
path, n = sys.argv[1], int(sys.argv[2])
image = base64.b64encode(open("tests/data/smolvlm2/images/small.png", "rb").read()).decode()
words = "the a cat dog red blue green house tree sky river stone light dark small large quick slow".split()
random.seed(1)
with open(path, "w") as f:
    for i in range(n):
        answer = " ".join(random.choice(words) for _ in range(125))
        f.write(json.dumps({"messages": [
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + image}},
                {"type": "text", "text": "Describe this picture in detail."}]},
            {"role": "assistant", "content": answer}]}) + "\n")
PY
"$iris_bin" finetune --model "$cache" --data "$work/train.jsonl" --out "$work/out" \
  --epochs 2 --batch-tokens 1 --threads "$threads" --save-every 0 --compute "$compute" >/dev/null 2>"$work/iris.err" ||
  { cat "$work/iris.err" >&2; exit 1; }
iris_json="$("$py" - "$work/out/train_log.jsonl" "$steps" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
timed = lines[int(sys.argv[2]):]  # the second epoch
tokens = sum(l["tokens"] for l in timed)
labelled = sum(l["labelled"] for l in timed)
seconds = sum(l["seconds"] for l in timed)
print(json.dumps({"tokens_per_s": tokens / seconds, "step_seconds": seconds / len(timed),
                  "tokens_per_step": tokens / len(timed), "labelled_per_step": labelled / len(timed)}))
PY
)"
torch_json='null'
if [[ "$baseline" == 1 ]]; then
  read -r prompt answer < <("$py" -c "import json,sys; j=json.loads(sys.argv[1]); t=round(j['tokens_per_step']); a=round(j['labelled_per_step']); print(t-a, a)" "$iris_json")
  torch_json="$("$py" bench/finetune_reference.py "$cache" --prompt "$prompt" --answer "$answer" \
    --steps "$steps" --threads "$threads")"
fi
"$py" - "$iris_json" "$torch_json" "$threads" "$compute" <<'PY'
import json, platform, sys
iris, torch = json.loads(sys.argv[1]), json.loads(sys.argv[2])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
out = {"bench": "finetune", "model": "SmolVLM2-256M shape, random weights, bf16", "cpu": cpu,
       "threads": int(sys.argv[3]), "lora": "rank 8, alpha 16, q/k/v/o/gate/up/down",
       "iris_compute": sys.argv[4],
       "iris": iris, "pytorch": torch}
if torch:
    out["ratio_iris_over_pytorch"] = iris["tokens_per_s"] / torch["tokens_per_s"]
print(json.dumps(out, indent=1))
PY
