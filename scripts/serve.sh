#!/usr/bin/env bash
# Sets Corral up (scripts/setup.sh) and runs a standalone server on the default config.
# Extra arguments go to corrald, e.g. --set server.data_dir=/tmp/corral
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec "${CORRAL_BUILD_DIR:-build}/out/bin/corrald" --config configs/standalone.toml "$@"
