#!/usr/bin/env bash
# The README's first command: set up, build Release, and run the gateway, `iris serve`.
# With no arguments it serves on 127.0.0.1:8080 with every cloud provider whose key is in the
# environment plus the local SmolVLM2-256M (found in the Hugging Face cache or downloaded on
# first start). Arguments go to `iris serve` (e.g. --config iris.yaml, --model DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
args=("$@")
if [[ -n "${IRIS_MODEL:-}" ]]; then
  args+=(--model "$IRIS_MODEL")
fi
exec build/release/iris serve "${args[@]}"
