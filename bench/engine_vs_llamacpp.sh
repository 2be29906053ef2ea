#!/usr/bin/env bash
# The engine beside llama.cpp on the same machine, the same GGUF files and the same shapes, in
# one run: prefill 512 tokens, decode 128 (from the start of the context, as llama-bench's
# tg128, and again after a 512-token prompt), the vision tower per tile, and time to first token
# for a 1024x768 image, for each model size and weight type, iris and llama.cpp interleaved
# round by round (median of the rounds). Prints one JSON object with every figure and the
# ratio iris / llama.cpp (speeds: > 1 means iris is faster; times: < 1 means iris is faster),
# plus the machine's read bandwidth and the share of it each engine's decode reaches.
#
#   bash bench/engine_vs_llamacpp.sh
#
# Environment:
#   SIZES       model sizes (default "256m"; "256m 2.2b" for both: the 2.2B files take ~9 GB)
#   TYPES       text weight types (default "F16 Q8_0 Q4_0"; Q4_K_M is added for 2.2b)
#   THREADS     threads for both engines (default 2)
#   ROUNDS      interleaved rounds (default 3)
#   LLAMA_CPP_GIT, LLAMA_CPP_DIR  where llama.cpp is built and from what (bench/llamacpp.sh)
#   MODELS_DIR  where the random-weight GGUFs are written once (default ~/.cache/iris-bench/models)
#   IRIS_BIN    default build/release/iris (scripts/build.sh release)
#   BF16        1 (default, where the CPU has AVX512-BF16): also iris --compute bf16 on the F16
#               files (vision per tile, time to first token, prefill 512) in each vision round
#   VISION      1 (default); 0 leaves out the vision rows (per tile, time to first token): a
#               text-only run, e.g. SIZES=2.2b TYPES=Q4_K_M VISION=0
#   KV          iris's KV cache for the text rows: f32 (default, exact) or f16 (opt-in
#               --kv-cache-dtype f16, what llama.cpp keeps by default: its -ctk/-ctv f16)
#
# The GGUFs hold random weights of the real SmolVLM2 shapes (../shared/anchors/
# make_random_smolvlm2_gguf.py; speed does not depend on the values), quantized with
# llama-quantize. iris reads the same files. llama.cpp's figures are its own: llama-bench for
# prefill/decode, run with the weights mapped from the file (its default) and loaded (--load-mode none),
# the ratios taken against the faster of the two; llama-mtmd-cli's logged per-tile encoding times for vision, and for time to
# first token the time from its first image encoding to its exit after one token (its image
# decoding and preprocessing come before that and are not counted; iris's time to first token
# includes both, so the comparison leans towards llama.cpp).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="${SIZES:-256m}"
types="${TYPES:-F16 Q8_0 Q4_0}"
threads="${THREADS:-2}"
rounds="${ROUNDS:-3}"
anchors="${ANCHORS:-../shared/anchors}"
source bench/llamacpp.sh
models="${MODELS_DIR:-$bench_cache/models}"
iris_bin="${IRIS_BIN:-build/release/iris}"
# The opt-in bf16 products are measured too where the CPU has AVX512-BF16 (BF16=0 skips them).
bf16="${BF16:-1}"
vision="${VISION:-1}"
kv="${KV:-f32}"
[[ "$kv" == f32 || "$kv" == f16 ]] || { echo "engine_vs_llamacpp: KV is f32 or f16" >&2; exit 2; }
grep -qw avx512_bf16 /proc/cpuinfo || bf16=0
py="${PYTHON:-/usr/bin/python3}"
[[ -x "$py" ]] || py=python3
log() { echo "engine_vs_llamacpp: $*" >&2; }

[[ -x "$iris_bin" ]] || { log "build first: scripts/build.sh release"; exit 1; }
if ! "$py" -c 'import numpy' 2>/dev/null || ! command -v cc >/dev/null; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    python3-numpy gcc libgomp1 >&2
fi
bin="$llama_dir/build/bin"
ensure_llamacpp engine_vs_llamacpp llama-bench llama-quantize llama-mtmd-cli

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cc -O2 -march=native -fopenmp bench/read_bandwidth.c -o "$work/read_bandwidth"
bandwidth=$("$work/read_bandwidth" "$threads")
log "read bandwidth: $bandwidth"

# A 1024x768 photo-like PNG (smooth gradients and noise), written with the standard library.
"$py" - "$work/image.png" <<'PYEOF'
import struct, sys, zlib, random
w, h = 1024, 768
rnd = random.Random(7)
rows = bytearray()
for y in range(h):
    rows.append(0)
    for x in range(w):
        n = rnd.randrange(24)
        rows += bytes(((x * 255 // w + n) % 256, (y * 255 // h + n) % 256, ((x + y) * 127 // (w + h) + n) % 256))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(bytes(rows), 6)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PYEOF

median() { "$py" -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(statistics.median(v) if v else 0)' "$@"; }
results="$work/results.jsonl"
: > "$results"
record() { echo "$1" >> "$results"; }

for size in $sizes; do
  dir="$models/$size"
  mkdir -p "$dir"
  if ! ls "$dir"/SmolVLM2-*-F16.gguf >/dev/null 2>&1; then
    log "writing random-weight $size GGUFs to $dir (once)"
    "$py" "$anchors/make_random_smolvlm2_gguf.py" --size "$size" --outdir "$dir" \
      --gguf-py "$llama_dir/gguf-py" --mmproj-types f16 >&2
  fi
  f16=$(ls "$dir"/SmolVLM2-*-F16.gguf | head -1)
  mmproj=$(ls "$dir"/mmproj-*F16*.gguf | head -1)
  size_types="$types"
  [[ "$size" == "2.2b" && " $types " != *" Q4_K_M "* ]] && size_types="$types Q4_K_M"
  for t in $size_types; do
    file="$f16"
    if [[ "$t" != F16 ]]; then
      file="${f16%-F16.gguf}-$t.gguf"
      [[ -f "$file" ]] || "$bin/llama-quantize" "$f16" "$file" "$t" "$threads" >"$work/quantize.log" 2>&1 ||
        { cat "$work/quantize.log" >&2; exit 1; }
    fi
    weight_bytes=$(stat -c %s "$file")
    iris_pp=(); iris_tg=(); llama_pp=(); llama_tg=(); mmap_pp=(); mmap_tg=(); nommap_pp=(); nommap_tg=()
    iris_tg_d=(); llama_tg_d=()
    for ((r = 0; r < rounds; ++r)); do
      log "$size $t round $((r + 1))/$rounds"
      # Decode is measured as llama-bench measures it: 128 tokens from the start of the context
      # (its tg128 runs on an empty cache); and both again after a 512-token prompt (iris's
      # decode following its prefill, llama-bench's tg128 at depth 512), where the caches'
      # size shows.
      out=$("$iris_bin" bench --model "$file" --prompt-tokens 512 --decode-tokens 128 \
        --vision-tiles 0 --threads "$threads" --kv-cache-dtype "$kv" --json)
      iris_pp+=("$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["prefill_tokens_per_second"])' "$out")")
      iris_tg_d+=("$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["decode_tokens_per_second"])' "$out")")
      out=$("$iris_bin" bench --model "$file" --prompt-tokens 1 --decode-tokens 128 \
        --vision-tiles 0 --threads "$threads" --kv-cache-dtype "$kv" --json)
      iris_tg+=("$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["decode_tokens_per_second"])' "$out")")
      # llama.cpp both ways: its default on a CPU reads the weights from the file's mapping
      # (--load-mode mmap), and --load-mode none loads them into its own memory (faster where
      # mapped page-cache pages stall readers, see docs/architecture.md); the ratios are taken
      # against the faster of the two.
      out=$("$bin/llama-bench" -m "$file" -p 512 -n 128 -t "$threads" -r 1 --load-mode mmap,none -o json 2>/dev/null)
      read -r a b c d < <("$py" -c '
import json, sys
rows = json.loads(sys.argv[1])
def ts(mmap, prompt):
    return [x["avg_ts"] for x in rows if (x["load_mode"] == "mmap") == mmap and (x["n_prompt"] > 0) == prompt][0]
print(ts(True, True), ts(True, False), ts(False, True), ts(False, False))' "$out")
      mmap_pp+=("$a"); mmap_tg+=("$b"); nommap_pp+=("$c"); nommap_tg+=("$d")
      llama_pp+=("$("$py" -c 'print(max(float(v) for v in __import__("sys").argv[1:]))' "$a" "$c")")
      llama_tg+=("$("$py" -c 'print(max(float(v) for v in __import__("sys").argv[1:]))' "$b" "$d")")
      out=$("$bin/llama-bench" -m "$file" -p 0 -n 128 -d 512 -t "$threads" -r 1 --load-mode mmap,none -o json 2>/dev/null)
      llama_tg_d+=("$("$py" -c 'import json,sys; print(max(x["avg_ts"] for x in json.loads(sys.argv[1])))' "$out")")
    done
    record "$(printf '{"size":"%s","type":"%s","file":"%s","file_bytes":%s,"iris_prefill_tps":%s,"llama_prefill_tps":%s,"iris_decode_tps":%s,"llama_decode_tps":%s,"llama_mmap":{"prefill_tps":%s,"decode_tps":%s},"llama_no_mmap":{"prefill_tps":%s,"decode_tps":%s},"rounds_iris_decode":[%s],"rounds_llama_decode":[%s],"iris_decode_after_512_tps":%s,"llama_decode_after_512_tps":%s}' \
      "$size" "$t" "$file" "$weight_bytes" "$(median "${iris_pp[@]}")" "$(median "${llama_pp[@]}")" \
      "$(median "${iris_tg[@]}")" "$(median "${llama_tg[@]}")" \
      "$(median "${mmap_pp[@]}")" "$(median "${mmap_tg[@]}")" \
      "$(median "${nommap_pp[@]}")" "$(median "${nommap_tg[@]}")" \
      "$(IFS=,; echo "${iris_tg[*]}")" "$(IFS=,; echo "${llama_tg[*]}")" \
      "$(median "${iris_tg_d[@]}")" "$(median "${llama_tg_d[@]}")")"
  done
  [[ "$vision" == 0 ]] && continue
  # Vision per tile and time to first token for the 1024x768 image, F16 weights and mmproj.
  iris_tile=(); iris_ttft=(); llama_tile=(); llama_ttft=(); tiles=0; bf16_tile=(); bf16_ttft=(); bf16_pp=()
  for ((r = 0; r < rounds; ++r)); do
    log "$size vision round $((r + 1))/$rounds"
    out=$("$iris_bin" bench --model "$f16" --mmproj "$mmproj" --prompt-tokens 8 --decode-tokens 1 \
      --vision-tiles 3 --image "$work/image.png" --threads "$threads" --json)
    iris_tile+=("$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["vision_ms_per_tile"])' "$out")")
    iris_ttft+=("$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["image_ttft"]["time_to_first_token_seconds"])' "$out")")
    if [[ "$bf16" == 1 ]]; then
      # The opt-in bf16 products (--compute bf16): the same image and a 512-token prompt.
      out=$("$iris_bin" bench --model "$f16" --mmproj "$mmproj" --compute bf16 --prompt-tokens 512 \
        --decode-tokens 1 --vision-tiles 3 --image "$work/image.png" --threads "$threads" --json)
      bf16_tile+=("$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["vision_ms_per_tile"])' "$out")")
      bf16_ttft+=("$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["image_ttft"]["time_to_first_token_seconds"])' "$out")")
      bf16_pp+=("$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["prefill_tokens_per_second"])' "$out")")
    fi
    t0=$(date +%s.%N)
    "$bin/llama-mtmd-cli" -m "$f16" --mmproj "$mmproj" --image "$work/image.png" \
      -p "Describe this image." -n 1 -t "$threads" --temp 0 >"$work/mtmd.log" 2>&1 ||
      { tail -20 "$work/mtmd.log" >&2; exit 1; }
    t1=$(date +%s.%N)
    # Its log lines carry the time since it started (M.SS.mmm.uuu): the first token comes at
    # its exit, the image work starts at the first "encoding mtmd batch" (after loading and
    # preprocessing); each tile's encoding time is logged.
    read -r tiles tile_ms ttft_s < <("$py" - "$work/mtmd.log" "$t0" "$t1" <<'PYEOF'
import re, sys
text = open(sys.argv[1], errors="replace").read()
enc = [float(m) for m in re.findall(r"batch encoding done in ([0-9.]+) ms", text)]
start = re.search(r"^(\d+)\.(\d+)\.(\d+)\.(\d+) I encoding mtmd batch", text, re.M)
if not enc or not start:
    sys.exit("llama-mtmd-cli logged no image encoding times")
m, s, ms, us = (int(g) for g in start.groups())
began = m * 60 + s + ms / 1e3 + us / 1e6
print(len(enc), sum(enc) / len(enc), float(sys.argv[3]) - float(sys.argv[2]) - began)
PYEOF
)
    llama_tile+=("$tile_ms"); llama_ttft+=("$ttft_s")
  done
  bf16_json='null'
  if [[ "$bf16" == 1 ]]; then
    bf16_json="$(printf '{"vision_ms_per_tile":%s,"ttft_s":%s,"prefill_tps_f16":%s}' \
      "$(median "${bf16_tile[@]}")" "$(median "${bf16_ttft[@]}")" "$(median "${bf16_pp[@]}")")"
  fi
  record "$(printf '{"size":"%s","vision":true,"llama_image_tiles":%s,"iris_vision_ms_per_tile":%s,"llama_vision_ms_per_tile":%s,"iris_ttft_s":%s,"llama_ttft_s":%s,"iris_bf16":%s}' \
    "$size" "$tiles" "$(median "${iris_tile[@]}")" "$(median "${llama_tile[@]}")" \
    "$(median "${iris_ttft[@]}")" "$(median "${llama_ttft[@]}")" "$bf16_json")"
done

"$py" - "$results" "$bandwidth" "$threads" "$rounds" "$("$iris_bin" --version 2>/dev/null || echo iris)" \
  "$llama_dir/gguf-py" "$kv" <<'PYEOF'
import json, sys
sys.path.insert(0, sys.argv[6])
from gguf import GGUFReader
rows = [json.loads(l) for l in open(sys.argv[1])]
bw = json.loads(sys.argv[2])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
out = {"machine": {"cpu": cpu, "cores": __import__("os").cpu_count(), "read_gb_per_s": bw["read_gb_per_s"]},
       "threads": int(sys.argv[3]), "rounds": int(sys.argv[4]), "iris": sys.argv[5],
       "llama_cpp": "3f545bec", "iris_kv_cache_dtype": sys.argv[7], "llama_kv_cache_type": "f16",
       "text": [], "vision": []}
for r in rows:
    if r.get("vision"):
        r.pop("vision")
        r["ratio_vision_ms_per_tile"] = r["iris_vision_ms_per_tile"] / r["llama_vision_ms_per_tile"]
        r["ratio_ttft"] = r["iris_ttft_s"] / r["llama_ttft_s"]
        if r.get("iris_bf16"):
            b = r["iris_bf16"]
            b["ratio_vision_ms_per_tile"] = b["vision_ms_per_tile"] / r["llama_vision_ms_per_tile"]
            b["ratio_ttft"] = b["ttft_s"] / r["llama_ttft_s"]
        out["vision"].append(r)
        continue
    for k in ("prefill", "decode", "decode_after_512"):
        r[f"ratio_{k}"] = r[f"iris_{k}_tps"] / r[f"llama_{k}_tps"]
    # Bytes of weights each decoded token reads: every tensor once, but only one row of the
    # token embeddings; the share of the machine's read bandwidth that makes at each speed.
    per_token = sum(int(t.n_bytes) for t in GGUFReader(r.pop("file")).tensors
                    if t.name != "token_embd.weight")
    r["weight_bytes_per_token"] = per_token
    for e in ("iris", "llama"):
        r[f"{e}_decode_bandwidth_share"] = per_token * r[f"{e}_decode_tps"] / (bw["read_gb_per_s"] * 1e9)
    out["text"].append(r)
# The opt-in bf16 products' prefill, beside llama.cpp's on the same F16 file (its F16 products
# round the activations to f16).
for v in out["vision"]:
    b = v.get("iris_bf16")
    f16 = [r for r in out["text"] if r["size"] == v["size"] and r["type"] == "F16"]
    if b and f16:
        b["ratio_prefill_f16"] = b["prefill_tps_f16"] / f16[0]["llama_prefill_tps"]
print(json.dumps(out, indent=1))
PYEOF
