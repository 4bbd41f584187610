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
exec apps/moat/bin/moat start "$@"
