import { basename, resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// Each package writes a JSON report for scripts/test-summary.mjs to count.
const report = resolve(import.meta.dirname, '.moat/test-results', `${basename(process.cwd())}.json`);

// One test configuration for every package: tests import workspace packages from their
// TypeScript sources (the `source` export condition), so no build is needed to test.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default', ['json', { outputFile: report }]],
  },
});
