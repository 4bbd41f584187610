import { createHash } from 'node:crypto';

/**
 * Every Redis key Moat uses, in one place. All keys share the hash tag `{prefix}`, so on a
 * Redis Cluster they live in one slot and multi-key scripts and transactions stay legal.
 * BullMQ's own keys are `{prefix}:<queue>:…` (its `prefix` option is the same tag).
 */

export interface Keys {
  /** The hash-tagged prefix, also BullMQ's `prefix` option: "{moat}". */
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
  /** Hash: route id → JSON {queue, since}: every route that ever had mail. */
  readonly routes: string;
  /** Sorted set: node id → last heartbeat (ms). */
  readonly nodes: string;
  /** Hash: metric series (JSON `[name, labels]`) → value, summed across every node. */
  readonly metrics: string;
  /**
   * BullMQ's sorted set of a queue's delayed jobs (its documented layout `prefix:queue:delayed`);
   * the score is `due time (ms) * DELAYED_SCORE_SCALE + sequence`.
   */
  delayed(routeId: string): string;
  /** String with TTL: one node's heartbeat details (JSON). */
  node(nodeId: string): string;
  /** The BullMQ queue name of a route (queue names may not contain ":"). */
  queueName(routeId: string): string;
  /** The route id of a queue name, or null if it is not one of ours. */
  routeIdOf(queueName: string): string | null;
  /** BullMQ's hash for one job (its documented key layout), for existence checks. */
  job(queueName: string, jobId: string): string;
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

export function keysFor(prefix: string): Keys {
  const root = `{${prefix}}`;
  return {
    root,
    body: (id) => `${root}:m:${id}:body`,
    meta: (id) => `${root}:m:${id}:meta`,
    jobs: (id) => `${root}:m:${id}:jobs`,
    messages: `${root}:messages`,
    events: `${root}:events`,
    routes: `${root}:routes`,
    nodes: `${root}:nodes`,
    node: (id) => `${root}:node:${id}`,
    metrics: `${root}:metrics`,
    delayed: (routeId) => `${root}:${queueNameOf(routeId)}:delayed`,
    queueName: queueNameOf,
    routeIdOf: (queueName) =>
      queueName.startsWith(QUEUE_PREFIX)
        ? Buffer.from(queueName.slice(QUEUE_PREFIX.length), 'base64url').toString('utf8')
        : null,
    job: (queueName, jobId) => `${root}:${queueName}:${jobId}`,
    rateLimit: (limit) => `${root}:rl:${limit}`,
    greylist: (triplet) => `${root}:grey:${createHash('sha256').update(triplet).digest('base64url')}`,
    recipient: (address) => `${root}:rcpt:${recipientKey(address)}`,
    recipientPattern: (domain) =>
      `${root}:rcpt:${domain === null ? '*' : `${globEscape(domain.toLowerCase())}:*`}`,
  };
}
