#!/usr/bin/env bash
# The README's second command (and CI's): set up, build, and run the whole test suite,
# first in Release, then under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
status=0
for preset in release asan-ubsan; do
  echo "== build ($preset)"
  scripts/build.sh "$preset"
  echo "== test ($preset)"
  ctest --preset "$preset" -j "$(nproc)" || status=1
done
exit $status
