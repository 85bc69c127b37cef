#!/usr/bin/env bash
# Sets Corral up (scripts/setup.sh) and runs the whole test suite through ctest.
# Extra arguments go to ctest, e.g. -L unit
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cd "${CORRAL_BUILD_DIR:-build}"
exec ctest --output-on-failure -j"$(nproc)" "$@"
