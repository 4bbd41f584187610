import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { RawSmtp, type RedisServer } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MESSAGE, startRedis, startTestEdge, type TestEdge } from './test-fixture.js';

// Hostile input: the edge answers correctly, stays up, and its memory stays bounded.
let redis: RedisServer;
let t: TestEdge;

beforeAll(async () => {
  redis = await startRedis();
  t = await startTestEdge(redis, {
    smtp: { listen: ['127.0.0.1:2525'], maxMessageSize: '1MB', maxRecipients: 100 },
  });
});
afterAll(async () => {
  await t.close();
  await redis.stop();
});

/** A full collection now (V8's gc(), exposed for this call). */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** The edge still serves a normal transaction. */
async function stillServes(): Promise<void> {
  const c = await RawSmtp.connect({ port: t.port });
  await c.cmd('EHLO mx.example.net');
  await c.cmd('MAIL FROM:<a@example.net>');
  await c.cmd('RCPT TO:<b@example.com>');
  expect(await c.data(MESSAGE)).toMatch(/^250 2\.0\.0/);
  c.destroy();
}

describe('abuse', () => {
  test('an over-long command line is refused and the edge stays up', async () => {
    const c = await RawSmtp.connect({ port: t.port });
    const reply = await c.cmd(`EHLO ${'a'.repeat(100_000)}`);
    // smtp-server closes such a session: "421 4.4.2 Error: Command line too long".
    expect(reply).toMatch(/^421 4\.4\.2 .*too long/);
    c.destroy();
    await stillServes();
  });

  test('NUL bytes and bare LF in commands do not crash the session', async () => {
    const c = await RawSmtp.connect({ port: t.port });
    c.write('EHLO mx.example.net\n');
    expect(await c.reply()).toMatch(/^250/);
    expect(await c.cmd('MAIL FROM:<a\u0000b@example.net>')).toMatch(/^5\d\d /);
    c.destroy();
    await stillServes();
  });

  test('10,000 RCPTs: the first 100 accepted, the rest 452, the message queued once', async () => {
    const c = await RawSmtp.connect({ port: t.port });
    await c.cmd('EHLO mx.example.net');
    await c.cmd('MAIL FROM:<a@example.net>');
    const lines = Array.from({ length: 10_000 }, (_, i) => `RCPT TO:<u${i}@example.com>\r\n`).join('');
    c.write(lines);
    let ok = 0;
    let full = 0;
    for (let i = 0; i < 10_000; i++) {
      const r = await c.reply();
      if (r.startsWith('250')) ok++;
      else if (r.startsWith('452')) full++;
    }
    expect([ok, full]).toEqual([100, 9_900]);
    const reply = await c.data(MESSAGE);
    const id = /queued as (\S+)/.exec(reply)?.[1] ?? '';
    expect((await t.spool.readMeta(id))?.routes[0]?.recipients).toHaveLength(100);
    c.destroy();
  });

  test('a 256 MB DATA stream over a 1 MB limit: 552 and memory stays bounded', async () => {
    const c = await RawSmtp.connect({ port: t.port });
    await c.cmd('EHLO mx.example.net');
    await c.cmd('MAIL FROM:<a@example.net>');
    await c.cmd('RCPT TO:<b@example.com>');
    expect(await c.cmd('DATA')).toMatch(/^354 /);
    const rssBefore = process.memoryUsage().rss;
    const chunk = Buffer.from(`${'x'.repeat(1022)}\r\n`.repeat(1024)); // 1 MB of lines
    for (let i = 0; i < 256; i++) {
      if (!c.write(chunk)) await c.drain();
      if (i % 16 === 15) collectGarbage();
    }
    c.write('.\r\n');
    expect(await c.reply()).toBe('552 5.3.4 Message size exceeds fixed limit');
    // The edge (this process) kept at most the limit in memory, not the stream.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(128 * 1024 * 1024);
    c.destroy();
    await stillServes();
  });
});

describe('early talkers', () => {
  test('with smtp.greetingDelay, a client that talks before the greeting is refused', async () => {
    const slow = await startTestEdge(redis, { smtp: { listen: ['127.0.0.1:2525'], greetingDelay: '300ms' } });
    try {
      const c = await RawSmtp.connect({
        port: slow.port,
        greeting: false,
        preamble: Buffer.from('EHLO eager.example.net\r\n'),
      });
      expect(await c.reply()).toMatch(/^421 /);
      c.destroy();
      const polite = await RawSmtp.connect({ port: slow.port, greeting: false });
      expect(await polite.reply()).toMatch(/^220 /);
      polite.destroy();
    } finally {
      await slow.close();
    }
  });

  test('without it, the greeting comes at once (the patched 100 ms smtp-server delay is gone)', async () => {
    // Guards the pnpm patch of smtp-server: if an update drops it, the upstream 100 ms wait returns.
    // Best of five, so a busy machine cannot fail it; with the delay back, every try takes 100 ms.
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const c = await RawSmtp.connect({ port: t.port, greeting: false });
      expect(await c.reply()).toMatch(/^220 /);
      best = Math.min(best, performance.now() - started);
      c.destroy();
    }
    expect(best).toBeLessThan(90);
  });
});
