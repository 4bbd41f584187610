import { createHash } from 'node:crypto';
import { MAX_PARTITIONS } from '@moat/policy';
import calculateSlot from 'cluster-key-slot';

/**
 * Every Redis key Moat uses, in one place.
 *
 * Partitions (`redis.partitions`): a message lives in one partition, and every key of it (body,
 * meta, job set, the BullMQ queue of each of its routes, the tracking stream it writes to)
 * carries that partition's hash tag, so on a Redis Cluster each multi-key script stays in one
 * slot and a message never spans shards.
 * - Partition 0 has the tag `{prefix}`: the only partition of a single Redis (partitions: 1,
 *   today's layout), the one that older messages drain from after a move to more partitions,
 *   and the control slot: node heartbeats, the metrics hash, the routes registry, the layout.
 * - Partitions 1…N (partitions: N > 1) each have a tag of their own, `{prefix:p<i>}` or, when
 *   that tag's slot is far from where partition i should sit, `{prefix:p<i>.<n>}`: the tags
 *   are spread over the slot space by a bit-reversal sequence, so any first N of them, and so
 *   any N, split evenly over shards that own even slot ranges.
 * Single-key state that is written per message (rate limits, greylisting, the recipient
 * cache) has no hash tag when partitioned: Redis Cluster spreads it by its own name.
 * BullMQ's own keys are `<tag>:<queue>:…` (its `prefix` option is the partition's tag).
 */

/** The keys of one partition: a message and the queues and stream it is in. */
export interface PartitionKeys {
  readonly partition: number;
  /** The hash-tagged prefix, also BullMQ's `prefix` option: "{moat}", "{moat:p7}". */
  readonly root: string;
  /** The raw message (with Moat's Received: header), written once. */
  body(messageId: string): string;
  /** Hash: envelope and client facts of a message. */
  meta(messageId: string): string;
  /** Set: ids of the jobs that still need the body; the body goes when it empties. */
  jobs(messageId: string): string;
  /** Sorted set: message id → time received (ms), for listing and the orphan sweeper. */
  readonly messages: string;
  /** Stream: tracking events (received, deferred, delivered, bounced, …), capped. */
  readonly events: string;
  /**
   * BullMQ's sorted set of a queue's delayed jobs (its documented layout `prefix:queue:delayed`);
   * the score is `due time (ms) * DELAYED_SCORE_SCALE + sequence`.
   */
  delayed(routeId: string): string;
  /** The BullMQ queue name of a route (queue names may not contain ":"); the same in every partition. */
  queueName(routeId: string): string;
  /** The route id of a queue name, or null if it is not one of ours. */
  routeIdOf(queueName: string): string | null;
  /** BullMQ's hash for one job (its documented key layout), for existence checks. */
  job(queueName: string, jobId: string): string;
}

/** Partition 0's keys and the control keys, which live in partition 0's slot. */
export interface Keys extends PartitionKeys {
  /** Hash: route id → JSON {queue, since}: every route that ever had mail. */
  readonly routes: string;
  /** Sorted set: node id → last heartbeat (ms). */
  readonly nodes: string;
  /** Hash: metric series (JSON `[name, labels]`) → value, summed across every node. */
  readonly metrics: string;
  /** Hash: `partitions` → the most partitions any edge has placed mail in (so none is left unread). */
  readonly layout: string;
  /** String with TTL: one node's heartbeat details (JSON). */
  node(nodeId: string): string;
  /** rate-limiter-flexible's key prefix for one limit (it appends ":<key>"). */
  rateLimit(limit: string): string;
  /** String with TTL: a greylisting triplet's first try (ms) or "pass". */
  greylist(triplet: string): string;
  /** String with TTL: "known" or "unknown", a recipient of an inbound domain (lower case). */
  recipient(address: string): string;
  /** The SCAN pattern of the cached recipients of a domain (lower case), or of all. */
  recipientPattern(domain: string | null): string;
}

const QUEUE_PREFIX = 'route.';
const SLOTS = 16_384;
/** How close (in slots) a partition's tag must be to where it should sit. */
const SLOT_WINDOW = 16;

export { MAX_PARTITIONS };

/** "Bob@Example.COM" → "example.com:bob": by domain first, so one domain is one SCAN pattern. */
function recipientKey(address: string): string {
  const at = address.lastIndexOf('@');
  return `${address.slice(at + 1).toLowerCase()}:${address.slice(0, at).toLowerCase()}`;
}

/** A domain as a literal inside a Redis glob pattern. */
const globEscape = (text: string) => text.replace(/[*?[\]\\]/g, '\\$&');

/** BullMQ's delayed-set score scale: due time (ms) × 4096. */
export const DELAYED_SCORE_SCALE = 0x1000;

function queueNameOf(routeId: string): string {
  return `${QUEUE_PREFIX}${Buffer.from(routeId, 'utf8').toString('base64url')}`;
}

/** i-th term of the base-2 van der Corput sequence over [0, 1): 0, ½, ¼, ¾, ⅛, … */
function bitReversed(i: number): number {
  let value = 0;
  let unit = 0.5;
  for (let n = i; n > 0; n >>= 1, unit /= 2) if (n & 1) value += unit;
  return value;
}

const tagCache = new Map<string, string>();

/**
 * The hash tag (without braces) of partition `partition` (≥ 1): `prefix:p<i>`, or the first
 * `prefix:p<i>.<n>` whose slot lies within SLOT_WINDOW after the partition's place
 * (bitReversed(i - 1) of the slot space). Depends on the prefix and the partition only, never
 * on how many partitions there are, so raising `redis.partitions` moves nothing.
 */
export function partitionTag(prefix: string, partition: number): string {
  const cacheKey = `${prefix}\u0000${partition}`;
  const cached = tagCache.get(cacheKey);
  if (cached !== undefined) return cached;
  const target = Math.floor(bitReversed(partition - 1) * SLOTS);
  const near = (tag: string) => (calculateSlot(tag) - target + SLOTS) % SLOTS < SLOT_WINDOW;
  let tag = `${prefix}:p${partition}`;
  for (let n = 1; !near(tag); n++) tag = `${prefix}:p${partition}.${n}`;
  tagCache.set(cacheKey, tag);
  return tag;
}

/** The Redis Cluster slot of a key (its hash tag's, when it has one). */
export const slotOf = (key: string): number => calculateSlot(key);

function partitionKeysWith(root: string, partition: number): PartitionKeys {
  return {
    partition,
    root,
    body: (id) => `${root}:m:${id}:body`,
    meta: (id) => `${root}:m:${id}:meta`,
    jobs: (id) => `${root}:m:${id}:jobs`,
    messages: `${root}:messages`,
    events: `${root}:events`,
    delayed: (routeId) => `${root}:${queueNameOf(routeId)}:delayed`,
    queueName: queueNameOf,
    routeIdOf: (queueName) =>
      queueName.startsWith(QUEUE_PREFIX)
        ? Buffer.from(queueName.slice(QUEUE_PREFIX.length), 'base64url').toString('utf8')
        : null,
    job: (queueName, jobId) => `${root}:${queueName}:${jobId}`,
  };
}

const partitionKeyCache = new Map<string, PartitionKeys>();

/** The keys of one partition (0: the `{prefix}` partition). */
export function partitionKeys(prefix: string, partition: number): PartitionKeys {
  if (partition === 0) return keysFor(prefix);
  const cacheKey = `${prefix}\u0000${partition}`;
  let keys = partitionKeyCache.get(cacheKey);
  if (keys === undefined) {
    keys = partitionKeysWith(`{${partitionTag(prefix, partition)}}`, partition);
    partitionKeyCache.set(cacheKey, keys);
  }
  return keys;
}

/**
 * Partition 0's keys and the control keys. `partitions` (redis.partitions) only changes the
 * per-message single-key state: with more than one, it has no hash tag.
 */
export function keysFor(prefix: string, partitions = 1): Keys {
  const root = `{${prefix}}`;
  const loose = partitions > 1 ? prefix : root;
  return {
    ...partitionKeysWith(root, 0),
    routes: `${root}:routes`,
    nodes: `${root}:nodes`,
    node: (id) => `${root}:node:${id}`,
    metrics: `${root}:metrics`,
    layout: `${root}:layout`,
    rateLimit: (limit) => `${loose}:rl:${limit}`,
    greylist: (triplet) => `${loose}:grey:${createHash('sha256').update(triplet).digest('base64url')}`,
    recipient: (address) => `${loose}:rcpt:${recipientKey(address)}`,
    recipientPattern: (domain) =>
      `${loose}:rcpt:${domain === null ? '*' : `${globEscape(domain.toLowerCase())}:*`}`,
  };
}
