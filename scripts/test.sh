#!/usr/bin/env bash
# Run every check: lint, typecheck, and every package's test suite (real redis-server,
# real SMTP peers, real DNS on loopback, all started by the tests themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
# Node >= 22.19 first on PATH for everything below (scripts/lib/runtime.sh).
. scripts/lib/runtime.sh
moat_runtime
echo "test: node $(node --version) ($(command -v node))"
scripts/bootstrap.sh --test
rm -rf .moat/test-results
status=0
pnpm exec turbo run lint typecheck test --concurrency=2 --continue --output-logs=new-only || status=$?
node scripts/test-summary.mjs .moat/test-results || status=$?
exit "$status"
