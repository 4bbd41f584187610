import { describe, expect, test } from 'vitest';
import { parseConfig } from './config.js';
import {
  type AuthenticationResult,
  combineDecisions,
  decideAuthentication,
  decideClamav,
  decideError,
  decideRspamd,
  decideSpamassassin,
  type FilterDecision,
  type RspamdAction,
} from './filter-decisions.js';
import { replyText } from './replies.js';

function filters(block: Record<string, unknown>) {
  const r = parseConfig({ hostname: 'relay.example.com', filters: block });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config.filters;
}
const wire = (d: FilterDecision) => (d.reply ? `${d.reply.code} ${replyText(d.reply)}` : null);

describe('ClamAV', () => {
  const config = filters({
    clamav: { action: { inbound: 'reject', outbound: 'tag' }, oversize: 'tempfail' },
  }).clamav;
  if (!config) throw new Error('no clamav');

  test.each([
    ['inbound', { status: 'clean' }, 'accept', null, 'X-Virus-Status: Clean\r\n'],
    [
      'inbound',
      { status: 'infected', signature: 'Eicar-Test-Signature.UNOFFICIAL' },
      'reject',
      '554 5.7.1 Message rejected, virus found: Eicar-Test-Signature.UNOFFICIAL',
      'X-Virus-Status: Infected (Eicar-Test-Signature.UNOFFICIAL)\r\n',
    ],
    ['outbound', { status: 'infected', signature: 'Win.Test' }, 'tag', null, 'X-Spam-Flag: YES\r\n'],
    [
      'inbound',
      { status: 'oversize', size: 30_000_000 },
      'tempfail',
      '451 4.7.1 Content scanner unavailable, try again later',
      'X-Virus-Status: Not scanned (larger than 26214400 bytes)\r\n',
    ],
  ] as const)('%s %j → %s', (direction, result, action, reply, header) => {
    const d = decideClamav(config, direction, result);
    expect(d.action).toBe(action);
    expect(wire(d)).toBe(reply);
    expect(d.headers).toContain(header);
  });

  test('a signature name cannot break the reply or the header line', () => {
    const d = decideClamav(config, 'inbound', { status: 'infected', signature: 'Evil\r\n250 ok' });
    expect(wire(d)).toBe('554 5.7.1 Message rejected, virus found: Evil??250 ok');
    expect(d.headers[0]).toBe('X-Virus-Status: Infected (Evil__250_ok)\r\n');
  });

  test.each([
    ['accept', 'accept', 'unscanned'],
    ['tempfail', 'tempfail', undefined],
    ['reject', 'reject', undefined],
  ] as const)('oversize %s: %s, counted as %s', (oversize, action, verdict) => {
    const c = filters({ clamav: { oversize } }).clamav;
    if (!c) throw new Error('no clamav');
    const d = decideClamav(c, 'inbound', { status: 'oversize', size: 1 });
    expect(d.action).toBe(action);
    // Accepted without a scan is never counted or tracked as a clean scan.
    expect(d.verdict).toBe(verdict);
  });
});

describe('Rspamd', () => {
  const config = filters({ rspamd: {} }).rspamd;
  if (!config) throw new Error('no rspamd');
  const result = (action: RspamdAction, subject?: string) => ({
    action,
    score: 12.5,
    required: 15,
    symbols: ['GTUBE', 'MISSING_DATE'],
    ...(subject ? { subject } : {}),
  });

  test.each([
    ['inbound', 'no action', 'accept', null],
    ['inbound', 'greylist', 'accept', null],
    ['inbound', 'add header', 'tag', null],
    ['inbound', 'rewrite subject', 'tag', null],
    ['inbound', 'soft reject', 'tempfail', '451 4.7.1 Message deferred by content filter, try again later'],
    ['inbound', 'reject', 'reject', '550 5.7.1 Message rejected as spam'],
    // Outbound default is tag: Moat never refuses the internal server's mail on a score alone.
    ['outbound', 'reject', 'tag', null],
    ['outbound', 'soft reject', 'tag', null],
  ] as const)('%s %s → %s', (direction, action, expected, reply) => {
    const d = decideRspamd(config, direction, result(action));
    expect(d.action).toBe(expected);
    expect(wire(d)).toBe(reply);
    const spam = action !== 'no action' && action !== 'greylist';
    expect(d.headers).toContain(
      `X-Spam-Status: ${spam ? 'Yes' : 'No'}, score=12.50 required=15.00 scanner=rspamd tests=GTUBE,MISSING_DATE\r\n`,
    );
    expect(d.headers.includes('X-Spam-Flag: YES\r\n')).toBe(expected === 'tag');
  });

  test('rewrite subject carries the subject Rspamd proposes', () => {
    expect(decideRspamd(config, 'inbound', result('rewrite subject', '*** SPAM *** hi')).subject).toBe(
      '*** SPAM *** hi',
    );
  });

  test('action off lets even a reject through, headers kept', () => {
    const off = filters({ rspamd: { action: 'off' } }).rspamd;
    if (!off) throw new Error('no rspamd');
    const d = decideRspamd(off, 'inbound', result('reject'));
    expect(d.action).toBe('accept');
    expect(d.headers[0]).toMatch(/^X-Spam-Status: Yes/);
  });
});

describe('SpamAssassin', () => {
  test.each([
    [{}, false, 2, 'accept'],
    [{}, true, 1000, 'reject'],
    [{ rejectScore: 10 }, true, 7, 'tag'],
    [{ rejectScore: 10 }, true, 10, 'reject'],
    [{ action: 'tempfail' }, true, 1000, 'tempfail'],
  ] as const)('%j spam=%s score %s → %s', (block, spam, score, action) => {
    const config = filters({ spamassassin: block }).spamassassin;
    if (!config) throw new Error('no spamassassin');
    const d = decideSpamassassin(config, 'inbound', { spam, score, threshold: 5, symbols: ['GTUBE'] });
    expect(d.action).toBe(action);
    expect(d.headers[0]).toBe(
      `X-Spam-Status: ${spam ? 'Yes' : 'No'}, score=${score.toFixed(2)} required=5.00 scanner=spamassassin tests=GTUBE\r\n`,
    );
  });
});

describe('sender authentication', () => {
  const config = filters({ authentication: { trustedArcSealers: ['lists.example.net'] } }).authentication;
  if (!config) throw new Error('no authentication');
  const auth = (over: Partial<AuthenticationResult>): AuthenticationResult => ({
    spf: 'pass',
    dkim: 'pass',
    dmarc: { result: 'pass', policy: 'reject', domain: 'bank.example' },
    arc: { result: 'none' },
    spfDomain: 'bank.example',
    headers: ['Authentication-Results: relay.example.com; dmarc=pass\r\n'],
    ...over,
  });

  test.each([
    ['dmarc pass', auth({}), 'accept', null],
    [
      'dmarc fail, p=reject',
      auth({ dmarc: { result: 'fail', policy: 'reject', domain: 'bank.example' } }),
      'reject',
      '550 5.7.1 Message rejected by the DMARC policy of the From domain: bank.example',
    ],
    [
      'dmarc fail, p=quarantine',
      auth({ dmarc: { result: 'fail', policy: 'quarantine', domain: 'x.example' } }),
      'tag',
      null,
    ],
    [
      'dmarc fail, p=none',
      auth({ dmarc: { result: 'fail', policy: 'none', domain: 'x.example' } }),
      'accept',
      null,
    ],
    ['dmarc temperror', auth({ dmarc: { result: 'temperror' } }), 'accept', null],
    [
      'dmarc fail, ARC pass by a trusted sealer',
      auth({
        dmarc: { result: 'fail', policy: 'reject', domain: 'bank.example' },
        arc: { result: 'pass', sealer: 'Lists.Example.NET' },
      }),
      'accept',
      null,
    ],
    [
      'dmarc fail, ARC pass by another sealer',
      auth({
        dmarc: { result: 'fail', policy: 'reject', domain: 'bank.example' },
        arc: { result: 'pass', sealer: 'evil.example' },
      }),
      'reject',
      '550 5.7.1 Message rejected by the DMARC policy of the From domain: bank.example',
    ],
    // spfFail is off by default: DMARC decides.
    ['spf fail without DMARC', auth({ spf: 'fail', dmarc: { result: 'none' } }), 'accept', null],
  ] as const)('%s → %s', (_name, result, action, reply) => {
    const d = decideAuthentication(config, result);
    expect(d.action).toBe(action);
    expect(wire(d)).toBe(reply);
    expect(d.headers).toContain('Authentication-Results: relay.example.com; dmarc=pass\r\n');
  });

  test('spfFail: reject refuses an SPF fail that DMARC does not decide, with 5.7.23', () => {
    const strict = filters({ authentication: { spfFail: 'reject' } }).authentication;
    if (!strict) throw new Error('no authentication');
    const d = decideAuthentication(
      strict,
      auth({ spf: 'fail', dmarc: { result: 'none' }, spfDomain: 'spoof.example' }),
    );
    expect(wire(d)).toBe('550 5.7.23 SPF validation failed: spoof.example');
    expect(decideAuthentication(strict, auth({ spf: 'fail' })).action).toBe('accept');
  });
});

describe('errors and combining', () => {
  test('a filter error is 451 4.7.1 by default, accept when configured so', () => {
    expect(wire(decideError('tempfail', 'clamav', 'ECONNREFUSED'))).toBe(
      '451 4.7.1 Content scanner unavailable, try again later',
    );
    expect(decideError('accept', 'clamav', 'ECONNREFUSED').action).toBe('accept');
  });

  const d = (action: FilterDecision['action'], header: string, extra: Partial<FilterDecision> = {}) => ({
    action,
    headers: [header, 'X-Spam-Flag: YES\r\n'],
    ...extra,
  });

  test.each([
    [['accept', 'accept'], 'accept', null],
    [['tag', 'accept'], 'tag', 'a'],
    [['tempfail', 'reject'], 'reject', 'b'],
    [['reject', 'tempfail'], 'reject', 'a'],
    [['tag', 'tempfail'], 'tempfail', 'b'],
    [['reject', 'reject'], 'reject', 'a'],
  ] as const)('%j → %s by %s', (actions, action, filter) => {
    const combined = combineDecisions([
      { filter: 'a', decision: d(actions[0], 'A: 1\r\n') },
      { filter: 'b', decision: d(actions[1], 'B: 2\r\n') },
    ]);
    expect(combined.decision.action).toBe(action);
    expect(combined.filter).toBe(filter);
    expect(combined.decision.headers).toEqual(['A: 1\r\n', 'X-Spam-Flag: YES\r\n', 'B: 2\r\n']);
  });

  test('a subject rewrite survives the combination', () => {
    const combined = combineDecisions([
      { filter: 'clamav', decision: d('accept', 'X-Virus-Status: Clean\r\n') },
      { filter: 'rspamd', decision: d('tag', 'X: y\r\n', { subject: '[SPAM] hi' }) },
    ]);
    expect(combined.decision.subject).toBe('[SPAM] hi');
  });
});
