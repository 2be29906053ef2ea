# Sourced by the benchmarks that run llama.cpp beside iris (engine_vs_llamacpp.sh,
# local_serving.sh): where its build lives, and building it there once.
#   LLAMA_CPP_DIR  the build (default ~/.cache/iris-bench/llama.cpp, outside the repository)
#   LLAMA_CPP_GIT  a git directory holding llama.cpp commit 3f545bec (e.g. the snapshot of
#                  github:ngxson/llama.cpp); needed only when LLAMA_CPP_DIR holds no build yet
bench_cache="${XDG_CACHE_HOME:-$HOME/.cache}/iris-bench"
llama_dir="${LLAMA_CPP_DIR:-$bench_cache/llama.cpp}"

# ensure_llamacpp NAME TOOL...: builds llama.cpp into $llama_dir when one of the tools
# ($llama_dir/build/bin/TOOL) is missing, or says how and exits. Needs $anchors.
ensure_llamacpp() {
  local name="$1" tool missing=0
  shift
  for tool in "$@"; do [[ -x "$llama_dir/build/bin/$tool" ]] || missing=1; done
  ((missing)) || return 0
  if [[ -z "${LLAMA_CPP_GIT:-}" ]]; then
    echo "$name: no llama.cpp build in $llama_dir: set LLAMA_CPP_GIT to a git directory holding" \
      "commit 3f545bec (the snapshot of github:ngxson/llama.cpp) to build it there once," \
      "or LLAMA_CPP_DIR to a build" >&2
    exit 1
  fi
  echo "$name: building llama.cpp in $llama_dir (once)" >&2
  mkdir -p "$(dirname "$llama_dir")"
  bash "$anchors/build-llamacpp.sh" "$LLAMA_CPP_GIT" "$llama_dir" >&2
}
