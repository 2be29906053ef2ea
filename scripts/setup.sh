#!/usr/bin/env bash
# Installs what iris needs on Debian 12 (as root), only what is missing. Idempotent: a
# second run installs nothing and takes a second.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache lld git
  libboost-json1.81-dev libexpected-dev libcli11-dev libspdlog-dev libfmt-dev
  libhwy-dev libpcre2-dev libssl-dev libboost-system1.81-dev
  libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
  libyaml-cpp-dev libsqlite3-dev libpq-dev libjemalloc-dev
  postgresql redis-server libhiredis-dev prometheus chromium
  libgtest-dev libgmock-dev libbenchmark-dev
  clang clang-format clang-tidy
)

# Node.js runs the end-to-end tests with the real npm clients (openai, @anthropic-ai/sdk, ai).
# Debian's nodejs/npm unless a Node.js is already installed (it may come with its own npm).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

# npm packages for the e2e tests, exactly as locked in tests/e2e/package-lock.json.
e2e="$(dirname "$0")/../tests/e2e"
if [[ ! -d "$e2e/node_modules" || "$e2e/package-lock.json" -nt "$e2e/node_modules/.package-lock.json" ]]; then
  echo "setup: installing npm packages for tests/e2e"
  npm ci --prefix "$e2e" --no-audit --no-fund --loglevel=error
else
  echo "setup: npm packages for tests/e2e present"
fi
