#!/usr/bin/env bash
# Failover time of a 3-voter Corral ensemble on this machine: from SIGKILL / SIGSTOP of the
# leader to the first successful write through a surviving server (min/median/max).
#   bench/failover.sh [--trials N] [--tick-ms T] [--sync-limit S] ...
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh > /dev/null
B="${CORRAL_BUILD_DIR:-build}"
export CORRAL_BIN_DIR="$PWD/$B/out/bin" CORRAL_PLUGIN_DIR="$PWD/$B/out/lib/corral/plugins"
exec "$B/out/bin/corral-failover-bench" "$@"
