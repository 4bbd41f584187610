/**
 * The delivery half of the relay floor (`bare-relay-always`, bare-server.ts --relay PORT), in a
 * worker thread of its own as Moat's delivery is in `moat start`: senders that each take an id
 * from the bare floor's list (BRPOP), take the body the server thread handed over in memory (as
 * `moat start` does, delivery.bodyCache, with the same budget) or else read it (GET), send it
 * over one kept-open nodemailer connection to the next hop, and delete it (DEL). No job, lock,
 * tracking event, RSET, retry or bounce: the most any relay that stores in Redis, accepts with
 * smtp-server and delivers with nodemailer can do end to end on this machine.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BODY_TTL_MS, BodyCache } from '@moat/delivery';
import { Redis } from 'ioredis';
import SMTPConnection from 'nodemailer/lib/smtp-connection';

export interface RelayData {
  readonly redis: string;
  /** The next hop, on 127.0.0.1. */
  readonly port: number;
  /** Senders, each with its own Redis and SMTP connection (Moat's delivery.concurrency). */
  readonly concurrency: number;
}

/** A body the server thread stored, handed over in memory. */
export interface RelayBody {
  readonly id: string;
  readonly body: Uint8Array;
}

/** Moat's own cache with its default delivery.bodyCache: bodies over it are read from Redis. */
const bodies = new BodyCache({ budget: 256 * 1024 * 1024, ttl: BODY_TTL_MS });
parentPort?.on('message', ({ id, body }: RelayBody) => {
  bodies.put(id, Buffer.from(body.buffer, body.byteOffset, body.byteLength));
});

/** The body from memory (then forgotten) or from Redis. */
async function bodyOf(redis: Redis, id: string): Promise<Buffer | null> {
  const kept = bodies.get(id);
  if (kept === undefined) return redis.getBuffer(`bare:body:${id}`);
  bodies.delete(id);
  return kept;
}

const ENVELOPE = { from: 'bench@example.net', to: ['user@example.com'] };

function open(port: number): Promise<SMTPConnection> {
  const conn = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true, name: 'bench', logger: false });
  return new Promise((resolve, reject) => {
    conn.once('error', reject);
    conn.connect(() => resolve(conn));
  });
}

function send(conn: SMTPConnection, body: Buffer): Promise<void> {
  // crlf: the floor's bodies come from smtp-source with CRLF endings (the patched nodemailer
  // then only stuffs dots, as for Moat's jobs).
  const envelope = { ...ENVELOPE, size: body.length, crlf: true };
  return new Promise((resolve, reject) =>
    conn.send(envelope, body, (err) => (err ? reject(err) : resolve())),
  );
}

async function sender({ redis: url, port }: RelayData): Promise<never> {
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  const conn = await open(port);
  for (;;) {
    const popped = await redis.brpop('bare:queue', 0);
    const id = popped?.[1];
    if (id === undefined) continue;
    const body = await bodyOf(redis, id);
    if (body === null) throw new Error(`bare:body:${id} is gone`);
    await send(conn, body);
    await redis.del(`bare:body:${id}`);
  }
}

const data = workerData as RelayData;
// A sender that fails (its rejection unhandled) ends the thread, and bare-server.ts exits
// non-zero: a floor that lost a message would not be one.
for (let i = 0; i < data.concurrency; i++) void sender(data);
