/**
 * The producer side of the queue: make a message durable (body once, one job per route),
 * read it back, release it when its last job ends, and record tracking events.
 */
import { type JobsOptions, Queue } from 'bullmq';
import { primaryForSlot, type RedisClient } from './connection.js';
import { SpoolUnavailableError, withDeadline } from './errors.js';
import { newMessageId, partitionOfId } from './ids.js';
import { type Keys, keysFor, type PartitionKeys, partitionKeys, slotOf } from './keys.js';
import { DEFAULT_MAX_EVENTS, eventFields } from './tracking.js';
import type { ClientFacts, DeliveryJob, FilterVerdictRecord, MessageMeta, TrackingEvent } from './types.js';

export interface SpoolOptions {
  /** A producer connection (see connection.ts): one Redis, or a Redis Cluster. */
  readonly redis: RedisClient;
  readonly prefix: string;
  /**
   * redis.partitions: 1 (default) keeps every message in partition 0; N > 1 places each new
   * message in one of partitions 1…N at random (see keys.ts).
   */
  readonly partitions?: number;
  /** Deadline for making a message durable (ms). */
  readonly timeout: number;
  /** 'replicated': WAIT for `replicas` replicas before reporting success. */
  readonly ack: 'local' | 'replicated';
  readonly replicas: number;
  /** Most tracking events kept in all (each partition's stream keeps its share, trimmed approximately). */
  readonly maxEvents?: number;
  /** This node's id, written into tracking events. */
  readonly node?: string;
  /**
   * With ack 'replicated': when it says fewer replicas are online than `replicas`, acknowledge
   * with the primary's durability (no WAIT) and call `onLocalAck`; without it, a WAIT that
   * falls short refuses (451). redis.whenReplicasMissing: local.
   */
  readonly replicaWatch?: { readonly missing: boolean; check(): Promise<number | null> } | undefined;
  readonly onLocalAck?: () => void;
}

export interface EnqueueInput {
  readonly sender: string;
  readonly routes: readonly { readonly routeId: string; readonly recipients: readonly string[] }[];
  readonly body: Buffer;
  readonly client: ClientFacts;
  readonly kind?: 'message' | 'dsn';
  /** Use this id (the edge names the message before DATA, for its Received: header). */
  readonly id?: string;
  readonly envid?: string | undefined;
  /** The filters' verdicts, for the "received" tracking event. */
  readonly filters?: readonly FilterVerdictRecord[];
  /** Every line ending of `body` is CRLF (DeliveryJob.crlf); only a writer that made it so says this. */
  readonly crlf?: boolean;
}

/** BullMQ job options for every delivery job: the delivery package does its own retries. */
const JOB_OPTIONS: JobsOptions = {
  attempts: 1,
  removeOnComplete: true,
  removeOnFail: false,
};

// Release one job's hold on a body; delete the message when no job needs it any more.
// KEYS: jobs, body, meta, messages; ARGV: jobId, messageId. Returns 1 when deleted.
const RELEASE_SCRIPT = `
redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  redis.call('ZREM', KEYS[4], ARGV[2])
  return 1
end
return 0
`;

// Write a message in one atomic step (a script, not MULTI: one command, no pipeline object per
// message): metadata, the set of job ids that hold the body, the index by time and the
// "received" tracking event, all in the message's partition. The body itself is not an
// argument: a plain SET sent just before it on the same connection writes it with a short
// expiry (no copy into Lua, 2 ms of Redis CPU per MB), and this script makes it permanent. A
// body whose script never ran expires by itself; the script refuses to commit a message whose
// body is missing.
// KEYS: body, meta, jobs, messages, events
// ARGV: meta JSON, receivedAt, id, maxEvents, n, jobId×n, event fields…
const WRITE_SCRIPT = `
if redis.call('PERSIST', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('ERR moat: the message body is missing')
end
redis.call('HSET', KEYS[2], 'json', ARGV[1])
local n = tonumber(ARGV[5])
redis.call('SADD', KEYS[3], unpack(ARGV, 6, 5 + n))
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[3])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', unpack(ARGV, 6 + n))
return 1
`;

// The most partitions any spool has placed mail in, raised to ARGV[1]; returns it.
// KEYS: layout
const LAYOUT_SCRIPT = `
local seen = tonumber(redis.call('HGET', KEYS[1], 'partitions') or '1')
local mine = tonumber(ARGV[1])
if mine > seen then
  redis.call('HSET', KEYS[1], 'partitions', mine)
  return mine
end
return seen
`;

/** How long a body written before its message script stays without it (ms). */
const BODY_CLAIM_MS = 10 * 60_000;

type ScriptedRedis = RedisClient & {
  moatWrite(...args: (string | Buffer)[]): Promise<number>;
  moatRelease(...args: string[]): Promise<number>;
  moatLayout(key: string, partitions: string): Promise<number>;
};

/** The connection with Moat's scripts defined on it (sent as EVALSHA: Redis compiles each once). */
function scripted(redis: RedisClient): ScriptedRedis {
  if (!('moatWrite' in redis)) {
    redis.defineCommand('moatWrite', { numberOfKeys: 5, lua: WRITE_SCRIPT });
    redis.defineCommand('moatRelease', { numberOfKeys: 4, lua: RELEASE_SCRIPT });
    redis.defineCommand('moatLayout', { numberOfKeys: 1, lua: LAYOUT_SCRIPT });
  }
  return redis as ScriptedRedis;
}

/** Entries BullMQ keeps in each queue's own events stream (approximately: XADD MAXLEN ~). */
export const BULLMQ_EVENTS_MAX = 100;

/** How long a partition list read from Redis is trusted (ms). */
const LAYOUT_TTL_MS = 5000;

export class Spool {
  /** Partition 0's keys and the control keys. */
  readonly keys: Keys;
  /** redis.partitions: how many partitions new mail is spread over (1: all in partition 0). */
  readonly placement: number;
  readonly #redis: RedisClient;
  readonly #options: SpoolOptions;
  readonly #queues = new Map<string, Queue<DeliveryJob>>();
  readonly #knownRoutes = new Set<string>();
  readonly #maxEvents: string;
  /** The highest partition number any spool placed mail in, as last read from Redis. */
  #highest: number;
  #layoutReadAt = 0;
  /** Whether Redis's layout is known to count this spool's partitions. */
  #layoutRecorded: boolean;

  constructor(options: SpoolOptions) {
    this.#options = options;
    this.#redis = options.redis;
    this.placement = Math.max(1, options.partitions ?? 1);
    this.keys = keysFor(options.prefix, this.placement);
    this.#highest = this.placement > 1 ? this.placement : 0;
    this.#layoutRecorded = this.placement === 1;
    this.#maxEvents = String(Math.ceil((options.maxEvents ?? DEFAULT_MAX_EVENTS) / this.placement));
  }

  get redis(): RedisClient {
    return this.#redis;
  }

  /** A new message id, naming the partition the message will live in (random among 1…N). */
  newMessageId(now = Date.now()): string {
    const partition = this.placement > 1 ? 1 + Math.floor(Math.random() * this.placement) : 0;
    return newMessageId(now, partition);
  }

  /** The keys of a message's partition (from its id). */
  keysOf(messageId: string): PartitionKeys {
    return this.partitionKeys(partitionOfId(messageId));
  }

  partitionKeys(partition: number): PartitionKeys {
    return partition === 0 ? this.keys : partitionKeys(this.#options.prefix, partition);
  }

  /** Every partition that may hold mail, as last read: 0, and 1…the highest any spool used. */
  partitions(): number[] {
    return Array.from({ length: this.#highest + 1 }, (_, i) => i);
  }

  /**
   * Reads (and, placing in more partitions than it says, raises) the layout in Redis, so no
   * partition an edge ever placed mail in is left unread after `redis.partitions` is lowered.
   * At most once per LAYOUT_TTL_MS unless `force`.
   */
  async refreshLayout(force = false): Promise<number[]> {
    if (!force && Date.now() - this.#layoutReadAt < LAYOUT_TTL_MS) return this.partitions();
    const seen = await scripted(this.#redis).moatLayout(this.keys.layout, String(this.placement));
    this.#highest = Math.max(this.placement > 1 ? this.placement : 0, seen > 1 ? seen : 0);
    this.#layoutReadAt = Date.now();
    this.#layoutRecorded = true;
    return this.partitions();
  }

  /** The BullMQ queue of a route in a partition (created on first use; shares this spool's connection). */
  queue(routeId: string, partition = 0): Queue<DeliveryJob> {
    const cacheKey = `${partition}\u0000${routeId}`;
    let queue = this.#queues.get(cacheKey);
    if (queue === undefined) {
      const keys = this.partitionKeys(partition);
      queue = new Queue<DeliveryJob>(keys.queueName(routeId), {
        connection: this.#redis,
        prefix: keys.root,
        skipWaitingForReady: true,
        // BullMQ writes every job's added/waiting/active/completed to an events stream that
        // Moat never reads (it has its own tracking stream). At BullMQ's cap of 10,000 a stream
        // held 361 KB of Redis (measured, add events alone), at 100 it holds 4.8 KB; and there is
        // a queue per route and partition (16 partitions × 20 routes: 115 MB against 1.5 MB).
        streams: { events: { maxLen: BULLMQ_EVENTS_MAX } },
      });
      queue.on('error', () => {});
      this.#queues.set(cacheKey, queue);
    }
    return queue;
  }

  /** The queue that holds a job (its partition is its message's, from the job id). */
  queueOfJob(routeId: string, jobId: string): Queue<DeliveryJob> {
    return this.queue(routeId, partitionOfId(messageIdOfJob(jobId)));
  }

  /**
   * Make a message durable: body, metadata and a tracking event in one transaction, then one
   * job per route, all in the message's partition. Resolves only when all of it is in Redis
   * (and replicated, with ack: replicated); rejects with SpoolUnavailableError past the
   * deadline. Only then may the edge answer 250.
   */
  async enqueue(input: EnqueueInput): Promise<MessageMeta> {
    const id = input.id ?? this.newMessageId();
    const receivedAt = Date.now();
    const kind = input.kind ?? 'message';
    const routes = input.routes.map((r, i) => ({
      routeId: r.routeId,
      jobId: `${id}-${i + 1}`,
      recipients: [...r.recipients],
    }));
    const meta: MessageMeta = {
      id,
      sender: input.sender,
      size: input.body.length,
      receivedAt,
      client: input.client,
      routes,
      kind,
    };
    return withDeadline(this.#options.timeout, 'queueing the message', this.#write(meta, input)).then(
      () => meta,
    );
  }

  async #write(meta: MessageMeta, input: EnqueueInput): Promise<void> {
    const k = this.keysOf(meta.id);
    const received: TrackingEvent = {
      type: 'received',
      messageId: meta.id,
      time: meta.receivedAt,
      sender: meta.sender,
      recipients: meta.routes.flatMap((r) => r.recipients),
      size: meta.size,
      client: meta.client.ip,
      ...(this.#options.node ? { node: this.#options.node } : {}),
      ...(input.filters ? { filters: input.filters } : {}),
    };
    // The body, the write and the job writes go out together, without waiting for each other:
    // Redis takes them in one read, in this order, so with appendfsync always they share one
    // fsync. Any part failing fails the whole enqueue (451): a job without a body is dropped by
    // the worker, a committed message without a job is removed by the orphan sweeper, a body
    // without its message expires; nothing acknowledged is lost.
    const body = this.#redis.set(k.body(meta.id), input.body, 'PX', BODY_CLAIM_MS);
    const committed = scripted(this.#redis).moatWrite(
      k.body(meta.id),
      k.meta(meta.id),
      k.jobs(meta.id),
      k.messages,
      k.events,
      JSON.stringify(meta),
      String(meta.receivedAt),
      meta.id,
      this.#maxEvents,
      String(meta.routes.length),
      ...meta.routes.map((r) => r.jobId),
      ...eventFields(received),
    );
    // A route seen for the first time by this process goes into the registry (the control
    // slot), so workers and the admin API find its queues.
    const registered = meta.routes
      .filter((r) => !this.#knownRoutes.has(r.routeId))
      .map((r) =>
        this.#redis
          .hsetnx(
            this.keys.routes,
            r.routeId,
            JSON.stringify({ queue: k.queueName(r.routeId), since: meta.receivedAt }),
          )
          .then(() => this.#knownRoutes.add(r.routeId)),
      );
    const jobs = meta.routes.map((r) =>
      this.queue(r.routeId, k.partition).add(
        'deliver',
        {
          messageId: meta.id,
          routeId: r.routeId,
          sender: meta.sender,
          recipients: [...r.recipients],
          queuedAt: meta.receivedAt,
          attempts: 0,
          kind: meta.kind,
          ...(input.envid ? { envid: input.envid } : {}),
          ...(input.crlf ? { crlf: true } : {}),
        },
        { ...JOB_OPTIONS, jobId: r.jobId },
      ),
    );
    // Until the layout counts this spool's partitions, each message also records it: a worker
    // configured with fewer partitions must still find this one.
    const layout = this.#layoutRecorded ? null : this.refreshLayout(true);
    await Promise.all([body, committed, ...registered, ...jobs, layout]);
    if (this.#options.ack === 'replicated') await this.#replicated(k);
  }

  /** WAIT until `replicas` replicas of the primary that holds the partition have the writes. */
  async #replicated(k: PartitionKeys): Promise<void> {
    const watch = this.#options.replicaWatch;
    if (watch?.missing) {
      this.#options.onLocalAck?.();
      return;
    }
    const primary = primaryForSlot(this.#redis, slotOf(k.root));
    if (primary === null) throw new SpoolUnavailableError('the cluster does not know who holds the message');
    const acked = Number(await primary.call('WAIT', this.#options.replicas, this.#options.timeout));
    if (acked < this.#options.replicas) {
      // A replica that went away just now: with `local`, look again and accept if it is gone.
      const online = watch ? await watch.check() : null;
      if (online !== null && online < this.#options.replicas) {
        this.#options.onLocalAck?.();
        return;
      }
      throw new SpoolUnavailableError(
        `only ${acked} of ${this.#options.replicas} replicas confirmed the write`,
      );
    }
  }

  /** The stored message, or null when it is gone. */
  readBody(messageId: string): Promise<Buffer | null> {
    return this.#redis.getBuffer(this.keysOf(messageId).body(messageId));
  }

  async readMeta(messageId: string): Promise<MessageMeta | null> {
    const json = await this.#redis.hget(this.keysOf(messageId).meta(messageId), 'json');
    return json === null ? null : (JSON.parse(json) as MessageMeta);
  }

  /** A job is done with the body (delivered, bounced or deleted). Idempotent. True when the message was deleted. */
  async release(messageId: string, jobId: string): Promise<boolean> {
    const k = this.keysOf(messageId);
    const deleted = await scripted(this.#redis).moatRelease(
      k.jobs(messageId),
      k.body(messageId),
      k.meta(messageId),
      k.messages,
      jobId,
      messageId,
    );
    return deleted === 1;
  }

  /** Append a tracking event to its message's partition (best effort for the caller: errors propagate). */
  async track(event: TrackingEvent): Promise<void> {
    const fields = eventFields({ ...event, ...(this.#options.node ? { node: this.#options.node } : {}) });
    await this.#redis.xadd(
      this.keysOf(event.messageId).events,
      'MAXLEN',
      '~',
      this.#maxEvents,
      '*',
      ...fields,
    );
  }

  /** Every route that ever had mail, with its queue name. */
  async knownRoutes(): Promise<string[]> {
    return Object.keys(await this.#redis.hgetall(this.keys.routes));
  }

  async close(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((q) => q.close()));
    this.#queues.clear();
  }
}

/** "0MB3K2L1ABCDEF12345p7-2" → "0MB3K2L1ABCDEF12345p7". */
export function messageIdOfJob(jobId: string): string {
  const dash = jobId.lastIndexOf('-');
  return dash < 0 ? jobId : jobId.slice(0, dash);
}

/** A spool with the settings of a Moat config (the redis section), on a given connection. */
export function spoolFromConfig(
  config: {
    readonly redis: {
      prefix: string;
      partitions?: number;
      timeout: number;
      ack: 'local' | 'replicated';
      replicas: number;
    };
  },
  redis: RedisClient,
  node: string,
  extra: Pick<SpoolOptions, 'replicaWatch' | 'onLocalAck'> = {},
): Spool {
  const { prefix, partitions, timeout, ack, replicas } = config.redis;
  return new Spool({ redis, prefix, partitions: partitions ?? 1, timeout, ack, replicas, node, ...extra });
}
