#!/usr/bin/env bash
# Gateway benchmark: the latency iris adds over calling an instant upstream directly, its
# requests per second at concurrency 10 (streaming and not), and its peak RSS, with two
# baselines measured in the same run on the same fake: a bare nginx proxy_pass (the ceiling)
# and the Portkey gateway (@portkey-ai/gateway, --headless). Prints one JSON object.
#
#   bash bench/gateway_bench.sh [seconds-per-run (default 10)] [rounds (default 5)]
#
# Throughput is measured in rounds (nginx, iris, iris streaming, one after the other in each
# round) and reported as the median over the rounds, with every round's figures: a shared
# machine is noisy, and a ratio taken within one round is fairer than one across rounds.
# IRIS_BASELINE_BIN=path/to/other/iris adds a second iris (an older build, say) to every round,
# so a change is compared with what it replaces in one sitting. Request logging and metrics
# are on, as in production. Each round also measures the cost of access control: the same iris
# with keys required and a key with a budget, RPM and TPM limits it never reaches, once with
# counters in memory and once in Redis (a redis-server started here).
#
# Needs a Release build (scripts/build.sh release). Installs wrk, nginx-light and the npm
# baselines (bench/package-lock.json) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
rounds="${2:-5}"
iris_bin="${IRIS_BIN:-build/release/iris}"
base_bin="${IRIS_BASELINE_BIN:-}"
[[ -x "$iris_bin" ]] || { echo "gateway_bench: build first: scripts/build.sh release" >&2; exit 1; }
[[ -z "$base_bin" || -x "$base_bin" ]] || { echo "gateway_bench: $base_bin is not executable" >&2; exit 1; }

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v redis-server >/dev/null || need+=(redis-server)
if ((${#need[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
if [[ ! -d bench/node_modules ]]; then
  npm ci --prefix bench --no-audit --no-fund --loglevel=error >&2
fi

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$work/nginx.pid" "$work/nginx-proxy.pid"; do
    [[ -f "$f" ]] && kill "$(cat "$f")" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fake=$(free_port); proxy=$(free_port); irisp=$(free_port); portkey=$(free_port); basep=$(free_port)
authp=$(free_port); redisauthp=$(free_port); redisp=$(free_port)

# Two nginx processes, one worker each: the instant fake upstream (a real chat.completion body,
# and an SSE stream with [DONE]), and a bare proxy_pass to it with upstream keep-alive. The proxy
# runs apart from the fake, as iris does: in one worker, the proxy's hop to its upstream would
# cost no wake-up of another process, which no real deployment gets.
json='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how are you?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":7,"total_tokens":21}}'
chunk() { printf 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":%s,"finish_reason":%s}]}\\n\\n' "$1" "$2"; }
sse="$(chunk '{"role":"assistant","content":""}' null)$(chunk '{"content":"Hello there, "}' null)$(chunk '{"content":"how are you?"}' null)$(chunk '{}' '"stop"')"'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":14,"completion_tokens":7,"total_tokens":21}}\n\ndata: [DONE]\n\n'
# nginx_conf NAME SERVERS: $work/NAME.conf, one worker with its own pid, log and temp paths.
nginx_conf() {
  cat > "$work/$1.conf" <<EOF
worker_processes 1;
pid $work/$1.pid;
error_log $work/$1.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/$1-body; proxy_temp_path $work/$1-proxy;
  fastcgi_temp_path $work/$1-fcgi; uwsgi_temp_path $work/$1-uwsgi; scgi_temp_path $work/$1-scgi;
  keepalive_requests 1000000;
$2
}
EOF
}
nginx_conf nginx "  server {
    listen 127.0.0.1:$fake;
    location /json/v1/chat/completions { default_type application/json; return 200 '$json'; }
    location /sse/v1/chat/completions { default_type text/event-stream; return 200 '$sse'; }
  }"
nginx_conf nginx-proxy "  upstream fake { server 127.0.0.1:$fake; keepalive 64; }
  server {
    listen 127.0.0.1:$proxy;
    location / { proxy_pass http://fake; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
  }"
for conf in nginx nginx-proxy; do
  nginx -c "$work/$conf.conf" -e "$work/$conf.err" 2>/dev/null || nginx -c "$work/$conf.conf"
done

# One iris configuration (the port aside) for iris and the baseline build.
iris_yaml() {  # port
  cat <<EOF
server: { listen: 127.0.0.1:$1 }
providers:
  fake:       { kind: openai-compatible, base_url: http://127.0.0.1:$fake/json/v1, api_key_env: BENCH_KEY }
  fakestream: { kind: openai-compatible, base_url: http://127.0.0.1:$fake/sse/v1, api_key_env: BENCH_KEY }
models:
  fast:        { targets: [fake/gpt-4o-mini] }
  fast-stream: { targets: [fakestream/gpt-4o-mini] }
EOF
}
iris_yaml "$irisp" > "$work/iris.yaml"
mkdir -p "$work/iris-data"
BENCH_KEY=bench-key IRIS_DATA_DIR="$work/iris-data" "$iris_bin" serve --config "$work/iris.yaml" --model none \
  2>"$work/iris.log" &
iris_pid=$!; pids+=("$iris_pid")
# Access control on: keys required, one key whose limits are never reached (memory, Redis).
redis-server --port "$redisp" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
  >"$work/redis.log" 2>&1 &
pids+=($!)
mkdir -p "$work/auth-data"
key=$(IRIS_DATA_DIR="$work/auth-data" "$iris_bin" keys create --name bench --budget-usd 1000000 \
  --rpm 1000000000 --tpm 1000000000000 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
{ iris_yaml "$authp"; echo "auth: { mode: keys }"; } > "$work/auth.yaml"
BENCH_KEY=bench-key IRIS_DATA_DIR="$work/auth-data" "$iris_bin" serve --config "$work/auth.yaml" \
  --model none 2>"$work/auth.log" &
pids+=($!)
{ iris_yaml "$redisauthp"; echo "auth: { mode: keys }"; echo "state: redis://127.0.0.1:$redisp/0"; } \
  > "$work/redisauth.yaml"
mkdir -p "$work/redisauth-data" && cp "$work/auth-data/iris.db" "$work/redisauth-data/"  # the same key
BENCH_KEY=bench-key IRIS_DATA_DIR="$work/redisauth-data" "$iris_bin" serve --config "$work/redisauth.yaml" \
  --model none 2>"$work/redisauth.log" &
pids+=($!)
auth_headers="Authorization:Bearer $key"
if [[ -n "$base_bin" ]]; then
  iris_yaml "$basep" > "$work/base.yaml"
  mkdir -p "$work/base-data"
  BENCH_KEY=bench-key IRIS_DATA_DIR="$work/base-data" "$base_bin" serve --config "$work/base.yaml" \
    --model none 2>"$work/base.log" &
  pids+=($!)
fi
node bench/node_modules/@portkey-ai/gateway/build/start-server.js --headless --port="$portkey" \
  >"$work/portkey.log" 2>&1 &
pids+=($!)

wait_port() { for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
wait_port "$fake"; wait_port "$proxy"; wait_port "$irisp"; wait_port "$portkey"
wait_port "$authp"; wait_port "$redisauthp"
[[ -z "$base_bin" ]] || wait_port "$basep"

# wrk -t1 -c10 --latency; prints {"rps","p50_ms","p99_ms","errors"}. BENCH_DELAY_MS in the
# environment paces each connection (a fixed offered rate).
run_wrk() {  # url [headers] [body]
  BENCH_HEADERS="${2:-}" BENCH_BODY="${3:-}" wrk -t1 -c10 -d"${secs}s" --latency -s bench/post.lua "$1" 2>&1 |
    python3 -c '
import json, re, sys
t = sys.stdin.read()
def ms(v):
    n, u = float(re.match(r"[\d.]+", v).group()), re.sub(r"[\d.]+", "", v)
    return round(n * {"us": 1e-3, "ms": 1, "s": 1e3}[u], 3)
out = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))}
for p in ("50", "99"):
    m = re.search(r"\s%s%%\s+([\d.]+\w+)" % p, t)
    out["p%s_ms" % p] = ms(m.group(1)) if m else None
m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
e = re.search(r"Socket errors: (.*)", t)
out["errors"] = int(m.group(1)) if m else 0
if e: out["socket_errors"] = e.group(1)
print(json.dumps(out))'
}

body='{"model":"fast","messages":[{"role":"user","content":"Say hello in five words."}],"max_tokens":16}'
sbody='{"model":"fast-stream","stream":true,"messages":[{"role":"user","content":"Say hello in five words."}],"max_tokens":16}'
pk_headers="x-portkey-provider:openai;x-portkey-custom-host:http://127.0.0.1:$fake/json/v1"

# Warm every path once.
for u in "http://127.0.0.1:$irisp/v1/chat/completions" "http://127.0.0.1:$proxy/json/v1/chat/completions"; do
  curl -s -o /dev/null -X POST -H 'content-type: application/json' -d "$body" "$u"
done
[[ -z "$base_bin" ]] || curl -s -o /dev/null -X POST -H 'content-type: application/json' -d "$body" \
  "http://127.0.0.1:$basep/v1/chat/completions"

direct=$(run_wrk "http://127.0.0.1:$fake/json/v1/chat/completions")
portkey_r=$(run_wrk "http://127.0.0.1:$portkey/v1/chat/completions" "$pk_headers" "$body")
: > "$work/rounds.jsonl"
for ((round = 1; round <= rounds; round++)); do
  n=$(run_wrk "http://127.0.0.1:$proxy/json/v1/chat/completions")
  i=$(run_wrk "http://127.0.0.1:$irisp/v1/chat/completions" "" "$body")
  s=$(run_wrk "http://127.0.0.1:$irisp/v1/chat/completions" "" "$sbody")
  a=$(run_wrk "http://127.0.0.1:$authp/v1/chat/completions" "$auth_headers" "$body")
  ar=$(run_wrk "http://127.0.0.1:$redisauthp/v1/chat/completions" "$auth_headers" "$body")
  b=null; bs=null
  if [[ -n "$base_bin" ]]; then
    b=$(run_wrk "http://127.0.0.1:$basep/v1/chat/completions" "" "$body")
    bs=$(run_wrk "http://127.0.0.1:$basep/v1/chat/completions" "" "$sbody")
  fi
  echo "{\"nginx\": $n, \"iris\": $i, \"iris_stream\": $s, \"iris_auth\": $a, \"iris_auth_redis\": $ar, \"baseline\": $b, \"baseline_stream\": $bs}" >> "$work/rounds.jsonl"
done
# Added latency at about 1,000 req/s: 10 connections, each pausing 10 ms between requests; the
# nginx proxy too, for what one proxy hop adds on this machine (its wake-ups).
: > "$work/paced.jsonl"
for ((round = 1; round <= (rounds + 1) / 2; round++)); do
  pd=$(BENCH_DELAY_MS=10 run_wrk "http://127.0.0.1:$fake/json/v1/chat/completions")
  pn=$(BENCH_DELAY_MS=10 run_wrk "http://127.0.0.1:$proxy/json/v1/chat/completions")
  pi=$(BENCH_DELAY_MS=10 run_wrk "http://127.0.0.1:$irisp/v1/chat/completions" "" "$body")
  echo "{\"direct\": $pd, \"nginx\": $pn, \"iris\": $pi}" >> "$work/paced.jsonl"
done
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$iris_pid/status")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')

python3 - "$direct" "$portkey_r" "$work/rounds.jsonl" "$work/paced.jsonl" "$rss_kib" "$cpu" "$secs" <<'EOF'
import json, statistics, sys
d, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rounds = [json.loads(l) for l in open(sys.argv[3])]
paced = [json.loads(l) for l in open(sys.argv[4])]
rss, cpu, secs = int(sys.argv[5]), sys.argv[6], int(sys.argv[7])
r = lambda x: round(x, 3) if x is not None else None
med = lambda xs: r(statistics.median(xs))
out = {
  "machine": {"cpu": cpu, "cores": __import__("os").cpu_count()},
  "method": f"wrk -t1 -c10 -d{secs}s --latency (POST chat completion) against an nginx `return 200` fake on loopback, nginx proxy_pass in its own process; {len(rounds)} rounds of nginx, iris and iris streaming one after the other, medians over the rounds; paced: each connection pausing 10 ms between requests (about 1,000 req/s), median of {len(paced)} rounds",
  "fake_direct": d, "portkey": p,
  "median": {
    "nginx_rps": med([x["nginx"]["rps"] for x in rounds]),
    "iris_rps": med([x["iris"]["rps"] for x in rounds]),
    "iris_stream_rps": med([x["iris_stream"]["rps"] for x in rounds]),
    "iris_vs_nginx_rps": med([x["iris"]["rps"] / x["nginx"]["rps"] for x in rounds]),
    "iris_stream_vs_iris_rps": med([x["iris_stream"]["rps"] / x["iris"]["rps"] for x in rounds]),
    "iris_added_p50_ms_c10": med([x["iris"]["p50_ms"] - d["p50_ms"] for x in rounds]),
    "iris_added_p99_ms_c10": med([x["iris"]["p99_ms"] - d["p99_ms"] for x in rounds]),
    "iris_auth_rps": med([x["iris_auth"]["rps"] for x in rounds]),
    "iris_auth_redis_rps": med([x["iris_auth_redis"]["rps"] for x in rounds]),
    # The share of iris's throughput that keys + budget + limits cost (target < 0.15).
    "auth_cost": med([1 - x["iris_auth"]["rps"] / x["iris"]["rps"] for x in rounds]),
    "auth_redis_cost": med([1 - x["iris_auth_redis"]["rps"] / x["iris"]["rps"] for x in rounds]),
  },
  "iris_vs_portkey_rps": r(statistics.median([x["iris"]["rps"] for x in rounds]) / p["rps"]),
  "paced_about_1000rps": {
    "added_p50_ms": med([x["iris"]["p50_ms"] - x["direct"]["p50_ms"] for x in paced]),
    "added_p99_ms": med([x["iris"]["p99_ms"] - x["direct"]["p99_ms"] for x in paced]),
    "nginx_added_p50_ms": med([x["nginx"]["p50_ms"] - x["direct"]["p50_ms"] for x in paced]),
    "nginx_added_p99_ms": med([x["nginx"]["p99_ms"] - x["direct"]["p99_ms"] for x in paced]),
    "rounds": paced,
  },
  "iris_peak_rss_mib": round(rss / 1024, 1),
  "rounds": rounds,
}
if rounds[0]["baseline"] is not None:
  m = out["median"]
  m["baseline_rps"] = med([x["baseline"]["rps"] for x in rounds])
  m["baseline_stream_rps"] = med([x["baseline_stream"]["rps"] for x in rounds])
  m["baseline_vs_nginx_rps"] = med([x["baseline"]["rps"] / x["nginx"]["rps"] for x in rounds])
  m["iris_vs_baseline_rps"] = med([x["iris"]["rps"] / x["baseline"]["rps"] for x in rounds])
  m["iris_stream_vs_baseline_stream_rps"] = med(
      [x["iris_stream"]["rps"] / x["baseline_stream"]["rps"] for x in rounds])
print(json.dumps(out, indent=2))
EOF
