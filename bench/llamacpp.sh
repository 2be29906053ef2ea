# shellcheck shell=bash
# Sourced by the benchmarks that run llama.cpp beside iris (engine_vs_llamacpp.sh,
# local_serving.sh): where its build lives, and building it there once.
#   LLAMA_CPP_DIR  the build (default ~/.cache/iris-bench/llama.cpp, outside the repository)
#   LLAMA_CPP_GIT  a git directory holding llama.cpp commit 3f545bec (e.g. the snapshot of
#                  github:ngxson/llama.cpp); needed only when LLAMA_CPP_DIR holds no build yet
bench_cache="${XDG_CACHE_HOME:-$HOME/.cache}/iris-bench"
llama_dir="${LLAMA_CPP_DIR:-$bench_cache/llama.cpp}"

# ensure_llamacpp NAME TOOL...: builds llama.cpp into $llama_dir when one of the tools
# ($llama_dir/build/bin/TOOL) is missing, or says how and exits ($llama_hint, when set, ends
# that message). The build script empties its directory first, so it builds only into a new
# or empty one, or one it built before (marked), never into someone's own tree.
ensure_llamacpp() {
  local name="$1" tool missing=0 mark="$llama_dir/.built-by-iris-bench"
  shift
  for tool in "$@"; do [[ -x "$llama_dir/build/bin/$tool" ]] || missing=1; done
  ((missing)) || return 0
  if [[ -z "${LLAMA_CPP_GIT:-}" ]]; then
    echo "$name: no llama.cpp build in $llama_dir: set LLAMA_CPP_GIT to a git directory holding" \
      "commit 3f545bec (the snapshot of github:ngxson/llama.cpp) to build it there once," \
      "or LLAMA_CPP_DIR to a build${llama_hint:-}" >&2
    exit 1
  fi
  if [[ -d "$llama_dir" && -n "$(ls -A "$llama_dir")" && ! -e "$mark" ]]; then
    echo "$name: $llama_dir holds files but lacks $*; building there would delete them:" \
      "remove it, or set LLAMA_CPP_DIR to a new directory" >&2
    exit 1
  fi
  echo "$name: building llama.cpp in $llama_dir (once)" >&2
  mkdir -p "$(dirname "$llama_dir")"
  bash "${anchors:?set anchors before ensure_llamacpp}/build-llamacpp.sh" "$LLAMA_CPP_GIT" \
    "$llama_dir" >&2
  touch "$mark"
}
