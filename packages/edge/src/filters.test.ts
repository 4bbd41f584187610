import { Replies } from '@moat/policy';
import { RawSmtp, type RedisServer } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Filter, type FilterInput, runFilters } from './filters.js';
import { MESSAGE, queueIdOf, startRedis, startTestEdge } from './test-fixture.js';

const input: FilterInput = {
  queueId: 'Q1',
  sender: 'a@example.net',
  recipients: ['b@example.com'],
  clientIp: '192.0.2.1',
  user: null,
  body: Buffer.from(MESSAGE),
};

const filter = (name: string, check: Filter['check'], timeoutMs = 1000): Filter => ({
  name,
  timeoutMs,
  check,
});

describe('runFilters', () => {
  test('every filter accepts: accept, with the headers they add, in order', async () => {
    const out = await runFilters(
      [
        filter('spam', async () => ({ action: 'accept', headers: ['X-Spam-Status: No\r\n'] })),
        filter('virus', async () => ({ action: 'accept', headers: ['X-Virus-Scanned: clean\r\n'] })),
      ],
      input,
    );
    expect(out).toEqual({
      verdict: { action: 'accept' },
      headers: ['X-Spam-Status: No\r\n', 'X-Virus-Scanned: clean\r\n'],
    });
  });

  test('the first refusal decides and names its filter', async () => {
    const out = await runFilters(
      [
        filter('virus', async () => ({ action: 'reject', reply: Replies.filterRejected, reason: 'EICAR' })),
        filter('never', async () => {
          throw new Error('must not run');
        }),
      ],
      input,
    );
    expect(out.filter).toBe('virus');
    expect(out.verdict).toMatchObject({ action: 'reject', reason: 'EICAR' });
  });

  test.each([
    ['throws', filter('broken', async () => Promise.reject(new Error('scanner down')))],
    ['times out', filter('slow', () => new Promise(() => {}), 50)],
  ])('a filter that %s defers the message (451 4.7.1), never rejects it', async (_what, f) => {
    const out = await runFilters([f], input);
    expect(out.verdict).toMatchObject({ action: 'defer', reply: Replies.filterDeferred });
  });
});

describe('filters in the edge', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  test('a rejecting filter gets 554 5.7.1 at end of DATA and nothing is queued; an accepting one adds its header', async () => {
    const t = await startTestEdge(
      redis,
      {},
      {
        filters: [
          filter('words', async (m) =>
            m.body.includes('VIAGRA')
              ? { action: 'reject', reply: Replies.filterRejected, reason: 'spam words' }
              : { action: 'accept', headers: ['X-Moat-Filter: passed\r\n'] },
          ),
        ],
      },
    );
    try {
      const c = await RawSmtp.connect({ port: t.port });
      await c.cmd('EHLO mx.example.net');
      await c.cmd('MAIL FROM:<a@example.net>');
      await c.cmd('RCPT TO:<b@example.com>');
      expect(await c.data('Subject: buy\r\n\r\nVIAGRA\r\n')).toBe(
        '554 5.7.1 Message rejected by content filter',
      );
      expect(await t.redis.zcard(t.spool.keys.messages)).toBe(0);
      await c.cmd('MAIL FROM:<a@example.net>');
      await c.cmd('RCPT TO:<b@example.com>');
      const id = queueIdOf(await c.data(MESSAGE));
      expect((await t.spool.readBody(id))?.toString('latin1')).toMatch(
        /^Received: [\s\S]*?\r\nX-Moat-Filter: passed\r\nFrom: /,
      );
      c.destroy();
    } finally {
      await t.close();
    }
  });
});
