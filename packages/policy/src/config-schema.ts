/**
 * The config file's schema: one source of truth for every key, its default and its checks.
 * Every key is documented in docs/configuration.md.
 */
import { z } from 'zod';
import { isLoopback } from './cidr.js';
import { filtersSchema } from './config-filters.js';
import { dnsblSchema, greylistingSchema, limitsSchema, recipientsSchema } from './config-sessions.js';
import {
  cidr,
  duration,
  hostList,
  hostname,
  listenAddress,
  port,
  routeConfig,
  size,
  tlsMode,
} from './config-types.js';
import { parseDomainPattern } from './domains.js';
import { findInbound, indexInbound, routeConflicts } from './relay.js';
import { parseNextHop } from './routes.js';

const positiveInt = z.number().int('must be a whole number').min(1, 'must be at least 1');

/** The most queue partitions (redis.partitions); the spool's limit too. */
export const MAX_PARTITIONS = 1024;

/** A partition number or a range "a-b" (delivery.partitions). */
const partitionRange = z.union(
  [
    z.number().int('must be a whole number').min(0, 'must be at least 0').max(MAX_PARTITIONS),
    z
      .string()
      .regex(/^\d{1,4}-\d{1,4}$/, 'must be a partition number or a range "a-b"')
      .refine((r) => {
        const [a, b] = r.split('-').map(Number);
        return (a ?? 0) <= (b ?? 0) && (b ?? 0) <= MAX_PARTITIONS;
      }, `must be a range "a-b" with a <= b <= ${MAX_PARTITIONS}`),
  ],
  { error: 'must be a partition number or a range "a-b"' },
);

const redis = z.preprocess(
  (input) => (input === null || typeof input === 'string' ? { url: input } : input),
  z.strictObject({
    /** null: `moat start` runs a private redis-server under the data directory. */
    url: z
      .string()
      .regex(
        /^((rediss?|unix):\/\/|redis-sentinel:\/\/[^/]+\/[^/?]+(\?db=\d+)?$|redis-cluster:\/\/([^@/]*@)?[^/?@,]+:\d+(,[^/?@,]+:\d+)*\/?(\?tls=1)?$)/,
        'must be a redis://, rediss://, unix://, redis-sentinel://host:port[,host:port]/name or redis-cluster://host:port[,host:port] URL',
      )
      .nullable()
      .prefault(null),
    /** Key prefix; wrapped in hash tags ({moat}, {moat:p7}): see packages/spool/src/keys.ts. */
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1-32 letters, digits, "_" or "-"')
      .prefault('moat'),
    /**
     * Queue partitions: 1 keeps every message in one hash slot (a single Redis); N spreads new
     * mail over N partitions, each its own slot, so a Redis Cluster spreads it over its shards.
     */
    partitions: positiveInt.max(MAX_PARTITIONS, `must be at most ${MAX_PARTITIONS}`).prefault(1),
    /** local: answer 250 once the primary has the data; replicated: also wait for a replica (WAIT). */
    ack: z.enum(['local', 'replicated']).prefault('local'),
    replicas: positiveInt.prefault(1),
    /**
     * With ack replicated, while fewer replicas are online than `replicas` (after a failover
     * left the new primary alone): refuse (451 until they are back) or local (acknowledge
     * with the primary's durability, and say so).
     */
    whenReplicasMissing: z.enum(['refuse', 'local'], { error: 'must be refuse or local' }).prefault('refuse'),
    /** Deadline for making a message durable before the edge answers 451. */
    timeout: duration.prefault('5s'),
    /** Back-pressure: refuse new mail (452) when used memory passes this share of maxmemory. */
    maxMemoryUsage: z.number().gt(0, 'must be > 0').max(1, 'must be <= 1').prefault(0.9),
  }),
);

const user = z.strictObject({
  name: z.string().min(1, 'must not be empty'),
  password: z
    .string()
    .regex(
      /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/,
      'must be a hash printed by `moat user hash`',
    ),
});

const smtp = z
  .strictObject({
    listen: z.array(listenAddress).min(1, 'needs at least one address').prefault(['0.0.0.0:25']),
    /** Greeting text after "220 <hostname> ESMTP". */
    banner: z.string().prefault('Moat'),
    maxMessageSize: size.prefault('35MB'),
    maxRecipients: positiveInt.prefault(100),
    maxConnections: positiveInt.prefault(1000),
    maxConnectionsPerClient: positiveInt.prefault(50),
    /** More Received: headers than this is a mail loop (554 5.4.6). */
    maxReceivedHeaders: positiveInt.prefault(30),
    /** Failed commands before the session is closed. */
    maxErrors: positiveInt.prefault(10),
    idleTimeout: duration.prefault('5m'),
    dataTimeout: duration.prefault('10m'),
    /** Pause before the greeting to catch clients that talk first (0 = off). */
    greetingDelay: duration.prefault('0s'),
    /** null: a self-signed certificate is made at start so STARTTLS still works. */
    tls: z
      .strictObject({ key: z.string().min(1), cert: z.string().min(1) })
      .nullable()
      .prefault(null),
    /** Allow AUTH without TLS (never do this on the Internet). */
    allowInsecureAuth: z.boolean().prefault(false),
    /** Expect a PROXY protocol v1/v2 header from a load balancer on every connection. */
    proxyProtocol: z.boolean().prefault(false),
    /** The load balancers (CIDRs) whose PROXY headers are believed; everyone else is refused. */
    trustedProxies: z.array(cidr).prefault([]),
    /** Look up the client's host name for Received: (only through dns.servers). */
    reverseDns: z.boolean().prefault(false),
    /** Refuse a HELO/EHLO name that is neither a host name nor an address literal (logged either way). */
    rejectInvalidHelo: z.boolean().prefault(false),
    users: z.array(user).prefault([]),
  })
  .superRefine((section, ctx) => {
    if (section.proxyProtocol && section.trustedProxies.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['trustedProxies'],
        message:
          'smtp.proxyProtocol is on, so name the load balancers whose PROXY headers may be believed (anyone else could claim to be a trusted client)',
      });
    }
  });

const inbound = z
  .strictObject({
    /** Our own domains → where their mail goes. "*.example.com" covers subdomains only. */
    domains: z.record(z.string(), routeConfig).prefault({}),
  })
  .superRefine((section, ctx) => {
    const seen = new Map<string, string>();
    for (const key of Object.keys(section.domains)) {
      const pattern = parseDomainPattern(key);
      if (pattern === null) {
        ctx.addIssue({
          code: 'custom',
          path: ['domains', key],
          message: 'is not a domain name (write example.com, or *.example.com for its subdomains)',
        });
        continue;
      }
      const earlier = seen.get(pattern.text);
      if (earlier !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['domains', key],
          message: `is listed twice (also as "${earlier}")`,
        });
      }
      seen.set(pattern.text, key);
    }
  });

const outbound = z.strictObject({
  /** Client networks that may relay to any domain. */
  clients: z.array(cidr).prefault([]),
  /** SMTP AUTH users may relay to any domain. */
  authenticated: z.boolean().prefault(true),
  /** Upstream smart host for all outbound mail; null = direct delivery by MX lookup. */
  smarthost: routeConfig.nullable().prefault(null),
});

const delivery = z.strictObject({
  /** Delivery slots per route, in each worker process. */
  concurrency: positiveInt.prefault(20),
  /** At most this many simultaneous connections to one destination host, per worker. */
  maxConnectionsPerHost: positiveInt.prefault(20),
  /** Messages sent over one connection before it is closed. */
  maxMessagesPerConnection: positiveInt.prefault(100),
  /** Delay before each retry; the last one repeats. */
  retry: z.array(duration).min(1).prefault(['5m', '10m', '20m', '40m', '1h20m', '2h40m', '4h']),
  /** How long a message may stay queued before its pending recipients bounce. */
  lifetime: duration.prefault('5d'),
  /** Send a delay warning (DSN, action delayed) after this long; null = never. */
  delayWarning: duration.nullable().prefault('4h'),
  /** Port for MX-resolved destinations (25; tests use an unprivileged one). */
  mxPort: port.prefault(25),
  connectTimeout: duration.prefault('30s'),
  commandTimeout: duration.prefault('5m'),
  /** STARTTLS policy for MX delivery. */
  tls: tlsMode.prefault('opportunistic'),
  /** Verify peer certificates when TLS is used. */
  verifyCertificates: z.boolean().prefault(false),
  /** Send delivery status notifications to the sender. */
  bounces: z.boolean().prefault(true),
  /** How long a job stays locked to a worker without renewal: a killed worker's jobs return after this. */
  lockDuration: duration.prefault('30s'),
  /** How often workers look for jobs whose lock expired (stalled jobs) and put them back. */
  stalledInterval: duration.prefault('30s'),
  /**
   * The queue partitions this worker process delivers from (numbers and "a-b" ranges); null =
   * all of them (0 and 1…redis.partitions). Some worker must take partition 0: older mail and
   * bounces of older mail live there.
   */
  partitions: z.array(partitionRange).min(1, 'must name at least one partition').nullable().prefault(null),
  /**
   * When one process runs both the edge and the workers (`moat start`): deliver from a thread of
   * its own, so the two use two cores. auto = when the process may use more than one CPU (its
   * CPU affinity, capped by a container's cgroup CPU quota).
   */
  thread: z
    .union([z.boolean(), z.literal('auto')], { error: 'must be true, false or "auto"' })
    .prefault('auto'),
  /**
   * When one process runs both the edge and the workers (`moat start`): the bodies its edge has
   * just made durable are also handed to its delivery in memory, up to this many bytes at once,
   * so that delivering them does not read them back from Redis. 0 = off.
   */
  bodyCache: size.prefault('256MB'),
});

const dns = z.strictObject({
  /** Resolvers as "ip" or "ip:port"; empty = the system's resolvers. */
  servers: z
    .array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[0-9.]+)(:\d{1,5})?$/, 'must be "ip" or "ip:port"'))
    .prefault([]),
  timeout: duration.prefault('5s'),
});

const adminToken = z.preprocess(
  (input) => (typeof input === 'string' ? { token: input } : input),
  z.strictObject({
    name: z.string().prefault(''),
    token: z.string().min(16, 'must be at least 16 characters (is its environment variable set?)'),
    /** read: GET routes only; admin: everything. */
    scope: z.enum(['read', 'admin']).prefault('admin'),
  }),
);

const admin = z
  .strictObject({
    /** null = no admin API. */
    listen: listenAddress.nullable().prefault('127.0.0.1:8025'),
    tokens: z.array(adminToken).prefault([]),
    tls: z
      .strictObject({ key: z.string().min(1), cert: z.string().min(1) })
      .nullable()
      .prefault(null),
    /** Allow a non-loopback listener without TLS. */
    allowInsecure: z.boolean().prefault(false),
  })
  .superRefine((section, ctx) => {
    const listen = section.listen;
    if (listen === null || isLoopback(listen.host)) return;
    if (section.tokens.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['tokens'],
        message: `the admin API listens on ${listen.host}, which is not loopback, so it needs at least one token`,
      });
    }
    if (section.tls === null && !section.allowInsecure) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls'],
        message: `the admin API listens on ${listen.host}, which is not loopback: configure admin.tls, or set admin.allowInsecure: true`,
      });
    }
  });

const log = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).prefault('info'),
});

export const configSchema = z
  .strictObject({
    /** The name Moat greets with and writes in Received: headers. */
    hostname: hostname,
    /** Where `moat start` keeps its private Redis and state when redis.url is null. */
    dataDir: z.string().min(1).prefault('.moat'),
    redis: redis.prefault({ url: null }),
    smtp: smtp.prefault({}),
    inbound: inbound.prefault({}),
    outbound: outbound.prefault({}),
    delivery: delivery.prefault({}),
    dns: dns.prefault({}),
    filters: filtersSchema.prefault({}),
    dnsbl: dnsblSchema.prefault({}),
    recipients: recipientsSchema.prefault({}),
    limits: limitsSchema.prefault({}),
    greylisting: greylistingSchema.prefault({}),
    admin: admin.prefault({}),
    log: log.prefault({}),
  })
  .superRefine((config, ctx) => {
    for (const conflict of routeConflicts(config)) ctx.addIssue({ code: 'custom', ...conflict });
    // Routes found as findInbound finds them at run time: the exact domain, else the most
    // specific wildcard.
    const inbound = indexInbound(
      Object.entries(config.inbound.domains).flatMap(([k, route]) => {
        const pattern = parseDomainPattern(k);
        return pattern ? [{ pattern, route }] : [];
      }),
    );
    for (const [domain, sources] of Object.entries(config.recipients.domains)) {
      const d = parseDomainPattern(domain);
      if (d === null) continue;
      const route = findInbound(inbound, d.domain)?.route;
      if (route === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['recipients', 'domains', domain],
          message: 'is not one of inbound.domains (only our own domains have recipients to check)',
        });
        continue;
      }
      // A callout asks the route's smart host; a route by MX lookup has none to ask, and every
      // unknown recipient would get 450 for ever.
      const callout = sources.findIndex((source) => 'callout' in source);
      const first = route.hosts[0] === undefined ? null : parseNextHop(route.hosts[0]);
      if (callout >= 0 && first?.ok && first.value.mx)
        ctx.addIssue({
          code: 'custom',
          path: ['recipients', 'domains', domain, callout, 'callout'],
          message: `needs the route of ${domain} in inbound.domains to be a smart host in brackets ("[192.168.1.254]"): it is "${route.hosts[0]}", looked up by MX, so there is no one server to ask`,
        });
    }
  });

export type MoatConfigInput = z.input<typeof configSchema>;
export type MoatConfig = z.output<typeof configSchema>;
export { hostList };
