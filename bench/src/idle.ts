/**
 * Memory per idle SMTP connection: one `moat edge` process, N clients that connect, read the
 * greeting, say EHLO and then wait. RSS of the edge before and after, divided by N.
 *   node bench/dist/idle.js [--connections 10000]
 */
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { freePort, startRedis } from '@moat/testkit';
import { startMoat } from './moat.js';
import { rssBytes } from './procs.js';

const { values } = parseArgs({ options: { connections: { type: 'string' } } });
const total = Number(values.connections ?? 10_000);

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let seen = '';
    const timer = setTimeout(() => reject(new Error('no greeting in 30 s')), 30_000);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      seen += d;
      if (seen.startsWith('220') && !seen.includes('EHLO-SENT')) {
        seen += 'EHLO-SENT';
        socket.write('EHLO idle.example.net\r\n');
      } else if (/\r\n250 /.test(seen)) {
        clearTimeout(timer);
        socket.removeAllListeners('data');
        resolve(socket);
      }
    });
    socket.once('error', reject);
  });
}

const redis = await startRedis({ appendfsync: 'always' });
const port = await freePort();
const moat = await startMoat({
  layout: 'edge',
  port,
  redisUrl: redis.url,
  sinkPort: 9,
  prefix: 'idle',
  smtp: { idleTimeout: '10m' },
}).catch(async (err) => {
  await redis.stop();
  throw err;
});
const edgePid = moat.pids()[0] ?? -1;
const sockets: Socket[] = [];
try {
  await new Promise((r) => setTimeout(r, 1000));
  const before = rssBytes(edgePid);
  for (let i = 0; i < total; i += 500) {
    const batch = await Promise.all(Array.from({ length: Math.min(500, total - i) }, () => open(port)));
    sockets.push(...batch);
  }
  await new Promise((r) => setTimeout(r, 2000));
  const after = rssBytes(edgePid);
  const perConnection = (after - before) / total;
  process.stdout.write(
    `idle connections: ${total}; edge RSS before ${(before / 1048576).toFixed(1)} MB, after ${(after / 1048576).toFixed(1)} MB; ${(perConnection / 1024).toFixed(1)} KB per connection\n`,
  );
} finally {
  for (const s of sockets) s.destroy();
  await moat.stop();
  await redis.stop();
}
