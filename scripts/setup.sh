#!/usr/bin/env bash
# Installs what Corral needs on Debian 12 (only what is missing) and builds it into build/.
# Idempotent: a second run installs nothing and rebuilds only what changed (ccache helps).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config ccache
  libboost-dev libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libtomlplusplus-dev
  liblmdb-dev libspdlog-dev libssl-dev libreadline-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-kazoo libzookeeper-mt-dev clang zookeeper
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

BUILD_DIR=${CORRAL_BUILD_DIR:-build}
BUILD_TYPE=${CORRAL_BUILD_TYPE:-RelWithDebInfo}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
