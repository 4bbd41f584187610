import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { useHarness } from './test-harness.js';

const fx = useHarness();

/** A Redis user that may do everything except touch Moat's tracking stream ({prefix}:events). */
function userWithoutTracking(port: number): string {
  const password = 'no-tracking-pw';
  execFileSync('redis-cli', [
    '-p',
    String(port),
    'ACL',
    'SETUSER',
    'no-tracking',
    'on',
    `>${password}`,
    'resetkeys',
    // Every key of every prefix but the ones whose name after "{prefix}:" starts with "e":
    // Moat's events stream is the only one (BullMQ's streams are "{prefix}:route.…:events").
    '~{*}:[^e]*',
    '&*',
    '+@all',
  ]);
  return `redis://no-tracking:${password}@127.0.0.1:${port}`;
}

describe('tracking events are best effort', () => {
  test('Redis refusing the event: logged, the mail goes out once, its job ends and its body is released', async () => {
    const smartHost = await fx.sink();
    const run = await fx.h.start(
      {
        inbound: { domains: { 'example.com': `[127.0.0.1]:${smartHost.port}` } },
        delivery: { retry: ['300ms'] },
      },
      { deliveryRedisUrl: userWithoutTracking(fx.h.redis.port) },
    );
    const meta = await run.send('a@elsewhere.test', ['bob@example.com']);

    const [message] = await smartHost.waitForMessages(1);
    expect(message?.rcptTo).toEqual(['bob@example.com']);
    await expect
      .poll(() => run.logs.find((l) => l.event === 'delivery.track_failed'), { timeout: 5000 })
      .toMatchObject({ messageId: meta.id });
    // The body is released and the job is gone: nothing will send this mail again.
    await expect.poll(() => run.spool.readBody(meta.id), { timeout: 5000 }).toBeNull();
    const queue = run.spool.queue('inbound');
    await expect
      .poll(() => queue.getJobCounts(), { timeout: 5000 })
      .toMatchObject({
        waiting: 0,
        active: 0,
        delayed: 0,
        failed: 0,
      });
    // Had the failure failed the job, it would be retried after 300 ms and sent again.
    await new Promise((r) => setTimeout(r, 1000));
    expect(smartHost.messages).toHaveLength(1);
    expect(run.logs.filter((l) => l.event === 'delivery.error')).toEqual([]);
    // The refusal really was Redis's: the only event is the edge's, written by the default user.
    expect((await run.events(meta.id)).map((e) => e.type)).toEqual(['received']);
  });
});
