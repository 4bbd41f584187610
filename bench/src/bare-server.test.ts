/**
 * The floors under Moat's edge must store what they claim to: a message answered 250 is in
 * Redis in the layout of its mode (a list, a BullMQ job, Moat's spool), on a real Redis; and
 * the relay floor must deliver it unchanged to the next hop, and then delete it.
 */
import { join } from 'node:path';
import { connect, Spool, whenReady } from '@moat/spool';
import { dotStuff, freePort, RawSmtp, type RedisServer, startRedis, startSmtpSink } from '@moat/testkit';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type Proc, start, waitFor } from './procs.js';
import { portOpen } from './smtp-tools.js';

const BARE_SERVER = join(import.meta.dirname, '..', 'dist', 'bare-server.js');
const MESSAGE = 'Subject: floor\r\n\r\nline one\r\n.a dot first\r\n';
let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis({ appendfsync: 'always' });
});
afterAll(async () => {
  await redis?.stop();
});

/**
 * Start the floor with `flags`, send one message, wait for `done` (when given), stop it; the id
 * from the 250 reply.
 */
async function sendThrough(
  flags: readonly string[],
  done?: (id: string) => boolean | Promise<boolean>,
  message: string = MESSAGE,
): Promise<string> {
  const port = await freePort();
  const server: Proc = start(process.execPath, [
    BARE_SERVER,
    '--port',
    String(port),
    '--redis',
    redis.url,
    ...flags,
  ]);
  try {
    await waitFor(() => portOpen(port), 'bare-server to listen', 10_000);
    const client = await RawSmtp.connect({ port });
    expect(await client.cmd('EHLO bench')).toMatch(/^250/);
    const reply = await client.send('bench@example.net', ['a@example.com'], dotStuff(Buffer.from(message)));
    await client.quit();
    expect(reply).toMatch(/^250 /);
    const id = /queued as (\S+)/.exec(reply)?.[1] ?? '';
    if (done) await waitFor(() => done(id), 'the floor to relay the message', 10_000);
    return id;
  } finally {
    await server.stop('SIGTERM', 10_000);
  }
}

test('bare: the body under its id, and the id in the list', async () => {
  const id = await sendThrough([]);
  const r = new Redis(redis.url);
  try {
    expect((await r.getBuffer(`bare:body:${id}`))?.toString('latin1')).toBe(MESSAGE);
    expect(await r.lrange('bare:queue', 0, -1)).toContain(id);
  } finally {
    r.disconnect();
  }
});

test('--bullmq: the body, and a BullMQ job named by the id', async () => {
  const id = await sendThrough(['--bullmq']);
  const r = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue('bare', { connection: r });
  try {
    expect((await r.getBuffer(`bare:body:${id}`))?.toString('latin1')).toBe(MESSAGE);
    expect((await queue.getJob(id))?.data).toMatchObject({ messageId: id, recipients: ['a@example.com'] });
  } finally {
    await queue.close();
    r.disconnect();
  }
});

test("--spool: stored by Moat's spool, committed, with its job", async () => {
  const id = await sendThrough(['--spool']);
  const producer = connect({ url: redis.url }, 'producer');
  await whenReady(producer, 5000);
  const spool = new Spool({
    redis: producer,
    prefix: 'bare',
    timeout: 5000,
    ack: 'local',
    replicas: 0,
  });
  try {
    expect((await spool.readBody(id))?.toString('latin1')).toBe(MESSAGE);
    expect(await spool.readMeta(id)).toMatchObject({ id, sender: 'bench@example.net' });
    expect((await spool.queueOfJob('bare', `${id}-1`).getJob(`${id}-1`))?.data).toMatchObject({
      messageId: id,
      crlf: true,
    });
  } finally {
    await spool.close();
  }
});

/** Larger than Buffer's pool: its memory moves to the relay thread instead of being copied. */
const LARGE = `Subject: large\r\n\r\n${'.line of text\r\n'.repeat(8000)}`;

test.each([
  ['a small body (copied to the relay thread)', MESSAGE],
  ['a large body (moved to the relay thread)', LARGE],
])(
  '--relay, %s: stored as bare, delivered unchanged to the next hop, then deleted',
  async (_name, message) => {
    const sink = await startSmtpSink({ tls: false });
    const r = new Redis(redis.url);
    // Only this test's message: the first test's id is still in the list.
    await r.del('bare:queue');
    try {
      // Relayed, and deleted after the next hop's 250, before the floor is stopped (stopping it
      // first could end the relay thread between the two).
      const relayed = async (id: string) =>
        sink.messages.length === 1 && (await r.exists(`bare:body:${id}`)) === 0;
      const id = await sendThrough(['--relay', String(sink.port)], relayed, message);
      expect(sink.messages[0]?.raw.toString('latin1')).toBe(message);
      expect(sink.messages[0]?.rcptTo).toEqual(['user@example.com']);
      expect(await r.exists(`bare:body:${id}`)).toBe(0);
      expect(await r.lrange('bare:queue', 0, -1)).not.toContain(id);
    } finally {
      r.disconnect();
      await sink.close();
    }
  },
);
