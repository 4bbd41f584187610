import { type FilterDecision, Replies } from '@moat/policy';
import { searchEvents } from '@moat/spool';
import { RawSmtp, type RedisServer } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Filter, type FilterCheck, type FilterInput, runFilters } from './filters.js';
import { MESSAGE, queueIdOf, startRedis, startTestEdge } from './test-fixture.js';

const input: FilterInput = {
  queueId: 'Q1',
  direction: 'inbound',
  sender: 'a@example.net',
  recipients: ['b@example.com'],
  clientIp: '192.0.2.1',
  helo: 'mx.example.net',
  user: null,
  body: Buffer.from(MESSAGE),
};

const accept = (...headers: string[]): FilterCheck => ({
  decision: { action: 'accept', headers },
  result: {},
});
const decided = (
  decision: Omit<FilterDecision, 'headers'>,
  result: Record<string, unknown> = {},
): FilterCheck => ({
  decision: { headers: [], ...decision },
  result,
});

function filter(
  name: string,
  check: Filter['check'],
  options: {
    timeoutMs?: number;
    onError?: 'tempfail' | 'accept';
    inboundOnly?: boolean;
    removeHeader?: Filter['removeHeader'];
  } = {},
): Filter {
  return {
    name,
    timeoutMs: options.timeoutMs ?? 1000,
    onError: options.onError ?? 'tempfail',
    appliesTo: (direction) => !options.inboundOnly || direction === 'inbound',
    ...(options.removeHeader ? { removeHeader: options.removeHeader } : {}),
    check,
  };
}

describe('runFilters', () => {
  test('every filter accepts: accept, with the headers they add, in filter order', async () => {
    const out = await runFilters(
      [
        filter('spam', async () => accept('X-Spam-Status: No\r\n')),
        filter('virus', async () => accept('X-Virus-Status: Clean\r\n')),
      ],
      input,
    );
    expect(out.decision).toEqual({
      action: 'accept',
      headers: ['X-Spam-Status: No\r\n', 'X-Virus-Status: Clean\r\n'],
    });
    expect(out.filter).toBeNull();
    expect(out.reports.map((r) => [r.filter, r.verdict])).toEqual([
      ['spam', 'accept'],
      ['virus', 'accept'],
    ]);
  });

  test('filters run side by side: the message waits for the slowest, not for the sum', async () => {
    const slow = (name: string) =>
      filter(name, () => new Promise<FilterCheck>((resolve) => setTimeout(() => resolve(accept()), 300)));
    const started = performance.now();
    await runFilters([slow('a'), slow('b'), slow('c')], input);
    // Three 300 ms filters one after the other would take 900 ms.
    expect(performance.now() - started).toBeLessThan(800);
  });

  test('the most severe decision wins and names its filter; every filter still reports', async () => {
    const out = await runFilters(
      [
        filter('spam', async () => decided({ action: 'tag' }, { score: 7 })),
        filter('virus', async () =>
          decided(
            { action: 'reject', reply: Replies.virusFound, reason: 'virus EICAR' },
            { signature: 'EICAR' },
          ),
        ),
      ],
      input,
    );
    expect(out.filter).toBe('virus');
    expect(out.decision).toMatchObject({ action: 'reject', reason: 'virus EICAR' });
    expect(out.reports.map((r) => [r.filter, r.verdict, r.result])).toEqual([
      ['spam', 'tag', { score: 7 }],
      ['virus', 'reject', { signature: 'EICAR' }],
    ]);
  });

  test.each([
    ['throws', filter('broken', async () => Promise.reject(new Error('ECONNREFUSED')))],
    ['times out', filter('slow', () => new Promise(() => {}), { timeoutMs: 50 })],
  ])('a filter that %s is a 451 4.7.1 (onError tempfail), never a reject', async (_what, f) => {
    const out = await runFilters([f], input);
    expect(out.decision).toMatchObject({ action: 'tempfail', reply: Replies.scannerUnavailable });
    expect(out.reports[0]?.verdict).toBe('error');
  });

  test('the timeout aborts the signal the filter was given, so it can drop its connection', async () => {
    let aborted = false;
    const f = filter(
      'slow',
      (_m, signal) =>
        new Promise(() => {
          signal.addEventListener('abort', () => {
            aborted = true;
          });
        }),
      { timeoutMs: 30 },
    );
    await runFilters([f], input);
    expect(aborted).toBe(true);
  });

  test('onError accept lets the message through, reported as an error', async () => {
    const out = await runFilters(
      [filter('broken', async () => Promise.reject(new Error('garbage')), { onError: 'accept' })],
      input,
    );
    expect(out.decision.action).toBe('accept');
    expect(out.reports[0]).toMatchObject({ verdict: 'error', result: { error: 'garbage' } });
  });

  test('a filter for the other direction does not run', async () => {
    let ran = false;
    await runFilters(
      [
        filter(
          'auth',
          async () => {
            ran = true;
            return accept();
          },
          { inboundOnly: true },
        ),
      ],
      { ...input, direction: 'outbound' },
    );
    expect(ran).toBe(false);
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

  test('a rejecting filter is refused at end of DATA and nothing is queued; an accepting one adds its header, removes what it asks, and its verdict is in the tracking record', async () => {
    const t = await startTestEdge(
      redis,
      {},
      {
        filters: [
          filter(
            'words',
            async (m) =>
              m.body.includes('VIAGRA')
                ? decided({ action: 'reject', reply: Replies.spamRejected, reason: 'spam words' })
                : {
                    decision: { action: 'accept', headers: ['X-Moat-Filter: passed\r\n'] },
                    result: { words: 0 },
                  },
            { removeHeader: (name) => name === 'x-spam-flag' },
          ),
        ],
      },
    );
    try {
      const c = await RawSmtp.connect({ port: t.port });
      await c.cmd('EHLO mx.example.net');
      await c.cmd('MAIL FROM:<a@example.net>');
      await c.cmd('RCPT TO:<b@example.com>');
      expect(await c.data('Subject: buy\r\n\r\nVIAGRA\r\n')).toBe('550 5.7.1 Message rejected as spam');
      expect(await t.redis.zcard(t.spool.keys.messages)).toBe(0);
      await c.cmd('MAIL FROM:<a@example.net>');
      await c.cmd('RCPT TO:<b@example.com>');
      const id = queueIdOf(await c.data(`X-Spam-Flag: NO\r\n${MESSAGE}`));
      const body = (await t.spool.readBody(id))?.toString('latin1') ?? '';
      expect(body).toMatch(/^Received: [\s\S]*?\r\nX-Moat-Filter: passed\r\nFrom: /);
      expect(body).not.toContain('X-Spam-Flag');
      const events = await searchEvents(t.redis, t.spool.keys.events, { messageId: id });
      expect(events.find((e) => e.type === 'received')?.filters).toEqual([
        { filter: 'words', verdict: 'accept', ms: expect.any(Number), result: { words: 0 } },
      ]);
      c.destroy();
    } finally {
      await t.close();
    }
  });

  test('a filter that fails open (onError: accept) still removes the fields it owns: a forgery never rides on an outage', async () => {
    const t = await startTestEdge(
      redis,
      {},
      {
        filters: [
          filter(
            'auth',
            async () => {
              throw new Error('ETIMEOUT');
            },
            {
              onError: 'accept',
              removeHeader: (name, value) =>
                name === 'authentication-results' && value.trim().startsWith('edge.test'),
            },
          ),
        ],
      },
    );
    try {
      const c = await RawSmtp.connect({ port: t.port });
      await c.cmd('EHLO mx.example.net');
      await c.cmd('MAIL FROM:<a@example.net>');
      await c.cmd('RCPT TO:<b@example.com>');
      const forged = 'Authentication-Results: edge.test; dmarc=pass header.from=example.com\r\n';
      const other = 'Authentication-Results: mx.example.net; spf=pass\r\n';
      const id = queueIdOf(await c.data(`${forged}${other}${MESSAGE}`));
      const body = (await t.spool.readBody(id))?.toString('latin1') ?? '';
      expect(body).not.toContain('edge.test; dmarc=pass');
      expect(body).toContain(other);
      const events = await searchEvents(t.redis, t.spool.keys.events, { messageId: id });
      expect(events.find((e) => e.type === 'received')?.filters).toEqual([
        { filter: 'auth', verdict: 'error', ms: expect.any(Number), result: { error: 'ETIMEOUT' } },
      ]);
      c.destroy();
    } finally {
      await t.close();
    }
  });

  test('a tempfailing filter answers 451 and the message is kept by the sender, then accepted on retry', async () => {
    let down = true;
    const t = await startTestEdge(
      redis,
      {},
      {
        filters: [
          filter('scanner', async () => {
            if (down) throw new Error('ECONNREFUSED');
            return accept();
          }),
        ],
      },
    );
    try {
      const c = await RawSmtp.connect({ port: t.port });
      await c.cmd('EHLO mx.example.net');
      await c.cmd('MAIL FROM:<a@example.net>');
      await c.cmd('RCPT TO:<b@example.com>');
      expect(await c.data(MESSAGE)).toBe('451 4.7.1 Content scanner unavailable, try again later');
      expect(await t.redis.zcard(t.spool.keys.messages)).toBe(0);
      down = false;
      await c.cmd('MAIL FROM:<a@example.net>');
      await c.cmd('RCPT TO:<b@example.com>');
      expect(await c.data(MESSAGE)).toMatch(/^250 2\.0\.0 Ok: queued as /);
      c.destroy();
    } finally {
      await t.close();
    }
  });
});
