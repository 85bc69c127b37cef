#!/usr/bin/env bash
# Runs the jute fuzz target for a bounded time over the committed corpus; new inputs it finds
# go to a scratch folder, so the run leaves the source tree alone.
set -euo pipefail
fuzzer=$1 corpus=$2 seconds=${3:-20}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  "$scratch" "$corpus"
