#!/usr/bin/env bash
# Start Moat with every role in one process. Without arguments it uses the embedded
# one-machine config (SMTP 127.0.0.1:2525, admin 127.0.0.1:8025, a private Redis under .moat/).
# Any arguments go to `moat start` (e.g. --config /etc/moat/moat.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
# Node >= 22.19 first on PATH for everything below (scripts/lib/runtime.sh).
. scripts/lib/runtime.sh
moat_runtime
scripts/bootstrap.sh
# glibc's allocator: message bodies (up to 32 MB) come from its heap and what is freed stays
# there, instead of fresh pages from the kernel for every message (docs/operations.md; the same
# value is in infra/systemd/moat@.service, infra/container/Dockerfile and the benchmarks).
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=536870912}"
exec apps/moat/bin/moat start "$@"
