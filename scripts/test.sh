#!/usr/bin/env bash
# The README's second command (and CI's): set up, check the formatting, build, and run the
# whole test suite, first in Release, then under AddressSanitizer + UndefinedBehaviorSanitizer;
# then the tests of the gateway's threaded modules under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# Formatting first: it takes seconds and fails before any build does.
echo "== format (clang-format --dry-run over the tracked *.cc and *.h)"
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "not a git checkout: formatting not checked"
elif ! format_errors=$(git ls-files -z -- '*.cc' '*.h' | xargs -0r clang-format --dry-run -Werror 2>&1); then
  echo "$format_errors" | grep -F 'error:' | cut -d: -f1 | sort -u | sed 's/^/  /'
  echo "test: the files above do not follow .clang-format; fix them with clang-format -i FILE..."
  exit 1
fi

status=0
for preset in release asan-ubsan; do
  echo "== build ($preset)"
  scripts/build.sh "$preset"
  echo "== test ($preset)"
  ctest --preset "$preset" -j "$(nproc)" || status=1
done

# ThreadSanitizer over the modules where threads meet (workers, pools, the engine queue, the
# request log's writer, the key table's refresher and the settlers): only their test binaries
# are built, and only their tests run (each module's tests carry its name as a label). A module
# without tests yet is skipped.
tsan_modules=(gateway_http gateway_upstream gateway_routing gateway_local gateway_observe
  gateway_access gateway_proxy gateway_tuning net)
echo "== build (tsan: ${tsan_modules[*]})"
cmake --preset tsan >/dev/null  # always: the target query below reads build.ninja
targets=()
labels=()
for m in "${tsan_modules[@]}"; do
  if ninja -C build/tsan -t query "iris_${m}_test" >/dev/null 2>&1; then
    targets+=("iris_${m}_test")
    labels+=("iris_${m}")
  fi
done
cmake --build build/tsan -j "$(nproc)" --target "${targets[@]}"
echo "== test (tsan)"
ctest --preset tsan -j "$(nproc)" -L "^($(IFS='|'; echo "${labels[*]}"))\$" || status=1
exit $status
