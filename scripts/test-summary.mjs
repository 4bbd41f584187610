// Sums the JSON reports every package's vitest run writes (see vitest.shared.ts) into one line:
// "tests: N passed, N failed, N skipped". Exits 1 when a report is missing a pass or has failures.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? '.moat/test-results';
let files = [];
try {
  files = readdirSync(dir).filter((f) => f.endsWith('.json'));
} catch {}
let passed = 0;
let failed = 0;
let skipped = 0;
for (const f of files) {
  const r = JSON.parse(readFileSync(join(dir, f), 'utf8'));
  passed += r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // A suite that failed to load has no failed test to count: count the suite.
  if (!r.success && !r.numFailedTests) failed += 1;
}
console.log(`\n${files.length} suites reported`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(files.length > 0 && failed === 0 && passed > 0 ? 0 : 1);
