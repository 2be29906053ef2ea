#!/usr/bin/env bash
# Local serving benchmark: many streaming callers on the local model at once. `iris serve` with a
# random-weight SmolVLM2-256M checkpoint of the real shape (iris-make-checkpoint), and as the
# baseline, in the same run on the same machine, llama.cpp's `llama-server --parallel N -cb` on
# GGUFs of the same shapes (../shared/anchors/make_random_smolvlm2_gguf.py). Prints one JSON
# object.
#
#   bash bench/local_serving.sh
#
# ROUNDS times (default 3), for each concurrency in LEVELS (default "1 4 8 16"), N closed-loop
# clients each send REQUESTS (default 2; 4 for one client) streaming questions of about 200 prompt tokens (calibrated per
# server: the tokenizers differ) for 128 answer tokens; then a mixed run at the highest level
# where every fourth request carries a 512x512 image (distinct images), and a second question
# about an image already asked about (time to first token of both). Each round visits every
# level; at each, iris runs and then llama-server, started with --parallel N. Reported per run: aggregate output tok/s over the wall
# time, p50/p99 time to first token, p50/p99 inter-token latency (and, for iris, its engine's
# p50/p99 step time over the run, from /metrics: a step is one gap for every answer in it, so a
# gap much longer than the steps is delivery, not the engine); the ratios take each level's
# median over its rounds (one stall of a shared machine moves a single run's p99, most of all
# at one client, whose p99 is the fifth-longest of about 500 gaps).
#
# Environment: IRIS_BIN (default build/release/iris), LLAMA_CPP_DIR and LLAMA_CPP_GIT (where
# llama.cpp is built and from what: bench/llamacpp.sh), BASELINE=0 skips the baseline, ANCHORS
# (default ../shared/anchors), THREADS (default: the number of cores), LEVELS, REQUESTS,
# PROMPT_TOKENS (200), MAX_TOKENS (128), MIXED=0 / SAME_IMAGE=0 skip those runs, KV (iris's
# kv_cache_dtype: f32, the default and exact, or f16, what llama-server keeps), COMPUTE (iris's
# compute: exact, the default, or bf16, opt-in on AVX512-BF16 CPUs: bf16 inputs to every product,
# as llama-server's F16 weights take f16 activations), STEP_TOKENS (its step_tokens, default 64).
# Needs a Release build (scripts/build.sh release); installs node, curl and python3-numpy (for
# the GGUFs) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
iris_bin="${IRIS_BIN:-build/release/iris}"
make_ckpt="$(dirname "$iris_bin")/iris-make-checkpoint"
anchors="${ANCHORS:-../shared/anchors}"
source bench/llamacpp.sh
threads="${THREADS:-$(nproc)}"
levels="${LEVELS:-1 4 8 16}"
requests="${REQUESTS:-2}"
rounds="${ROUNDS:-3}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "local_serving: ROUNDS is a positive count" >&2; exit 2; }
prompt_tokens="${PROMPT_TOKENS:-200}"
max_tokens="${MAX_TOKENS:-128}"
baseline="${BASELINE:-1}"
step_tokens="${STEP_TOKENS:-64}"  # rows of a step while others decode (providers.local.step_tokens)
kv="${KV:-f32}"  # iris's KV cache: f32 (exact) or f16 (opt-in; llama-server keeps f16)
[[ "$kv" == f32 || "$kv" == f16 ]] || { echo "local_serving: KV is f32 or f16" >&2; exit 2; }
compute="${COMPUTE:-exact}"
[[ "$compute" == exact || "$compute" == bf16 ]] ||
  { echo "local_serving: COMPUTE is exact or bf16" >&2; exit 2; }
[[ -x "$iris_bin" && -x "$make_ckpt" ]] ||
  { echo "local_serving: build first: scripts/build.sh release" >&2; exit 1; }
llama_server="$llama_dir/build/bin/llama-server"
if [[ "$baseline" == 1 ]]; then
  llama_hint="; or BASELINE=0 for iris alone"
  ensure_llamacpp local_serving llama-server
fi
# Debian's interpreter, where python3-numpy installs (not one earlier on PATH).
py="${PYTHON:-/usr/bin/python3}"
[[ -x "$py" ]] || py=python3
need=()
command -v node >/dev/null || need+=(nodejs)
command -v curl >/dev/null || need+=(curl)
[[ "$baseline" == 1 ]] && ! "$py" -c 'import numpy' 2>/dev/null && need+=(python3-numpy)
if ((${#need[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
max_level=0
for n in $levels; do ((n > max_level)) && max_level=$n; done

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "local_serving: $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {  # url pid log: until GET url answers 200 (llama-server answers 503 while loading)
  for _ in $(seq 600); do
    kill -0 "$2" 2>/dev/null || { echo "server died; its log:" >&2; tail -20 "$3" >&2; exit 1; }
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" == 200 ]] && return 0
    sleep 0.2
  done
  echo "server at $1 never became ready" >&2; exit 1
}
client() { node bench/local_serving.mjs --max-tokens "$max_tokens" --prompt-tokens "$prompt_tokens" "$@"; }

# The shapes: a checkpoint for iris, GGUFs for llama.cpp, and five 512x512 images (PNG, written
# with the standard library; four for the mixed run, one for the same-image questions).
log "writing the random-weight checkpoint and images"
"$make_ckpt" --size 256m --out "$work/smol256" >/dev/null 2>&1
python3 - "$work" <<'EOF'
import struct, sys, zlib
def png(path, seed):
    rows = []
    for y in range(512):
        row = bytearray([0])
        for x in range(512):
            row += bytes(((x * (seed + 1) + y * 3) & 255, (y * (seed + 2) + x) & 255, (x ^ y ^ seed * 37) & 255))
        rows.append(bytes(row))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 512, 512, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) + chunk(b"IEND", b""))
for i in range(5):
    png(f"{sys.argv[1]}/img{i}.png", i)
EOF
mixed_images="$work/img0.png,$work/img1.png,$work/img2.png,$work/img3.png"
if [[ "$baseline" == 1 ]]; then
  log "writing the GGUFs"
  "$py" "$anchors/make_random_smolvlm2_gguf.py" --size 256m --outdir "$work/gguf" \
    --gguf-py "$llama_dir/gguf-py" >&2
  text_gguf=$(ls "$work"/gguf/SmolVLM2-256M*-F16.gguf)
  mmproj_gguf=$(ls "$work"/gguf/mmproj-SmolVLM2-256M*.gguf | head -1)
fi

# iris: one server for every level (max_batch covers the highest).
irisp=$(free_port)
cat > "$work/iris.yaml" <<EOF
server: { listen: 127.0.0.1:$irisp }
providers:
  local: { kind: local, model: $work/smol256, threads: $threads, max_batch: $max_level,
           kv_cache_dtype: $kv, compute: $compute, step_tokens: $step_tokens }
EOF
log "starting iris serve"
"$iris_bin" serve --config "$work/iris.yaml" --db none --offline 2>"$work/iris.log" &
iris_pid=$!; pids+=("$iris_pid")
wait_ready "http://127.0.0.1:$irisp/readyz" "$iris_pid" "$work/iris.log"
iris_url="http://127.0.0.1:$irisp"
iris_model="local/smolvlm2"
client --url "$iris_url" --model "$iris_model" --mode load --words 20 --clients 1 --requests 1 >/dev/null
iris_cal=$(client --url "$iris_url" --model "$iris_model" --mode calibrate)
iris_words=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["words"])' "$iris_cal")
log "iris: $iris_cal"

llama_pid=""
start_llama() {  # parallel
  if [[ -n "$llama_pid" ]]; then  # (and out of the list the exit trap kills)
    kill "$llama_pid"; wait "$llama_pid" 2>/dev/null || true
    for i in "${!pids[@]}"; do
      if [[ "${pids[$i]}" == "$llama_pid" ]]; then unset 'pids[i]'; fi
    done
  fi
  llamap=$(free_port)
  "$llama_server" -m "$text_gguf" --mmproj "$mmproj_gguf" -t "$threads" -tb "$threads" \
    --parallel "$1" -cb -c $(($1 * 2048)) --host 127.0.0.1 --port "$llamap" >"$work/llama.log" 2>&1 &
  llama_pid=$!; pids+=("$llama_pid"); llama_parallel=$1
  wait_ready "http://127.0.0.1:$llamap/health" "$llama_pid" "$work/llama.log"
  llama_url="http://127.0.0.1:$llamap"
  # Both answer max_tokens in full: random weights may pick the end token early.
  client --url "$llama_url" --model gguf --mode load --words 20 --clients 1 --requests 1 \
    --extra '{"ignore_eos":true}' >/dev/null
  if [[ -z "${llama_words:-}" ]]; then
    llama_cal=$(client --url "$llama_url" --model gguf --mode calibrate)
    llama_words=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["words"])' "$llama_cal")
    log "llama-server: $llama_cal"
  fi
}

results="$work/results.jsonl"
: > "$results"
# The engine's own step times over a run (iris_local_step_seconds from /metrics, before and
# after): beside the callers' gaps between tokens, they tell a slow step from a slow delivery.
scrape_steps() { curl -s "$iris_url/metrics" | grep '^iris_local_step_seconds_bucket' || true; }
with_steps() {  # result before_file after_file: the result with "step_ms" {p50, p99, steps}
  python3 - "$1" "$2" "$3" <<'EOF'
import json, re, sys
def buckets(path):
    out = {}
    for line in open(path):
        m = re.match(r'iris_local_step_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if m: out[float(m.group(1))] = float(m.group(2))
    return out
before, after = buckets(sys.argv[2]), buckets(sys.argv[3])
les = sorted(after)
counts = [after[le] - before.get(le, 0) for le in les]  # cumulative over the run
result = json.loads(sys.argv[1])
def quantile(q):  # as Prometheus's histogram_quantile: linear within the bucket
    total = counts[-1] if counts else 0
    if total <= 0: return None
    rank, lo, below = q * total, 0.0, 0.0
    for le, c in zip(les, counts):
        if c >= rank:
            if le == float("inf"): return round(lo * 1e3, 1)
            return round((lo + (le - lo) * (rank - below) / max(c - below, 1)) * 1e3, 1)
        lo, below = le, c
if counts:
    result["step_ms"] = {"p50": quantile(0.5), "p99": quantile(0.99), "steps": int(counts[-1])}
print(json.dumps(result))
EOF
}
record() {  # run server result [round]
  echo "{\"run\":\"$1\",\"server\":\"$2\",\"round\":${4:-1},\"result\":$3}" >> "$results"
  log "$1 $2${4:+ round $4}: $3"
}
# Rounds outside, levels inside: every round measures each level once, so a slow stretch of the
# machine falls on all levels (the ratios between levels) as on both servers (the two alternate
# at each level). llama-server restarts with --parallel N whenever the level changes.
for ((round = 1; round <= rounds; round++)); do
  for n in $levels; do
    r=$requests; ((n == 1 && r < 4)) && r=4
    # New questions each round (a seed of its own, the same for both servers): a prompt asked
    # before would be answered from the prefix cache, and this measures serving, not the cache.
    seed=$((n * 1000 + round))
    scrape_steps > "$work/steps_before"
    out=$(client --url "$iris_url" --model "$iris_model" --mode load --clients "$n" --requests "$r" \
      --words "$iris_words" --seed "$seed")
    scrape_steps > "$work/steps_after"
    out=$(with_steps "$out" "$work/steps_before" "$work/steps_after")
    record "text-$n" iris "$out" "$round"
    if [[ "$baseline" == 1 ]]; then
      [[ "${llama_parallel:-}" == "$n" ]] || start_llama "$n"
      out=$(client --url "$llama_url" --model gguf --mode load --clients "$n" --requests "$r" \
        --words "$llama_words" --seed "$seed" --extra '{"ignore_eos":true}')
      record "text-$n" llama-server "$out" "$round"
    fi
  done
done
if [[ "${MIXED:-1}" == 1 ]]; then
  out=$(client --url "$iris_url" --model "$iris_model" --mode load --clients "$max_level" \
    --requests 1 --words "$iris_words" --seed 999 --images "$mixed_images" --image-every 4)
  record "mixed-$max_level" iris "$out"
  if [[ "$baseline" == 1 ]]; then
    [[ "${llama_parallel:-}" == "$max_level" ]] || start_llama "$max_level"
    out=$(client --url "$llama_url" --model gguf --mode load --clients "$max_level" --requests 1 \
      --words "$llama_words" --seed 999 --images "$mixed_images" --image-every 4 \
      --extra '{"ignore_eos":true}')
    record "mixed-$max_level" llama-server "$out"
  fi
fi
if [[ "${SAME_IMAGE:-1}" == 1 ]]; then
  out=$(client --url "$iris_url" --model "$iris_model" --mode same-image --images "$work/img4.png")
  record same-image iris "$out"
  if [[ "$baseline" == 1 ]]; then
    out=$(client --url "$llama_url" --model gguf --mode same-image --images "$work/img4.png")
    record same-image llama-server "$out"
  fi
fi

python3 - "$results" "$threads" "$iris_cal" "${llama_cal:-null}" "$kv" "$step_tokens" "$compute" <<'EOF'
import json, sys
import statistics
runs = [json.loads(l) for l in open(sys.argv[1])]
rounds = {}
for r in runs:
    rounds.setdefault((r["run"], r["server"]), []).append(r["result"])
def median_of(results):
    # Each figure's median over the rounds (one round: itself).
    if len(results) == 1:
        return results[0]
    def med(values):  # (a round with no samples has null percentiles: left out)
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None
    m = {"output_tok_s": med(x["output_tok_s"] for x in results)}
    for k in ("ttft_ms", "itl_ms", "step_ms"):
        if all(k in x for x in results):
            m[k] = {p: med(x[k][p] for x in results) for p in ("p50", "p99")}
    return m
by = {k: median_of(v) for k, v in rounds.items()}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
out = {"benchmark": "local_serving", "model": "SmolVLM2-256M shapes, random weights",
       "machine": {"cpu": cpu, "threads": int(sys.argv[2])}, "iris_kv_cache_dtype": sys.argv[5],
       "iris_step_tokens": int(sys.argv[6]), "iris_compute": sys.argv[7],
       "calibration": {"iris": json.loads(sys.argv[3]), "llama-server": json.loads(sys.argv[4])},
       "runs": runs,
       "medians": {f"{k[0]} {k[1]}": v for k, v in by.items() if len(rounds[k]) > 1}}
levels = sorted(int(k[0].split("-")[1]) for k in by if k[0].startswith("text-") and k[1] == "iris")
def ratio(a, b):  # (null where a figure is missing: a run with no samples)
    return round(a / b, 2) if a is not None and b else None
if levels:
    one, top = by[(f"text-{levels[0]}", "iris")], by[(f"text-{levels[-1]}", "iris")]
    ratios = {
        f"iris_tok_s_{levels[-1]}_over_{levels[0]}": ratio(top["output_tok_s"], one["output_tok_s"]),
        f"iris_itl_p99_{levels[-1]}_over_{levels[0]}": ratio(top["itl_ms"]["p99"], one["itl_ms"]["p99"]),
    }
    ll = by.get((f"text-{levels[-1]}", "llama-server"))
    if ll:
        ratios[f"iris_over_llama_tok_s_at_{levels[-1]}"] = ratio(top["output_tok_s"], ll["output_tok_s"])
    for n in levels:
        l = by.get((f"text-{n}", "llama-server"))
        if l:
            ratios[f"iris_over_llama_tok_s_at_{n}"] = ratio(by[(f"text-{n}", "iris")]["output_tok_s"], l["output_tok_s"])
    si = by.get(("same-image", "iris"))
    if si:
        ratios["iris_same_image_ttft_speedup"] = si["speedup"]
    out["ratios"] = ratios
    # The top level over the lowest within each round (the two measured minutes apart).
    lo = {r["round"]: r["result"]["output_tok_s"] for r in runs
          if r["run"] == f"text-{levels[0]}" and r["server"] == "iris"}
    hi = {r["round"]: r["result"]["output_tok_s"] for r in runs
          if r["run"] == f"text-{levels[-1]}" and r["server"] == "iris"}
    out["iris_tok_s_ratio_by_round"] = [ratio(hi[k], lo[k]) for k in sorted(lo) if k in hi]
print(json.dumps(out, indent=1))
EOF
