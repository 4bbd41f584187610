import { describe, expect, test } from 'vitest';
import { maskSecrets, parseConfig } from './config.js';

const base = { hostname: 'relay.example.com' };

function errorsOf(doc: unknown) {
  const r = parseConfig(doc);
  if (r.ok) throw new Error('expected the config to be rejected');
  return r.errors;
}

describe('parseConfig accepts', () => {
  test('the minimal config, filling every default', () => {
    const r = parseConfig(base);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.smtp.maxMessageSize).toBe(35 * 1024 * 1024);
    expect(r.config.smtp.listen).toEqual([{ host: '0.0.0.0', port: 25 }]);
    expect(r.config.delivery.lifetime).toBe(5 * 86_400_000);
    expect(r.config.delivery.retry[0]).toBe(5 * 60_000);
    expect(r.config.redis).toMatchObject({ url: null, prefix: 'moat', ack: 'local' });
    expect(r.config.admin.listen).toEqual({ host: '127.0.0.1', port: 8025 });
    expect(Object.isFrozen(r.config.smtp.listen[0])).toBe(true);
  });

  test('the design brief example, normalising hosts and networks', () => {
    const r = parseConfig({
      hostname: 'relay.example.com',
      redis: 'redis://127.0.0.1:6379/0',
      smtp: {
        listen: ['0.0.0.0:25', '[::]:25'],
        maxMessageSize: '35MB',
        tls: { key: '/k.pem', cert: '/c.pem' },
      },
      inbound: { domains: { 'example.com': '[192.168.1.254]', 'Example.ORG': '[192.168.1.254]:2525' } },
      outbound: { clients: ['192.168.1.254/32', '2001:DB8::/32'], authenticated: true, smarthost: null },
      admin: { listen: '127.0.0.1:8025', tokens: ['0123456789abcdef0123'] },
    });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.redis.url).toBe('redis://127.0.0.1:6379/0');
    expect(r.config.smtp.listen[1]).toEqual({ host: '::', port: 25 });
    expect(r.config.inbound.domains['example.com']).toEqual({
      hosts: ['[192.168.1.254]'],
      tls: 'opportunistic',
    });
    expect(r.config.inbound.domains['Example.ORG']?.hosts).toEqual(['[192.168.1.254]:2525']);
    expect(r.config.outbound.clients).toEqual(['192.168.1.254/32', '2001:db8::/32']);
    expect(r.config.admin.tokens[0]).toMatchObject({ scope: 'admin' });
  });

  test('a route as an object with failover hosts, TLS and auth', () => {
    const r = parseConfig({
      ...base,
      outbound: {
        smarthost: {
          hosts: ['[smtp.isp.net]:587', 'backup.isp.net'],
          tls: 'required',
          auth: { user: 'u', pass: 'p' },
        },
      },
    });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.outbound.smarthost).toEqual({
      hosts: ['[smtp.isp.net]:587', 'backup.isp.net'],
      tls: 'required',
      auth: { user: 'u', pass: 'p' },
    });
  });
});

// Each bad config must be rejected with an error naming the key, and saying why.
const rejected: [name: string, doc: Record<string, unknown>, path: string, why: RegExp][] = [
  ['missing hostname', {}, 'hostname', /required/],
  ['unknown top-level key', { ...base, smtpp: {} }, 'smtpp', /not a known key/],
  [
    'unknown nested key',
    { ...base, smtp: { maxMesageSize: '1MB' } },
    'smtp.maxMesageSize',
    /not a known key/,
  ],
  [
    'bad CIDR',
    { ...base, outbound: { clients: ['10.0.0.0/33'] } },
    'outbound.clients[0]',
    /not an IP address or CIDR/,
  ],
  [
    'CIDR with host bits',
    { ...base, outbound: { clients: ['192.168.1.5/24'] } },
    'outbound.clients[0]',
    /host bits/,
  ],
  [
    'bad smart host',
    { ...base, inbound: { domains: { 'example.com': '[192.168.1.254' } } },
    'inbound.domains["example.com"].hosts',
    /missing "\]"/,
  ],
  [
    'smart host port out of range',
    { ...base, outbound: { smarthost: '[smtp.isp.net]:70000' } },
    'outbound.smarthost.hosts',
    /out of range/,
  ],
  [
    'smart host not a host',
    { ...base, outbound: { smarthost: 'not a host' } },
    'outbound.smarthost.hosts',
    /neither an IP/,
  ],
  ['negative size', { ...base, smtp: { maxMessageSize: -5 } }, 'smtp.maxMessageSize', />= 0/],
  [
    'unparsable size',
    { ...base, smtp: { maxMessageSize: '35 megs' } },
    'smtp.maxMessageSize',
    /unknown size unit/,
  ],
  [
    'size of the wrong type',
    { ...base, smtp: { maxMessageSize: true } },
    'smtp.maxMessageSize',
    /string or number/,
  ],
  ['port out of range', { ...base, smtp: { listen: ['0.0.0.0:65536'] } }, 'smtp.listen[0]', /port 1-65535/],
  ['port zero', { ...base, delivery: { mxPort: 0 } }, 'delivery.mxPort', /1-65535/],
  ['bad duration', { ...base, delivery: { lifetime: '5 days' } }, 'delivery.lifetime', /not a duration/],
  [
    'the same inbound domain twice (case and trailing dot differ)',
    { ...base, inbound: { domains: { 'example.com': '[10.0.0.1]', 'EXAMPLE.com.': '[10.0.0.2]' } } },
    'inbound.domains["EXAMPLE.com."]',
    /listed twice/,
  ],
  [
    'inbound key that is no domain',
    { ...base, inbound: { domains: { 'ex ample.com': '[10.0.0.1]' } } },
    'inbound.domains["ex ample.com"]',
    /not a domain/,
  ],
  [
    'admin on a public address without a token',
    { ...base, admin: { listen: '0.0.0.0:8025', allowInsecure: true } },
    'admin.tokens',
    /needs at least one token/,
  ],
  [
    'admin on a public address without TLS',
    { ...base, admin: { listen: '0.0.0.0:8025', tokens: ['0123456789abcdef0123'] } },
    'admin.tls',
    /not loopback/,
  ],
  [
    'admin token from an unset variable',
    { ...base, admin: { tokens: [''] } },
    'admin.tokens[0].token',
    /16 characters/,
  ],
  ['redis URL of the wrong scheme', { ...base, redis: 'http://127.0.0.1' }, 'redis.url', /redis:\/\//],
  [
    'sentinel URL without a master name',
    { ...base, redis: 'redis-sentinel://127.0.0.1:26379' },
    'redis.url',
    /redis-sentinel:\/\//,
  ],
  [
    'bad user hash',
    { ...base, smtp: { users: [{ name: 'a', password: 'secret' }] } },
    'smtp.users[0].password',
    /moat user hash/,
  ],
  [
    'PROXY protocol without trusted proxies',
    { ...base, smtp: { proxyProtocol: true } },
    'smtp.trustedProxies',
    /name the load balancers/,
  ],
  ['bad log level', { ...base, log: { level: 'loud' } }, 'log.level', /.+/],
  [
    'a route object without hosts',
    { ...base, outbound: { smarthost: { tls: 'required' } } },
    'outbound.smarthost.hosts',
    /must be a host .* or a list of them/,
  ],
  [
    'delivery thread neither a boolean nor auto',
    { ...base, delivery: { thread: 'sometimes' } },
    'delivery.thread',
    /true, false or "auto"/,
  ],
];

describe('parseConfig rejects, naming the key', () => {
  test.each(rejected)('%s', (_name, doc, path, why) => {
    const errors = errorsOf(doc);
    const hit = errors.find((e) => e.path === path);
    expect(hit, `errors were: ${JSON.stringify(errors)}`).toBeDefined();
    expect(hit?.message).toMatch(why);
  });

  test('reports every error at once, not just the first', () => {
    const errors = errorsOf({
      ...base,
      smtp: { maxMessageSize: 'x', listen: ['nope'] },
      delivery: { mxPort: 0 },
    });
    expect(errors.map((e) => e.path).sort()).toEqual([
      'delivery.mxPort',
      'smtp.listen[0]',
      'smtp.maxMessageSize',
    ]);
  });
});

test('maskSecrets hides tokens, passwords, hashes and Redis credentials', () => {
  const r = parseConfig({
    ...base,
    redis: 'redis://user:hunter2@10.0.0.9:6379',
    outbound: { smarthost: { hosts: '[smtp.isp.net]:587', auth: { user: 'u', pass: 'topsecretpass' } } },
    admin: { tokens: [{ name: 'ops', token: 'supersecrettoken123' }] },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const text = JSON.stringify(maskSecrets(r.config));
  expect(text).not.toMatch(/hunter2|topsecretpass|supersecrettoken123/);
  expect(text).toContain('"name":"ops"');
  expect(text).toContain('10.0.0.9:6379');
});

test('two domains sharing hosts must share TLS and auth settings', () => {
  const errors = errorsOf({
    ...base,
    inbound: {
      domains: { 'example.com': '[10.0.0.5]', 'example.org': { hosts: '[10.0.0.5]', tls: 'required' } },
    },
  });
  expect(errors).toEqual([
    { path: 'inbound.domains["example.org"]', message: expect.stringMatching(/different tls or auth/) },
  ]);
});
