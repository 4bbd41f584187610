#!/usr/bin/env bash
# Benchmarks (docs/benchmarks.md): Moat against Postfix on this machine, in one run.
#   scripts/bench.sh            the full matrix (about 20 minutes on 2 cores)
#   scripts/bench.sh --quick    10 KB messages, 20 sessions, 3 rounds
#   scripts/bench.sh --check    the performance targets as met / not met (10 KB, 100 KB, 1 MB)
#   scripts/bench.sh idle       memory per idle connection (10,000 connections)
#   scripts/bench.sh scaling    accept throughput with 1, 2, 3 edge processes
#   scripts/bench.sh filters    Moat's own CPU per message for each filter (real clamd, Rspamd)
#   scripts/bench.sh queue      Redis commands and Redis CPU per message: BullMQ alone, and Moat's spool
#   scripts/bench.sh cluster    edge + worker on a 3-shard Redis Cluster: per-shard cost and spread
# Everything runs on loopback and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
# Node >= 22.19 first on PATH for everything below (scripts/lib/runtime.sh).
. scripts/lib/runtime.sh
moat_runtime
scripts/bootstrap.sh --test
case "${1:-}" in
  idle) shift; exec node bench/dist/idle.js "$@" ;;
  scaling) shift; exec node bench/dist/scaling.js "$@" ;;
  filters) shift; exec node bench/dist/filter-cost.js "$@" ;;
  queue) shift; exec node bench/dist/queue-cost.js "$@" ;;
  cluster) shift; exec node bench/dist/cluster.js "$@" ;;
  *) exec node bench/dist/run.js "$@" ;;
esac
