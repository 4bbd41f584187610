import { type RedisServer, startRedis } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RedisClient } from './connection.js';
import { connect, whenReady } from './connection.js';
import { actOnJob, actOnMessage } from './queue-actions.js';
import { bulkAction, selectJobs } from './queue-bulk.js';
import { HOLD_MS, isHeld, type QueuedJob } from './queue-jobs.js';
import { listJobs, oldestJobs } from './queue-list.js';
import { messageDetails, parseHeaders } from './queue-message.js';
import { Spool } from './spool.js';
import { workOnce } from './test-queue.js';
import { searchEvents } from './tracking.js';
import { startRouteWorker } from './workers.js';

let server: RedisServer;
let redis: RedisClient;
let workerRedis: RedisClient;
let n = 0;
const fresh = () => new Spool({ redis, prefix: `q${++n}`, timeout: 2000, ack: 'local', replicas: 1 });
const client = { ip: '192.0.2.1', helo: 'mx.example.org', user: null, tls: false };
const SMART = '[192.168.1.254]';

beforeAll(async () => {
  server = await startRedis();
  redis = connect({ url: server.url, commandTimeout: 2000 }, 'producer');
  workerRedis = connect({ url: server.url }, 'worker');
  await whenReady(redis);
});
afterAll(async () => {
  redis.disconnect();
  workerRedis.disconnect();
  await server.stop();
});

function mail(spool: Spool, sender: string, routes: Record<string, string[]>, subject = 'hello') {
  return spool.enqueue({
    sender,
    routes: Object.entries(routes).map(([routeId, recipients]) => ({ routeId, recipients })),
    body: Buffer.from(
      `Received: from x\r\nSubject: ${subject}\r\n\tcontinued\r\nFrom: <${sender}>\r\n\r\nbody\r\n`,
    ),
    client,
  });
}

const ids = (jobs: readonly QueuedJob[]) => jobs.map((j) => j.messageId);

describe('listing', () => {
  test('waiting jobs of one route page in queue order; without a route, every route', async () => {
    const spool = fresh();
    const a = await mail(spool, 'a@example.org', { [SMART]: ['x@example.com'] });
    const b = await mail(spool, 'b@example.org', { [SMART]: ['y@example.com'], mx: ['z@example.net'] });
    const c = await mail(spool, 'c@example.org', { [SMART]: ['w@example.com'] });

    const first = await listJobs(spool, { routeId: SMART, state: 'waiting', limit: 2 });
    expect(first.total).toBe(3);
    expect(ids(first.jobs)).toEqual([a.id, b.id]);
    const second = await listJobs(spool, { routeId: SMART, state: 'waiting', offset: 2, limit: 2 });
    expect(ids(second.jobs)).toEqual([c.id]);
    expect(second.jobs[0]).toMatchObject({
      routeId: SMART,
      jobId: `${c.id}-1`,
      state: 'waiting',
      sender: 'c@example.org',
      recipients: ['w@example.com'],
      attempts: 0,
      lastReply: null,
      nextAttemptAt: null,
    });

    const all = await listJobs(spool, { state: 'waiting', limit: 10 });
    expect(all.total).toBe(4);
    expect(all.jobs.map((j) => j.jobId).sort()).toEqual(
      [`${a.id}-1`, `${b.id}-1`, `${b.id}-2`, `${c.id}-1`].sort(),
    );
    expect((await listJobs(spool, { state: 'deferred' })).total).toBe(0);
    await expect(listJobs(spool, { state: 'waiting', offset: 9_990, limit: 20 })).rejects.toMatchObject({
      code: 'unsupported',
    });
    expect(
      (await listJobs(spool, { routeId: SMART, state: 'waiting', offset: 9_990, limit: 20 })).jobs,
    ).toEqual([]);
    await spool.close();
  });

  test('deferred jobs carry their last reply and next attempt; failed ones their reason', async () => {
    const spool = fresh();
    const m = await mail(spool, 'a@example.org', { [SMART]: ['x@example.com'] });
    const before = Date.now();
    await workOnce(spool, workerRedis, SMART, 1, {
      defer: 60_000,
      reply: { code: 451, text: '4.7.1 Try again later', host: '192.168.1.254' },
    });
    const deferred = await listJobs(spool, { routeId: SMART, state: 'deferred' });
    expect(deferred.total).toBe(1);
    expect(deferred.jobs[0]).toMatchObject({
      messageId: m.id,
      state: 'deferred',
      attempts: 1,
      lastReply: { code: 451, text: '4.7.1 Try again later', host: '192.168.1.254' },
    });
    expect(deferred.jobs[0]?.nextAttemptAt).toBeGreaterThanOrEqual(before + 60_000);
    expect(deferred.jobs[0]?.nextAttemptAt).toBeLessThan(Date.now() + 61_000);

    await mail(spool, 'b@example.org', { mx: ['y@example.net'] });
    await workOnce(spool, workerRedis, 'mx', 1, { fail: 'boom' });
    const failed = await listJobs(spool, { state: 'failed' });
    expect(failed.jobs).toEqual([
      expect.objectContaining({ routeId: 'mx', state: 'failed', failedReason: 'boom' }),
    ]);
    await spool.close();
  });
  test('oldest jobs in a state come oldest message first, across routes', async () => {
    const spool = fresh();
    const old = await mail(spool, 'a@example.org', { mx: ['x@example.net'] });
    const mid = await mail(spool, 'b@example.org', { [SMART]: ['y@example.com'] });
    await mail(spool, 'c@example.org', { [SMART]: ['z@example.com'] });
    await workOnce(spool, workerRedis, SMART, 2, { defer: 60_000, reply: { code: 451, text: 'later' } });
    await workOnce(spool, workerRedis, 'mx', 1, { defer: 3_600_000, reply: { code: 421, text: 'busy' } });
    const deferred = await oldestJobs(spool, { state: 'deferred', limit: 2 });
    expect(ids(deferred)).toEqual([old.id, mid.id]);
    expect(deferred[0]?.lastReply?.text).toBe('busy');
    expect(ids(await oldestJobs(spool, { state: 'deferred', routeId: SMART, limit: 1 }))).toEqual([mid.id]);
    expect(await oldestJobs(spool, { state: 'waiting' })).toEqual([]);
    await spool.close();
  });
});

describe('one message', () => {
  test('envelope, unfolded headers, each route job with its state, and tracking events', async () => {
    const spool = fresh();
    const m = await mail(spool, 'a@example.org', { [SMART]: ['x@example.com'], mx: ['y@example.net'] });
    await workOnce(spool, workerRedis, 'mx', 1, { defer: 60_000, reply: { code: 421, text: 'busy' } });
    const details = await messageDetails(spool, m.id);
    expect(details?.meta).toMatchObject({ id: m.id, sender: 'a@example.org', client });
    expect(details?.headers).toEqual([
      { name: 'Received', value: 'from x' },
      { name: 'Subject', value: 'hello continued' },
      { name: 'From', value: '<a@example.org>' },
    ]);
    expect(details?.jobs.map((j) => [j.routeId, j.state])).toEqual([
      [SMART, 'waiting'],
      ['mx', 'deferred'],
    ]);
    expect(details?.events.map((e) => e.type)).toEqual(['received']);

    await spool.release(m.id, `${m.id}-1`);
    await (await spool.queue(SMART).getJob(`${m.id}-1`))?.remove();
    expect((await messageDetails(spool, m.id))?.jobs[0]).toEqual({
      routeId: SMART,
      jobId: `${m.id}-1`,
      state: 'done',
    });
    expect(await messageDetails(spool, 'NOSUCHMESSAGE')).toBeNull();
    await spool.close();
  });

  test('header parsing stops at the blank line and copes with LF-only text', () => {
    expect(parseHeaders('A: 1\nB: two\n  lines\n\nC: body')).toEqual([
      { name: 'A', value: '1' },
      { name: 'B', value: 'two lines' },
    ]);
  });
});

describe('actions', () => {
  test('retry now promotes a deferred job and retries a failed one; a waiting job is unchanged', async () => {
    const spool = fresh();
    const m = await mail(spool, 'a@example.org', { [SMART]: ['x@example.com'] });
    expect((await actOnJob(spool, SMART, `${m.id}-1`, 'retry')).outcome).toBe('unchanged');
    await workOnce(spool, workerRedis, SMART, 1, { defer: 3_600_000 });
    expect(await actOnJob(spool, SMART, `${m.id}-1`, 'retry')).toMatchObject({
      outcome: 'done',
      state: 'waiting',
    });
    expect((await listJobs(spool, { routeId: SMART, state: 'waiting' })).total).toBe(1);

    await workOnce(spool, workerRedis, SMART, 1, { fail: 'broken' });
    expect((await listJobs(spool, { routeId: SMART, state: 'failed' })).total).toBe(1);
    const [r] = await actOnMessage(spool, m.id, 'retry');
    expect(r).toMatchObject({ outcome: 'done', state: 'waiting', messageId: m.id });
    expect((await listJobs(spool, { routeId: SMART, state: 'waiting' })).total).toBe(1);
    await spool.close();
  });

  test('a held job is never taken by a worker until it is released', async () => {
    const spool = fresh();
    const held = await mail(spool, 'a@example.org', { [SMART]: ['x@example.com'] });
    const free = await mail(spool, 'b@example.org', { [SMART]: ['y@example.com'] });
    const r = await actOnJob(spool, SMART, `${held.id}-1`, 'hold', { by: 'ops' });
    expect(r).toMatchObject({ outcome: 'done', state: 'held' });
    expect((await actOnJob(spool, SMART, `${held.id}-1`, 'hold')).outcome).toBe('unchanged');
    const list = await listJobs(spool, { routeId: SMART, state: 'held' });
    expect(list.total).toBe(1);
    expect(list.jobs[0]).toMatchObject({ messageId: held.id, heldBy: 'ops', state: 'held' });
    expect(list.jobs[0]?.heldAt).toBeGreaterThan(Date.now() - 5000);
    expect((await listJobs(spool, { routeId: SMART, state: 'deferred' })).total).toBe(0);

    const taken: string[] = [];
    const worker = startRouteWorker(
      spool.keys,
      SMART,
      async (job) => {
        taken.push(job.data.messageId);
        expect(isHeld(job.data)).toBe(false);
      },
      { connection: workerRedis, concurrency: 2 },
    );
    await expect.poll(() => taken, { timeout: 5000 }).toEqual([free.id]);
    await new Promise((r) => setTimeout(r, 300));
    expect(taken).toEqual([free.id]);

    expect(await actOnJob(spool, SMART, `${held.id}-1`, 'release')).toMatchObject({
      outcome: 'done',
      state: 'waiting',
    });
    await expect.poll(() => taken, { timeout: 5000 }).toEqual([free.id, held.id]);
    await worker.close();
    const events = await searchEvents(redis, spool.keys.events, { messageId: held.id });
    expect(events.map((e) => e.type)).toEqual(['released', 'held', 'received']);
    expect(events[1]?.reply).toBe('held by ops');
    await spool.close();
  });

  test('releasing a held deferred job restores its retry time', async () => {
    const spool = fresh();
    const m = await mail(spool, 'a@example.org', { [SMART]: ['x@example.com'] });
    await workOnce(spool, workerRedis, SMART, 1, { defer: 600_000, reply: { code: 451, text: 'later' } });
    const [before] = (await listJobs(spool, { routeId: SMART, state: 'deferred' })).jobs;
    await actOnJob(spool, SMART, `${m.id}-1`, 'hold');
    const [held] = (await listJobs(spool, { routeId: SMART, state: 'held' })).jobs;
    expect(held?.lastReply?.text).toBe('later');
    const job = await spool.queue(SMART).getJob(`${m.id}-1`);
    expect(job?.delay).toBe(HOLD_MS);

    expect((await actOnJob(spool, SMART, `${m.id}-1`, 'release')).state).toBe('deferred');
    const [after] = (await listJobs(spool, { routeId: SMART, state: 'deferred' })).jobs;
    expect(Math.abs((after?.nextAttemptAt ?? 0) - (before?.nextAttemptAt ?? 0))).toBeLessThan(2000);
    expect(isHeld((await spool.queue(SMART).getJob(`${m.id}-1`))!.data)).toBe(false);
    await spool.close();
  });

  test('delete removes the job, releases the body with the last job, and tracks it', async () => {
    const spool = fresh();
    const m = await mail(spool, 'a@example.org', { [SMART]: ['x@example.com'], mx: ['y@example.net'] });
    const first = await actOnMessage(spool, m.id, 'delete', { routeId: 'mx', by: 'ops' });
    expect(first).toEqual([expect.objectContaining({ routeId: 'mx', outcome: 'done', state: 'done' })]);
    expect(await spool.readBody(m.id)).not.toBeNull();
    expect(await spool.queue('mx').getJob(`${m.id}-2`)).toBeUndefined();

    await expect(actOnMessage(spool, m.id, 'delete', { dsn: true })).rejects.toMatchObject({
      code: 'unsupported',
    });
    const bounced: string[] = [];
    const results = await actOnMessage(spool, m.id, 'delete', {
      dsn: true,
      bounce: async (job) => {
        bounced.push(job.recipients.join());
        expect(await spool.readBody(job.messageId)).not.toBeNull();
      },
    });
    expect(results).toEqual([expect.objectContaining({ routeId: SMART, dsn: 'sent' })]);
    expect(bounced).toEqual(['x@example.com']);
    expect(await spool.readBody(m.id)).toBeNull();
    expect(await spool.readMeta(m.id)).toBeNull();
    const events = await searchEvents(redis, spool.keys.events, { messageId: m.id, limit: 10 });
    expect(events.map((e) => [e.type, e.routeId])).toEqual([
      ['deleted', SMART],
      ['deleted', 'mx'],
      ['received', undefined],
    ]);
    await expect(actOnMessage(spool, m.id, 'retry')).rejects.toMatchObject({ code: 'not-found' });
    await expect(actOnJob(spool, SMART, 'nope-1', 'retry')).rejects.toMatchObject({ code: 'not-found' });
    await spool.close();
  });

  test('a job a worker is delivering right now cannot be acted on', async () => {
    const spool = fresh();
    const m = await mail(spool, 'a@example.org', { [SMART]: ['x@example.com'] });
    let finish!: () => void;
    const gate = new Promise<void>((r) => {
      finish = r;
    });
    const worker = startRouteWorker(spool.keys, SMART, () => gate, {
      connection: workerRedis,
      concurrency: 1,
    });
    await expect
      .poll(async () => (await listJobs(spool, { state: 'active' })).total, { timeout: 5000 })
      .toBe(1);
    for (const action of ['hold', 'delete', 'retry'] as const) {
      await expect(actOnJob(spool, SMART, `${m.id}-1`, action)).rejects.toMatchObject({ code: 'conflict' });
    }
    finish();
    await worker.close();
    await spool.close();
  });
});

describe('bulk', () => {
  test('select by sender, recipient domain, route and age; hold them all; dry run changes nothing', async () => {
    const spool = fresh();
    const a = await mail(spool, 'Spam@Bad.example', { [SMART]: ['x@example.com'], mx: ['y@victim.example'] });
    const b = await mail(spool, 'ok@good.example', { mx: ['z@Victim.Example'] });
    const c = await mail(spool, 'ok@good.example', { [SMART]: ['w@example.com'] });

    const bySender = await selectJobs(spool, { sender: 'spam@bad.example' });
    expect(bySender.map((j) => j.jobId).sort()).toEqual([`${a.id}-1`, `${a.id}-2`]);
    const byDomain = await selectJobs(spool, { recipientDomain: '@victim.example' });
    expect(byDomain.map((j) => j.jobId).sort()).toEqual([`${a.id}-2`, `${b.id}-1`]);
    const byRoute = await selectJobs(spool, { routeId: SMART, sender: 'ok@good.example' });
    expect(ids(byRoute)).toEqual([c.id]);
    expect(await selectJobs(spool, { olderThan: 60_000 })).toEqual([]);
    expect(await selectJobs(spool, { olderThan: 0 })).toHaveLength(4);
    expect(await selectJobs(spool, { states: ['deferred'] })).toEqual([]);

    const dry = await bulkAction(spool, { recipientDomain: 'victim.example' }, 'hold', { dryRun: true });
    expect(dry.matched).toBe(2);
    expect(dry.results.every((r) => r.outcome === 'unchanged')).toBe(true);
    expect((await listJobs(spool, { state: 'held' })).total).toBe(0);

    const held = await bulkAction(spool, { recipientDomain: 'victim.example' }, 'hold', { by: 'ops' });
    expect(held).toMatchObject({ matched: 2, errors: [] });
    expect((await listJobs(spool, { state: 'held' })).total).toBe(2);
    expect((await listJobs(spool, { state: 'waiting' })).total).toBe(2);

    const deleted = await bulkAction(spool, { states: ['held'] }, 'delete');
    expect(deleted.matched).toBe(2);
    expect(await spool.readBody(b.id)).toBeNull();
    expect(await spool.readBody(a.id)).not.toBeNull();
    await spool.close();
  });
});
