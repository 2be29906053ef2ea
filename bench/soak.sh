#!/usr/bin/env bash
# Soak test: `iris serve` at a fixed request rate for a long time, with upstream faults injected
# (fallbacks, retries, cut streams) and caller mistakes, against the e2e fake upstreams. Prints
# one JSON object: every request's outcome, RSS over time (flat after warm-up is the goal), and
# the request log's row count after a graceful stop (nothing lost is the goal).
#
#   bash bench/soak.sh [seconds (default 1800)] [requests per second (default 1000)]
#
# Needs a Release build (scripts/build.sh release) and the e2e npm packages (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-1800}"
rate="${2:-1000}"
iris_bin="${IRIS_BIN:-build/release/iris}"
[[ -x "$iris_bin" ]] || { echo "soak: build first: scripts/build.sh release" >&2; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The fake upstreams (faults chosen by model name; tests/e2e/fake_upstreams.mjs).
FAKE_UPSTREAM_KEY=soak node tests/e2e/fake_upstreams.mjs 0 > "$work/fake.json" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$work/fake.json" ]] && break; sleep 0.1; done
base="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["urls"]["openai"].rsplit("/openai",1)[0])' "$work/fake.json")"

cat > "$work/iris.yaml" <<YAML
server: { listen: 127.0.0.1:0, shutdown_grace_ms: 10000 }
providers:
  openai:  { kind: openai,  base_url: $base/openai/v1,  api_key_env: SOAK_KEY }
  mistral: { kind: mistral, base_url: $base/mistral/v1, api_key_env: SOAK_KEY }
routing: { backoff_base_ms: 5, backoff_max_ms: 20, breaker: { failure_threshold: 1000 } }
models:
  ok:       { targets: [openai/gpt-4o-mini] }
  fallback: { targets: [openai/fail-503-soak, mistral/mistral-small-latest], retries: 0 }
  retry:    { targets: [openai/ratelimit-1000000000-soak], retries: 1 }
  cut:      { targets: [openai/cut-mid-soak], retries: 0 }
  reject:   { targets: [openai/fail-400-soak] }
YAML

SOAK_KEY=soak "$iris_bin" serve --config "$work/iris.yaml" --model none \
  --db "$work/soak.db" > "$work/iris.log" 2>&1 &
iris_pid=$!
pids+=($iris_pid)
url=""
for _ in $(seq 300); do
  url="$(grep -o 'listening on http://[^ ]*' "$work/iris.log" | head -1 | cut -d' ' -f3 || true)"
  [[ -n "$url" ]] && break
  sleep 0.1
done
[[ -n "$url" ]] || { cat "$work/iris.log" >&2; exit 1; }

load="$(node bench/soak_load.mjs "$url" "$iris_pid" "$secs" "$rate")"
kill -TERM "$iris_pid"
wait "$iris_pid" || true
rows="$("$iris_bin" usage --db "$work/soak.db" --since all --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["requests"])')"
python3 - "$load" "$rows" <<'PY'
import json, sys
load = json.loads(sys.argv[1]); rows = int(sys.argv[2])
rss = [r for _, r in load["rss_mib"] if r is not None]
warm = rss[len(rss) // 10] if rss else None   # after the first tenth: warmed up
load["rss_warm_mib"] = warm
load["rss_end_mib"] = rss[-1] if rss else None
load["rss_max_mib"] = max(rss) if rss else None
load["rss_growth_after_warmup_pct"] = round(100 * (rss[-1] - warm) / warm, 1) if warm else None
load["request_log_rows"] = rows
load["lost"] = load["sent"] - rows
print(json.dumps(load))
PY
