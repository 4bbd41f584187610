import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { GC_FLAGS } from './gc-flags.js';

const run = promisify(execFile);

/**
 * A heap like a running edge (many live objects) and 300 short-lived 1 MB buffers, as 300
 * relayed messages make: counts the full mark-compacts V8 runs. A flag V8 does not know is
 * ignored without a word by v8.setFlagsFromString, so this is also what fails if a Node.js
 * upgrade renames or drops it.
 */
const SCRIPT = `
const { PerformanceObserver, constants } = require('node:perf_hooks');
let major = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
}).observe({ entryTypes: ['gc'] });
const live = [];
for (let i = 0; i < 400000; i++) live.push({ a: i, b: 'x' + i });
(async () => {
  let sum = 0;
  for (let m = 0; m < 300; m++) {
    const parts = [];
    for (let c = 0; c < 16; c++) parts.push(Buffer.alloc(65536, m));
    sum += Buffer.concat([Buffer.from('Received: x\\r\\n'), Buffer.concat(parts)])[100];
    await new Promise((r) => setImmediate(r));
  }
  setTimeout(() => console.log(JSON.stringify({ major, sum, live: live.length })), 50);
})();
`;

async function majorCollections(flags: readonly string[]): Promise<number> {
  const { stdout } = await run(process.execPath, [...flags, '-e', SCRIPT], { timeout: 60_000 });
  return (JSON.parse(stdout) as { major: number }).major;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

test("V8's collector flag is one this Node.js knows, and it takes short-lived large buffers off the full collections", async () => {
  // Three runs of each, compared by their medians: alone the flag gives 1 mark-compact against
  // 10–14, but on a machine busy with other suites one run in a few has 6 or 7 (its concurrent
  // marking falls behind), while the stock count stays where it is.
  const stock: number[] = [];
  const tuned: number[] = [];
  for (let round = 0; round < 3; round++) {
    const [s, t] = await Promise.all([majorCollections([]), majorCollections(GC_FLAGS)]);
    stock.push(s);
    tuned.push(t);
  }
  expect(median(stock), `stock ${stock}`).toBeGreaterThanOrEqual(4);
  expect(median(tuned), `with the flag ${tuned}, stock ${stock}`).toBeLessThanOrEqual(
    Math.floor(median(stock) / 2),
  );
}, 180_000);
