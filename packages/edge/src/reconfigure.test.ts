import { configSchema } from '@moat/policy';
import { RawSmtp, type RedisServer } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { BASE_CONFIG, startRedis, startTestEdge } from './test-fixture.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

async function open(port: number): Promise<RawSmtp> {
  const c = await RawSmtp.connect({ port, localAddress: '127.0.0.3' });
  await c.cmd('EHLO mx.example.net');
  await c.cmd('MAIL FROM:<a@example.net>');
  return c;
}

test('a reconfigured edge: new sessions get the new domains, a session already open keeps its settings', async () => {
  const t = await startTestEdge(redis);
  try {
    const before = await open(t.port);
    expect(await before.cmd('RCPT TO:<x@new.example>')).toBe('550 5.7.1 Relaying denied');
    const config = configSchema.parse({
      ...BASE_CONFIG,
      inbound: { domains: { ...BASE_CONFIG.inbound?.domains, 'new.example': '[192.168.1.254]' } },
      redis: { url: redis.url },
    });
    t.edge.reconfigure({ config });
    // The open session started before the reload.
    expect(await before.cmd('RCPT TO:<y@new.example>')).toBe('550 5.7.1 Relaying denied');
    before.destroy();
    const after = await open(t.port);
    expect(await after.cmd('RCPT TO:<x@new.example>')).toBe('250 2.1.5 Accepted');
    after.destroy();
  } finally {
    await t.close();
  }
});
