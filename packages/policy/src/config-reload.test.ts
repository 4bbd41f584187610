import { expect, test } from 'vitest';
import { parseConfig } from './config.js';
import { changesNeedingRestart } from './config-reload.js';

const config = (over: Record<string, unknown>) => {
  const r = parseConfig({
    hostname: 'relay.example.com',
    inbound: { domains: { 'example.com': '[10.0.0.5]' } },
    ...over,
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config;
};

test.each([
  ['nothing', {}, []],
  [
    'a new inbound domain',
    { inbound: { domains: { 'example.com': '[10.0.0.5]', 'example.org': '[10.0.0.6]' } } },
    [],
  ],
  [
    'allow-lists, filters, limits, the log level',
    {
      outbound: { clients: ['10.0.0.0/8'] },
      filters: { clamav: {} },
      limits: { client: { messages: '10/1m' } },
      log: { level: 'debug' },
    },
    [],
  ],
  ['SMTP users', { smtp: { users: [{ name: 'a', password: 'scrypt$16384$8$1$AAAA$BBBB' }] } }, []],
  ['the listen address', { smtp: { listen: ['0.0.0.0:2525'] } }, ['smtp.listen']],
  [
    'Redis and the admin API',
    { redis: { url: 'redis://10.0.0.9:6379' }, admin: { listen: '127.0.0.1:9000' } },
    ['redis.url', 'admin.listen'],
  ],
  [
    'TLS and the size limit',
    { smtp: { maxMessageSize: '10MB', tls: { key: '/k', cert: '/c' } } },
    ['smtp.maxMessageSize', 'smtp.tls'],
  ],
  [
    'the hostname and delivery tuning',
    { hostname: 'other.example.com', delivery: { concurrency: 5 } },
    ['hostname', 'delivery.concurrency'],
  ],
])('%s', (_what, over, changed) => {
  expect(changesNeedingRestart(config({}), config(over)).sort()).toEqual([...changed].sort());
});
