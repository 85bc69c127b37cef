#!/usr/bin/env bash
# Recovery benchmark: start-up time and resident memory of corrald (lmdb storage) with
# N znodes of 100 bytes (default 1,000,000). Builds first (scripts/setup.sh).
#   bench/recovery.sh [--nodes N] [--runs R]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
BUILD=${CORRAL_BUILD_DIR:-build}
export CORRAL_BIN_DIR=$PWD/$BUILD/out/bin
export CORRAL_PLUGIN_DIR=$PWD/$BUILD/out/lib/corral/plugins
exec "$BUILD/out/bin/corral-recovery-bench" "$@"
