#!/usr/bin/env bash
# Installs what iris needs on Debian 12 (as root), only what is missing. Idempotent: a
# second run installs nothing and takes a second.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache git
  libboost-json1.81-dev libexpected-dev libcli11-dev libspdlog-dev libfmt-dev
  libhwy-dev libpcre2-dev libssl-dev libboost-system1.81-dev
  libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
  libyaml-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang clang-format clang-tidy
)

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
