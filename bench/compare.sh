#!/usr/bin/env bash
# Corral vs Apache ZooKeeper side by side on this machine (bench/compare.py): standalone and
# 3-node throughput, memory with N znodes, restart time, failover; markdown tables with each
# target.
#   bench/compare.sh [--sections standalone,ensemble,memory,restart,failover] [--seconds S]
#                    [--runs R] [--failover-trials N]
#                    [--ops set,get,exists] [--cells 1x1,8x16,32x32] [--driver raw|c]
#                    [--memory-nodes 100000,1000000] [--restart-nodes N] [--zk-jvm-flags F]
#                    [--json FILE] [--keep-work]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh > /dev/null   # builds Corral; installs zookeeper (Debian) if missing
exec /usr/bin/python3 bench/compare.py "$@"
