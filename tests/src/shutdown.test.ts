/**
 * Graceful shutdown of a real `moat edge` on SIGTERM, as docs/operations.md promises for
 * rolling restarts: the listener closes, an idle session gets 421 4.3.2 at once, a session in
 * the middle of DATA finishes and gets its 250 (the message is queued), then 421; the process
 * exits 0.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect, keysFor, whenReady } from '@moat/spool';
import { type DnsServer, freePort, RawSmtp, type RedisServer, startDns, startRedis } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type MoatProcess, startMoat } from './moat-process.js';

let dir: string;
let redis: RedisServer;
let dns: DnsServer;
let edge: MoatProcess;
let smtpPort: number;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-shutdown-'));
  redis = await startRedis({ appendfsync: 'always' });
  dns = await startDns();
  smtpPort = await freePort();
  edge = await startMoat(
    'edge',
    {
      hostname: 'relay.test',
      dataDir: dir,
      redis: { url: redis.url, prefix: 'shutdown' },
      smtp: { listen: [`127.0.0.1:${smtpPort}`] },
      inbound: { domains: { 'example.com': '[127.0.0.1]:1' } }, // nothing delivers here
      dns: { servers: [dns.server] },
      admin: { listen: null },
    },
    dir,
    'edge',
  );
  await edge.waitForEvent('moat.ready');
});
afterAll(async () => {
  await edge?.stop();
  await dns?.close();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('SIGTERM: idle sessions get 421, DATA in progress finishes with 250, then 421; exit 0', async () => {
  const idle = await RawSmtp.connect({ port: smtpPort });
  expect(await idle.cmd('EHLO idle.test')).toMatch(/^250/);
  const busy = await RawSmtp.connect({ port: smtpPort });
  expect(await busy.cmd('EHLO busy.test')).toMatch(/^250/);
  expect(await busy.cmd('MAIL FROM:<alice@elsewhere.test>')).toMatch(/^250/);
  expect(await busy.cmd('RCPT TO:<bob@example.com>')).toMatch(/^250/);
  expect(await busy.cmd('DATA')).toMatch(/^354/);
  busy.write('Subject: in flight during shutdown\r\n\r\nfirst half\r\n');

  const stopped = edge.stop(30_000);
  await edge.waitForEvent('moat.stopping', 5000);

  expect(await idle.reply()).toMatch(/^421 4\.3\.2 /);
  await idle.closed();
  // The listener is closed: a new client cannot connect at all.
  await expect(
    new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: smtpPort });
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', reject);
    }),
  ).rejects.toMatchObject({ code: 'ECONNREFUSED' });

  busy.write('second half\r\n.\r\n');
  const queued = await busy.reply();
  expect(queued).toMatch(/^250 2\.0\.0 Ok: queued as /);
  expect(await busy.reply()).toMatch(/^421 4\.3\.2 /);
  await busy.closed();

  expect(await stopped).toBe(0);
  expect(edge.logs.map((l) => l.event)).toEqual(
    expect.arrayContaining(['moat.stopping', 'edge.closed', 'moat.stopped']),
  );
  // The message answered 250 is in Redis, whole.
  const id = queued.split(' ').pop() ?? '';
  const check = connect({ url: redis.url }, 'producer');
  try {
    await whenReady(check);
    const body = await check.getBuffer(keysFor('shutdown').body(id));
    expect(body?.toString('latin1')).toMatch(/\r\n\r\nfirst half\r\nsecond half\r\n$/);
  } finally {
    check.disconnect();
  }
});
