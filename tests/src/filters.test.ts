/**
 * Filtering before relay, end to end: one real `moat start` in front of real clamd, Rspamd and
 * spamd (Debian's, started by the testkit on loopback, each behind a TCP proxy the test can
 * make cut replies or answer garbage), mailauth against the testkit's DNS server, DKIM
 * signing (RSA and Ed25519) checked at the smart host. Every refusal is asserted as the sender sees it, and
 * every deferred message arrives once the daemon is back and the client retries.
 *
 * Inbound mail comes from 127.0.0.3 (an Internet client); outbound from 127.0.0.1 (allowed).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { lookupThrough } from '@moat/filters';
import {
  CLAMD_EICAR_SIGNATURE,
  type Clamd,
  type DnsServer,
  EICAR,
  freePort,
  GTUBE,
  RawSmtp,
  type RedisServer,
  type Rspamd,
  type SmtpSink,
  type Spamd,
  startClamd,
  startDns,
  startRedis,
  startRspamd,
  startSmtpSink,
  startSpamd,
  startTcpProxy,
  type TcpProxy,
} from '@moat/testkit';
import { dkimVerify } from 'mailauth';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type MoatProcess, startMoat } from './moat-process.js';

const INTERNET = '127.0.0.3';
const HOSTNAME = 'relay.test';
const TOKEN = 'filters-test-admin-token-0123456789';

/**
 * With enable_test_patterns, Rspamd takes GTUBE with its first letter changed as a forced
 * action: Y "add header", Z "rewrite subject". SpamAssassin knows only the X of GTUBE itself.
 */
const RSPAMD_GTUBE_ACTIONS = { 'add header': `Y${GTUBE.slice(1)}`, 'rewrite subject': `Z${GTUBE.slice(1)}` };

let dir: string;
let redis: RedisServer;
let dns: DnsServer;
let inboundSink: SmtpSink;
let outboundSink: SmtpSink;
let clamd: Clamd;
let rspamd: Rspamd;
let spamd: Spamd;
const proxies: Record<'clamav' | 'rspamd' | 'spamassassin', TcpProxy> = {} as never;
let moat: MoatProcess;
let smtpPort: number;
let adminPort: number;

/** Writes a new private key to `file` in the test's dir; resolves with its DKIM TXT record. */
async function dkimKey(type: 'rsa' | 'ed25519', file: string): Promise<string> {
  const pair =
    type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  await writeFile(path.join(dir, file), pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  const der = pair.publicKey.export({ type: 'spki', format: 'der' });
  // Ed25519 records carry the bare 32-byte key (RFC 8463 §4.2), RSA the SubjectPublicKeyInfo.
  const p = type === 'rsa' ? der.toString('base64') : der.subarray(der.length - 32).toString('base64');
  return `v=DKIM1; k=${type}; p=${p}`;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-filters-'));
  dns = await startDns({
    's2026._domainkey.example.com': { TXT: [await dkimKey('rsa', 'dkim.pem')] },
    // example.net signs with Ed25519 only; example.org with both (RFC 8463 §5 dual signing).
    'ed2026._domainkey.example.net': { TXT: [await dkimKey('ed25519', 'ed-net.pem')] },
    'rsa2026._domainkey.example.org': { TXT: [await dkimKey('rsa', 'rsa-org.pem')] },
    'ed2026._domainkey.example.org': { TXT: [await dkimKey('ed25519', 'ed-org.pem')] },
    'bank.test': { TXT: ['v=spf1 ip4:192.0.2.10 -all'], A: ['192.0.2.10'] },
    '_dmarc.bank.test': { TXT: ['v=DMARC1; p=reject'] },
  });
  // The daemons start side by side: Rspamd's start is the long one.
  [redis, clamd, rspamd, spamd, inboundSink, outboundSink] = await Promise.all([
    startRedis({ appendfsync: 'always' }),
    startClamd(),
    // Test patterns: GTUBE variants that force Rspamd's milder actions (see RSPAMD_GTUBE_ACTIONS).
    startRspamd({ dnsServer: dns.server, options: ['enable_test_patterns = true;'] }),
    startSpamd(),
    startSmtpSink({ tls: false }),
    startSmtpSink({ tls: false }),
  ]);
  proxies.clamav = await startTcpProxy({ target: clamd });
  proxies.rspamd = await startTcpProxy({ target: rspamd });
  proxies.spamassassin = await startTcpProxy({ target: spamd });
  smtpPort = await freePort();
  adminPort = await freePort();
  moat = await startMoat(
    'start',
    {
      hostname: HOSTNAME,
      dataDir: dir,
      redis: { url: redis.url, prefix: 'filters' },
      smtp: { listen: [`127.0.0.1:${smtpPort}`] },
      inbound: { domains: { 'example.com': `[127.0.0.1]:${inboundSink.port}` } },
      outbound: { clients: ['127.0.0.1/32'], smarthost: `[127.0.0.1]:${outboundSink.port}` },
      delivery: { retry: ['1s'] },
      dns: { servers: [dns.server], timeout: '2s' },
      filters: {
        probeInterval: '300ms',
        clamav: { address: `127.0.0.1:${proxies.clamav.port}`, timeout: '3s' },
        rspamd: { url: `http://127.0.0.1:${proxies.rspamd.port}`, timeout: '3s' },
        spamassassin: { address: `127.0.0.1:${proxies.spamassassin.port}`, timeout: '5s' },
        authentication: {},
        dkim: {
          domains: {
            'example.com': [{ selector: 's2026', key: path.join(dir, 'dkim.pem') }],
            'example.net': [{ selector: 'ed2026', key: path.join(dir, 'ed-net.pem') }],
            'example.org': [
              { selector: 'rsa2026', key: path.join(dir, 'rsa-org.pem') },
              { selector: 'ed2026', key: path.join(dir, 'ed-org.pem') },
            ],
          },
        },
      },
      admin: { listen: `127.0.0.1:${adminPort}`, tokens: [TOKEN] },
    },
    dir,
    'filters',
  );
  await moat.waitForEvent('moat.ready', 30_000);
}, 120_000);

afterAll(async () => {
  if (process.env.MOAT_DEBUG_LOG)
    await writeFile(process.env.MOAT_DEBUG_LOG, moat.logs.map((l) => JSON.stringify(l)).join('\n'));
  await moat?.stop();
  await Promise.all(Object.values(proxies).map((p) => p.close()));
  await Promise.all([clamd?.stop(), rspamd?.stop(), spamd?.stop(), redis?.stop()]);
  await Promise.all([inboundSink?.close(), outboundSink?.close(), dns?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

let sequence = 0;
function message(opts: { from?: string; subject?: string; body?: string; extraHeaders?: string } = {}) {
  const id = `<filters-${++sequence}-${Date.now()}@test>`;
  const text = [
    `From: ${opts.from ?? 'alice@elsewhere.test'}`,
    'To: bob@example.com',
    `Subject: ${opts.subject ?? 'hello'}`,
    'Date: Thu, 03 Dec 2026 10:00:00 +0000',
    `Message-ID: ${id}`,
    ...(opts.extraHeaders ? [opts.extraHeaders] : []),
    '',
    opts.body ?? 'An ordinary message.',
    '',
  ].join('\r\n');
  return { id, text };
}

/** One transaction; the reply to DATA. */
async function send(
  text: string,
  opts: { from?: string; to?: string; localAddress?: string; sender?: string } = {},
): Promise<string> {
  const c = await RawSmtp.connect({
    port: smtpPort,
    localAddress: opts.localAddress ?? INTERNET,
    timeoutMs: 20_000,
  });
  try {
    await c.cmd('EHLO client.test');
    await c.cmd(`MAIL FROM:<${opts.sender ?? 'alice@elsewhere.test'}>`);
    await c.cmd(`RCPT TO:<${opts.to ?? 'bob@example.com'}>`);
    return await c.data(text);
  } finally {
    c.destroy();
  }
}

async function arrived(sink: SmtpSink, messageId: string): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = sink.messages.find((m) => m.raw.includes(messageId));
    if (found) return found.raw.toString('latin1');
    if (Date.now() > deadline) throw new Error(`${messageId} did not arrive`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const admin = async (url: string) =>
  (
    await fetch(`http://127.0.0.1:${adminPort}${url}`, { headers: { authorization: `Bearer ${TOKEN}` } })
  ).json();

interface Verdict {
  filter: string;
  verdict: string;
  result: Record<string, unknown>;
}
type Event = { type: string; messageId: string; filters?: Verdict[] };

async function trackingOf(query: string, type: string): Promise<Event> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const { events } = (await admin(`/tracking?${query}`)) as { events: Event[] };
    const found = events.find((e) => e.type === type);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no ${type} event for ${query}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The verdicts of the message a sender had refused, by filter. */
async function rejectedRecord(sender: string): Promise<Record<string, Verdict>> {
  const event = await trackingOf(`address=${encodeURIComponent(sender)}`, 'rejected');
  return Object.fromEntries((event.filters ?? []).map((f) => [f.filter, f]));
}

const headOf = (raw: string) => raw.slice(0, raw.indexOf('\r\n\r\n'));

const queuedId = (reply: string) => /queued as (\S+)/.exec(reply)?.[1] ?? '';

describe('a clean inbound message', () => {
  test('passes every filter, gets their fields and one Authentication-Results of Moat, loses the forged ones', async () => {
    const m = message({
      extraHeaders: [
        'Authentication-Results: relay.test; dkim=pass; spf=pass; dmarc=pass',
        'Authentication-Results: mx.elsewhere.test; spf=pass',
        'X-Spam-Flag: NO',
        'X-Spam-Status: No, score=-100',
      ].join('\r\n'),
    });
    const reply = await send(m.text);
    expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
    const raw = await arrived(inboundSink, m.id);
    const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
    expect(head).toContain('X-Virus-Status: Clean');
    expect(head).toMatch(/X-Spam-Status: No, score=\S+ required=\S+ scanner=rspamd/);
    expect(head).toMatch(/X-Spam-Status: No, score=\S+ required=\S+ scanner=spamassassin/);
    expect(head).not.toContain('score=-100');
    expect(head).not.toContain('X-Spam-Flag');
    // Moat's own, and the other host's (not ours to judge); the forgery in our name is gone.
    const ours = head.match(/^Authentication-Results: relay\.test;/gm) ?? [];
    expect(ours).toHaveLength(1);
    expect(head).not.toContain('relay.test; dkim=pass; spf=pass; dmarc=pass');
    expect(head).toContain('Authentication-Results: mx.elsewhere.test; spf=pass');
    const received = await trackingOf(`messageId=${queuedId(reply)}`, 'received');
    expect(received.filters?.map((f) => [f.filter, f.verdict])).toEqual([
      ['clamav', 'accept'],
      ['rspamd', 'accept'],
      ['spamassassin', 'accept'],
      ['authentication', 'accept'],
    ]);
  });

  test('/ready lists every filter daemon as up, and the metrics count the verdicts', async () => {
    const ready = (await admin('/ready')) as { checks: Record<string, boolean> };
    expect(ready.checks).toMatchObject({
      'filter:clamav': true,
      'filter:rspamd': true,
      'filter:spamassassin': true,
    });
    await new Promise((r) => setTimeout(r, 2500)); // counters flush every 2 s
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(metrics).toMatch(/moat_filter_verdicts_total\{filter="clamav",verdict="accept"\} [1-9]/);
    expect(metrics).toMatch(/moat_filter_duration_seconds_count\{filter="rspamd"\} [1-9]/);
    expect(metrics).toMatch(/moat_filter_up\{node="[^"]+",filter="spamassassin"\} 1/);
  });
});

describe('hits', () => {
  test('a virus is refused in the session, naming the signature; nothing is queued', async () => {
    // As viruses travel: an attachment, base64, whose decoded bytes are the EICAR file.
    const m = message({
      extraHeaders: 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"',
      body: [
        '--b1',
        'Content-Type: text/plain',
        '',
        'See the attachment.',
        '--b1',
        'Content-Type: application/octet-stream; name="invoice.com"',
        'Content-Transfer-Encoding: base64',
        'Content-Disposition: attachment; filename="invoice.com"',
        '',
        Buffer.from(EICAR).toString('base64'),
        '--b1--',
      ].join('\r\n'),
    });
    expect(await send(m.text, { sender: 'virus@elsewhere.test' })).toBe(
      `554 5.7.1 Message rejected, virus found: ${CLAMD_EICAR_SIGNATURE}`,
    );
    const rejected = await rejectedRecord('virus@elsewhere.test');
    expect(rejected.clamav).toMatchObject({
      verdict: 'reject',
      result: { signature: CLAMD_EICAR_SIGNATURE },
    });
    expect(inboundSink.messages.some((s) => s.raw.includes(m.id))).toBe(false);
  });

  test('GTUBE: Rspamd and SpamAssassin both call it spam; refused with 550, both verdicts recorded', async () => {
    const m = message({ body: GTUBE, subject: 'gtube' });
    expect(await send(m.text, { sender: 'gtube@elsewhere.test' })).toBe('550 5.7.1 Message rejected as spam');
    const verdicts = await rejectedRecord('gtube@elsewhere.test');
    expect(verdicts.rspamd).toMatchObject({ verdict: 'reject', result: { action: 'reject' } });
    expect(verdicts.spamassassin).toMatchObject({ verdict: 'reject', result: { spam: true } });
    expect(verdicts.clamav?.verdict).toBe('accept');
  });

  test.each([
    // Rspamd's default template, "*** SPAM *** %s".
    ['rewrite subject', 'cheap watches', 'Subject: *** SPAM *** cheap watches'],
    ['add header', 'cheap pens', 'Subject: cheap pens'],
  ] as const)(
    'Rspamd "%s": tagged, not refused, with X-Spam-Flag and its X-Spam-Status; the Subject arrives as %j',
    async (action, subject, arrives) => {
      const m = message({ subject, body: RSPAMD_GTUBE_ACTIONS[action] });
      const reply = await send(m.text);
      expect(reply).toMatch(/^250 /);
      const head = headOf(await arrived(inboundSink, m.id));
      expect(head.match(/^Subject: .*$/gm)).toEqual([arrives]);
      expect(head).toContain('X-Spam-Flag: YES');
      expect(head).toMatch(/X-Spam-Status: Yes, score=\S+ required=\S+ scanner=rspamd/);
      const received = await trackingOf(`messageId=${queuedId(reply)}`, 'received');
      expect(received.filters?.find((f) => f.filter === 'rspamd')).toMatchObject({
        verdict: 'tag',
        result: { action },
      });
    },
  );

  test('outbound spam from the internal server is tagged, not refused, and DKIM-signed', async () => {
    const m = message({ from: 'ceo@example.com', body: GTUBE, subject: 'outbound' });
    const reply = await send(m.text, {
      localAddress: '127.0.0.1',
      sender: 'ceo@example.com',
      to: 'someone@remote.test',
    });
    expect(reply).toMatch(/^250 /);
    const raw = await arrived(outboundSink, m.id);
    expect(raw).toContain('X-Spam-Flag: YES');
    const verified = await dkimVerify(Buffer.from(raw, 'latin1'), {
      resolver: lookupThrough([dns.server], 2000) as never,
    });
    expect(
      verified.results.map((r) => [r.status.result, (r as { signingDomain?: string }).signingDomain]),
    ).toEqual([['pass', 'example.com']]);
  });

  test('signed once: a delivery deferred by the smart host goes out again with the same single signature', async () => {
    let tries = 0;
    outboundSink.setBehaviour({
      onRcpt: () => (++tries === 1 ? { code: 451, message: '4.3.0 try again' } : undefined),
    });
    try {
      const m = message({ from: 'ceo@example.com', subject: 'retried' });
      expect(
        await send(m.text, { localAddress: '127.0.0.1', sender: 'ceo@example.com', to: 'x@remote.test' }),
      ).toMatch(/^250 /);
      const raw = await arrived(outboundSink, m.id);
      expect(tries).toBe(2);
      expect(raw.match(/^DKIM-Signature:/gim)).toHaveLength(1);
      const verified = await dkimVerify(Buffer.from(raw, 'latin1'), {
        resolver: lookupThrough([dns.server], 2000) as never,
      });
      expect(verified.results.map((r) => r.status.result)).toEqual(['pass']);
    } finally {
      outboundSink.setBehaviour({ onRcpt: undefined });
    }
  });

  test('a DMARC fail of a p=reject domain is refused in the session', async () => {
    const m = message({ from: 'ceo@bank.test' });
    expect(await send(m.text, { sender: 'ceo@bank.test' })).toBe(
      '550 5.7.1 Message rejected by the DMARC policy of the From domain: bank.test',
    );
  });
});

/** The DKIM results of a message as the smart host got it, verified against the test's DNS. */
async function dkimResults(raw: string) {
  const verified = await dkimVerify(Buffer.from(raw, 'latin1'), {
    resolver: lookupThrough([dns.server], 2000) as never,
  });
  return verified.results.map((r) => {
    const { signingDomain, selector, algo } = r as {
      signingDomain?: string;
      selector?: string;
      algo?: string;
    };
    return { result: r.status.result, signingDomain, selector, algo };
  });
}

describe('outbound DKIM signing with Ed25519 (RFC 8463)', () => {
  test.each([
    ['an Ed25519 key alone', 'example.net', [['ed2026', 'ed25519-sha256']]],
    [
      'an RSA and an Ed25519 key',
      'example.org',
      [
        ['rsa2026', 'rsa-sha256'],
        ['ed2026', 'ed25519-sha256'],
      ],
    ],
  ])(
    'a From domain with %s: every signature passes at the smart host against the published key',
    async (_keys, domain, expected) => {
      const m = message({ from: `ceo@${domain}`, subject: `signed by ${domain}` });
      const reply = await send(m.text, {
        localAddress: '127.0.0.1',
        sender: `ceo@${domain}`,
        to: 'x@remote.test',
      });
      expect(reply).toMatch(/^250 /);
      const results = await dkimResults(await arrived(outboundSink, m.id));
      // Verifiers list the signatures in header order; which key signs first is not the point.
      const bySelector = (a: { selector?: string }, b: { selector?: string }) =>
        (a.selector ?? '').localeCompare(b.selector ?? '');
      expect(results.sort(bySelector)).toEqual(
        expected
          .map(([selector, algo]) => ({ result: 'pass', signingDomain: domain, selector, algo }))
          .sort(bySelector),
      );
    },
  );
});

type Scanner = 'clamav' | 'rspamd' | 'spamassassin';
const daemonOf = (s: Scanner) => (s === 'clamav' ? clamd : s === 'rspamd' ? rspamd : spamd);
const DEFERRED = '451 4.7.1 Content scanner unavailable, try again later';

/** Sends while the fault is on (451), lifts it, sends the same message again: it arrives. */
async function deferredThenDelivered(fault: () => Promise<void> | void, heal: () => Promise<void> | void) {
  const m = message({ subject: 'retry after a fault' });
  await fault();
  try {
    expect(await send(m.text)).toBe(DEFERRED);
  } finally {
    await heal();
  }
  expect(inboundSink.messages.some((s) => s.raw.includes(m.id))).toBe(false);
  expect(await send(m.text)).toMatch(/^250 /);
  await arrived(inboundSink, m.id);
}

describe.each(['clamav', 'rspamd', 'spamassassin'] as const)('%s in trouble', (scanner) => {
  test('down: 451; /ready says so; back: the retry is delivered', async () => {
    const daemon = daemonOf(scanner);
    await deferredThenDelivered(
      async () => {
        await daemon.kill();
        await expect
          .poll(
            async () =>
              ((await admin('/ready')) as { checks: Record<string, boolean> }).checks[`filter:${scanner}`],
            {
              timeout: 5000,
            },
          )
          .toBe(false);
      },
      () => daemon.restart(),
    );
  }, 60_000);

  test('slow past its timeout (SIGSTOP): 451 at the deadline, not a hang', async () => {
    const daemon = daemonOf(scanner);
    await deferredThenDelivered(
      () => daemon.pause(),
      () => daemon.resume(),
    );
  }, 60_000);

  test('closing in the middle of its answer: 451', async () => {
    const proxy = proxies[scanner];
    await deferredThenDelivered(
      () => {
        proxy.mode = 'cut-reply';
        proxy.cutAfterBytes = 5;
      },
      () => {
        proxy.mode = 'pass';
      },
    );
  }, 60_000);

  test('answering garbage: 451', async () => {
    const proxy = proxies[scanner];
    await deferredThenDelivered(
      () => {
        proxy.mode = 'garbage';
        proxy.garbage =
          scanner === 'rspamd' ? 'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nnotjson' : 'WHAT?\0';
      },
      () => {
        proxy.mode = 'pass';
      },
    );
  }, 60_000);
});
