#!/usr/bin/env bash
# Run every check: lint, typecheck, and every package's test suite (real redis-server,
# real SMTP peers, real DNS on loopback, all started by the tests themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
export PATH="$PWD/.moat/tools/node_modules/.bin:$PATH"
rm -rf .moat/test-results
status=0
pnpm exec turbo run lint typecheck test --concurrency=2 --continue --output-logs=new-only || status=$?
node scripts/test-summary.mjs .moat/test-results || status=$?
exit "$status"
