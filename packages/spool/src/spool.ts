/**
 * The producer side of the queue: make a message durable (body once, one job per route),
 * read it back, release it when its last job ends, and record tracking events.
 */
import { type JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { SpoolUnavailableError, withDeadline } from './errors.js';
import { newMessageId } from './ids.js';
import { type Keys, keysFor } from './keys.js';
import { DEFAULT_MAX_EVENTS, eventFields } from './tracking.js';
import type { ClientFacts, DeliveryJob, FilterVerdictRecord, MessageMeta, TrackingEvent } from './types.js';

export interface SpoolOptions {
  /** A producer connection (see connection.ts). */
  readonly redis: Redis;
  readonly prefix: string;
  /** Deadline for making a message durable (ms). */
  readonly timeout: number;
  /** 'replicated': WAIT for `replicas` replicas before reporting success. */
  readonly ack: 'local' | 'replicated';
  readonly replicas: number;
  /** Most tracking events kept (the stream is trimmed approximately). */
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
// message): metadata, the set of job ids that hold the body, the index by time, routes seen for
// the first time, and the "received" tracking event. The body itself is not an argument: a
// plain SET sent just before it on the same connection writes it with a short expiry (no copy
// into Lua, 2 ms of Redis CPU per MB), and this script makes it permanent. A body whose script
// never ran expires by itself; the script refuses to commit a message whose body is missing.
// KEYS: body, meta, jobs, messages, routes, events
// ARGV: meta JSON, receivedAt, id, maxEvents, n, jobId×n, m, (routeId, routeJSON)×m, event fields…
const WRITE_SCRIPT = `
if redis.call('PERSIST', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('ERR moat: the message body is missing')
end
redis.call('HSET', KEYS[2], 'json', ARGV[1])
local n = tonumber(ARGV[5])
local i = 6
for j = 1, n do
  redis.call('SADD', KEYS[3], ARGV[i])
  i = i + 1
end
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[3])
local m = tonumber(ARGV[i])
i = i + 1
for j = 1, m do
  redis.call('HSETNX', KEYS[5], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[4], '*', unpack(ARGV, i))
return 1
`;

/** How long a body written before its message script stays without it (ms). */
const BODY_CLAIM_MS = 10 * 60_000;

type ScriptedRedis = Redis & {
  moatWrite(...args: (string | Buffer)[]): Promise<number>;
  moatRelease(...args: string[]): Promise<number>;
};

/** The connection with Moat's scripts defined on it (sent as EVALSHA: Redis compiles each once). */
function scripted(redis: Redis): ScriptedRedis {
  if (!('moatWrite' in redis)) {
    redis.defineCommand('moatWrite', { numberOfKeys: 6, lua: WRITE_SCRIPT });
    redis.defineCommand('moatRelease', { numberOfKeys: 4, lua: RELEASE_SCRIPT });
  }
  return redis as ScriptedRedis;
}

export class Spool {
  readonly keys: Keys;
  readonly #redis: Redis;
  readonly #options: SpoolOptions;
  readonly #queues = new Map<string, Queue<DeliveryJob>>();
  readonly #knownRoutes = new Set<string>();

  constructor(options: SpoolOptions) {
    this.#options = options;
    this.#redis = options.redis;
    this.keys = keysFor(options.prefix);
  }

  get redis(): Redis {
    return this.#redis;
  }

  /** The BullMQ queue of a route (created on first use; shares this spool's connection). */
  queue(routeId: string): Queue<DeliveryJob> {
    let queue = this.#queues.get(routeId);
    if (queue === undefined) {
      queue = new Queue<DeliveryJob>(this.keys.queueName(routeId), {
        connection: this.#redis,
        prefix: this.keys.root,
        skipWaitingForReady: true,
      });
      queue.on('error', () => {});
      this.#queues.set(routeId, queue);
    }
    return queue;
  }

  /**
   * Make a message durable: body, metadata and a tracking event in one transaction, then one
   * job per route. Resolves only when all of it is in Redis (and replicated, with ack:
   * replicated); rejects with SpoolUnavailableError past the deadline. Only then may the edge
   * answer 250.
   */
  async enqueue(input: EnqueueInput): Promise<MessageMeta> {
    const id = input.id ?? newMessageId();
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
    const k = this.keys;
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
    const newRoutes = meta.routes.filter((r) => !this.#knownRoutes.has(r.routeId));
    // The body, the write and the job writes go out together, without waiting for each other:
    // Redis takes them in one read, in this order, so with appendfsync always they share one
    // fsync. Any part failing fails the whole enqueue (451): a job without a body is dropped by
    // the worker, a committed message without a job is removed by the orphan sweeper, a body
    // without its message expires; nothing acknowledged is lost.
    const body = this.#redis.set(k.body(meta.id), input.body, 'PX', BODY_CLAIM_MS);
    const committed = scripted(this.#redis)
      .moatWrite(
        k.body(meta.id),
        k.meta(meta.id),
        k.jobs(meta.id),
        k.messages,
        k.routes,
        k.events,
        JSON.stringify(meta),
        String(meta.receivedAt),
        meta.id,
        String(this.#options.maxEvents ?? DEFAULT_MAX_EVENTS),
        String(meta.routes.length),
        ...meta.routes.map((r) => r.jobId),
        String(newRoutes.length),
        ...newRoutes.flatMap((r) => [
          r.routeId,
          JSON.stringify({ queue: k.queueName(r.routeId), since: meta.receivedAt }),
        ]),
        ...eventFields(received),
      )
      .then(() => {
        for (const r of newRoutes) this.#knownRoutes.add(r.routeId);
      });
    const jobs = meta.routes.map((r) =>
      this.queue(r.routeId).add(
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
        },
        { ...JOB_OPTIONS, jobId: r.jobId },
      ),
    );
    await Promise.all([body, committed, ...jobs]);
    if (this.#options.ack === 'replicated') {
      const watch = this.#options.replicaWatch;
      if (watch?.missing) {
        this.#options.onLocalAck?.();
        return;
      }
      const acked = Number(await this.#redis.call('WAIT', this.#options.replicas, this.#options.timeout));
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
  }

  /** The stored message, or null when it is gone. */
  readBody(messageId: string): Promise<Buffer | null> {
    return this.#redis.getBuffer(this.keys.body(messageId));
  }

  async readMeta(messageId: string): Promise<MessageMeta | null> {
    const json = await this.#redis.hget(this.keys.meta(messageId), 'json');
    return json === null ? null : (JSON.parse(json) as MessageMeta);
  }

  /** A job is done with the body (delivered, bounced or deleted). Idempotent. True when the message was deleted. */
  async release(messageId: string, jobId: string): Promise<boolean> {
    const k = this.keys;
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

  /** Append a tracking event (best effort for the caller: errors propagate). */
  async track(event: TrackingEvent): Promise<void> {
    const fields = eventFields({ ...event, ...(this.#options.node ? { node: this.#options.node } : {}) });
    const max = String(this.#options.maxEvents ?? DEFAULT_MAX_EVENTS);
    await this.#redis.xadd(this.keys.events, 'MAXLEN', '~', max, '*', ...fields);
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

/** A spool with the settings of a Moat config (the redis section), on a given connection. */
export function spoolFromConfig(
  config: {
    readonly redis: { prefix: string; timeout: number; ack: 'local' | 'replicated'; replicas: number };
  },
  redis: Redis,
  node: string,
  extra: Pick<SpoolOptions, 'replicaWatch' | 'onLocalAck'> = {},
): Spool {
  const { prefix, timeout, ack, replicas } = config.redis;
  return new Spool({ redis, prefix, timeout, ack, replicas, node, ...extra });
}
