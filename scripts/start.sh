#!/usr/bin/env bash
# The README's first command: set up, build Release, and run iris on the bundled tiny model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
model="${IRIS_MODEL:-tests/data/smolvlm2/tiny-256m-style}"
if [[ -z "${IRIS_MODEL:-}" ]]; then
  echo "start: running the bundled tiny random-weight test model (its answer is noise);" \
       "set IRIS_MODEL=DIR for a real SmolVLM2 checkpoint" >&2
fi
exec build/release/iris run --model "$model" --max-tokens 32 "${@:-What is the capital of France?}"
