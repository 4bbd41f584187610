/**
 * Accept throughput as 1 → 2 → 3 `moat edge` processes share one Redis (appendfsync always):
 * one smtp-source per edge, 20 sessions each, 10 KB messages, all at once, after a warm-up.
 *   node bench/dist/scaling.js [--messages 3000] [--max 3]
 */
import { parseArgs } from 'node:util';
import { freePort, startRedis } from '@moat/testkit';
import { startMoat } from './moat.js';
import { runSource } from './smtp-tools.js';

const { values } = parseArgs({ options: { messages: { type: 'string' }, max: { type: 'string' } } });
const messages = Number(values.messages ?? 3000);
const max = Number(values.max ?? 3);

for (let edges = 1; edges <= max; edges++) {
  const redis = await startRedis({ appendfsync: 'always' });
  const ports = await Promise.all(Array.from({ length: edges }, () => freePort()));
  const running = await Promise.all(
    ports.map((port, i) =>
      startMoat({ layout: 'edge', port, redisUrl: redis.url, sinkPort: 9, prefix: `scale${i}` }),
    ),
  );
  try {
    const per = Math.floor(messages / edges);
    const load = (port: number) =>
      runSource({
        port,
        messages: per,
        sessions: 20,
        size: 10 * 1024,
        perConnection: 1,
        to: 'user@example.com',
        timeoutMs: 300_000,
      });
    // An unmeasured warm-up first, as in run.js: V8 compiles the hot paths in the first seconds.
    const warm = await Promise.all(ports.map(load));
    if (warm.some((r) => !r.ok)) throw new Error(warm.map((r) => r.output).join('\n'));
    const started = performance.now();
    const runs = await Promise.all(ports.map(load));
    const seconds = (performance.now() - started) / 1000;
    if (runs.some((r) => !r.ok)) throw new Error(runs.map((r) => r.output).join('\n'));
    process.stdout.write(
      `${edges} edge process${edges > 1 ? 'es' : ''}: ${((per * edges) / seconds).toFixed(0)} msgs/s accepted\n`,
    );
  } finally {
    await Promise.all(running.map((m) => m.stop()));
    await redis.stop();
  }
}
