#!/usr/bin/env bash
# Corral vs Apache ZooKeeper, standalone, side by side on this machine (bench/compare.py):
#   bench/compare.sh [--seconds S] [--runs R] [--ops set,get,exists] [--cells 1x1,8x16,32x32]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh > /dev/null   # builds Corral; installs zookeeper (Debian) if missing
exec /usr/bin/python3 bench/compare.py "$@"
