/**
 * What /metrics reports, and from where:
 *  - queue figures from Redis (the same on every node): jobs by route and state, paused
 *    routes, the age of each route's oldest message, Redis memory;
 *  - counters the edges and workers add to Redis (`Counters` in @moat/spool): messages
 *    received, accepted, rejected by reason; deliveries by route and result; delivery latency;
 *  - per node, from heartbeats: up, uptime, memory, load, SMTP sessions, active jobs;
 *  - this admin process's own process and Node.js figures (prom-client), labelled with its node.
 */
import {
  liveNodes,
  METRICS,
  memoryInfo,
  type NodeInfo,
  QUEUE_STATES,
  readCounters,
  routeFigures,
  type Sample,
  type Spool,
} from '@moat/spool';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { type Family, formatFamilies } from './exposition.js';

/** Heartbeat stats → metric (name, help); other stats are shown by GET /nodes only. */
const NODE_STATS: Record<string, { name: string; help: string; type: 'gauge' | 'counter' }> = {
  uptimeSeconds: { name: 'moat_node_uptime_seconds', help: 'Seconds since the node started.', type: 'gauge' },
  rssBytes: {
    name: 'moat_node_memory_rss_bytes',
    help: 'Resident memory of the node process.',
    type: 'gauge',
  },
  heapUsedBytes: {
    name: 'moat_node_heap_used_bytes',
    help: 'V8 heap in use in the node process.',
    type: 'gauge',
  },
  cpuSeconds: {
    name: 'moat_node_cpu_seconds_total',
    help: 'CPU time used by the node process.',
    type: 'counter',
  },
  load1: { name: 'moat_node_load1', help: 'One-minute load average of the node machine.', type: 'gauge' },
  replicasMissing: {
    name: 'moat_redis_replicas_missing',
    help: 'An edge acknowledging without replicas (redis.whenReplicasMissing: local): 1 while fewer are online than redis.replicas.',
    type: 'gauge',
  },
  sessions: {
    name: 'moat_smtp_sessions_active',
    help: 'SMTP sessions open on an edge node.',
    type: 'gauge',
  },
  activeJobs: {
    name: 'moat_worker_active_jobs',
    help: 'Deliveries in progress on a worker node.',
    type: 'gauge',
  },
};

export class MetricsCollector {
  readonly #spool: Spool;
  readonly #routes: () => string[];
  readonly #process = new Registry();
  readonly #backpressure: number;

  /** `backpressure`: redis.maxMemoryUsage, exported so alerts need not assume it. */
  constructor(spool: Spool, nodeId: string, routes: () => string[], backpressure = 0.9) {
    this.#spool = spool;
    this.#routes = routes;
    this.#backpressure = backpressure;
    this.#process.setDefaultLabels({ node: nodeId });
    collectDefaultMetrics({ register: this.#process });
  }

  get contentType(): string {
    return this.#process.contentType;
  }

  async scrape(now = Date.now()): Promise<string> {
    const [figures, memory, nodes, samples, processText] = await Promise.all([
      routeFigures(this.#spool, this.#routes()),
      memoryInfo(this.#spool.redis),
      liveNodes(this.#spool.redis, this.#spool.keys),
      readCounters(this.#spool.redis, this.#spool.keys),
      this.#process.metrics(),
    ]);
    const families: Family[] = [
      {
        name: 'moat_queue_jobs',
        help: 'Jobs (a message on one route) by route and state, from Redis.',
        type: 'gauge',
        samples: figures.flatMap((f) =>
          QUEUE_STATES.map((state) => ({ labels: { route: f.routeId, state }, value: f.counts[state] })),
        ),
      },
      {
        name: 'moat_queue_oldest_message_age_seconds',
        help: 'Age of the oldest message still pending on a route (0 when none).',
        type: 'gauge',
        samples: figures.map((f) => ({
          labels: { route: f.routeId },
          value: f.oldestQueuedAt === null ? 0 : Math.max(0, (now - f.oldestQueuedAt) / 1000),
        })),
      },
      {
        name: 'moat_route_paused',
        help: '1 when the route is paused (maintenance), else 0.',
        type: 'gauge',
        samples: figures.map((f) => ({ labels: { route: f.routeId }, value: f.paused ? 1 : 0 })),
      },
      {
        name: 'moat_redis_memory_used_bytes',
        help: 'Redis used_memory.',
        type: 'gauge',
        samples: [{ labels: {}, value: memory.used }],
      },
      {
        name: 'moat_redis_memory_max_bytes',
        help: 'Redis maxmemory (0 = no limit).',
        type: 'gauge',
        samples: [{ labels: {}, value: memory.max }],
      },
      {
        name: 'moat_redis_memory_backpressure_ratio',
        help: 'redis.maxMemoryUsage: the share of maxmemory at which edges answer 452 to new mail.',
        type: 'gauge',
        samples: [{ labels: {}, value: this.#backpressure }],
      },
      ...counterFamilies(samples),
      ...nodeFamilies(nodes),
    ];
    return `${processText}\n${formatFamilies(families)}`;
  }

  close(): void {
    this.#process.clear();
  }
}

/** The cluster-wide counters, with every declared family present even before its first sample. */
function counterFamilies(samples: readonly Sample[]): Family[] {
  return Object.values(METRICS).map((def): Family => {
    if ('buckets' in def) return histogramFamily(def, samples);
    const mine = samples.filter((s) => s.name === def.name);
    return {
      name: def.name,
      help: def.help,
      type: 'counter',
      samples: mine.length === 0 && def.labels.length === 0 ? [{ labels: {}, value: 0 }] : mine,
    };
  });
}

/** Every bucket of every label set, in order (a bucket no observation reached is 0), then sum and count. */
function histogramFamily(
  def: { name: string; help: string; buckets: readonly number[] },
  samples: readonly Sample[],
): Family {
  const value = new Map<string, number>();
  const groups = new Map<string, Record<string, string>>();
  for (const s of samples) {
    if (!s.name.startsWith(`${def.name}_`)) continue;
    const { le, ...base } = s.labels;
    const group = JSON.stringify(base);
    groups.set(group, base);
    value.set(`${s.name}|${group}|${le ?? ''}`, s.value);
  }
  const out: Family['samples'][number][] = [];
  for (const [group, base] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    for (const le of [...def.buckets.map(String), '+Inf']) {
      const name = `${def.name}_bucket`;
      out.push({ name, labels: { ...base, le }, value: value.get(`${name}|${group}|${le}`) ?? 0 });
    }
    for (const suffix of ['_sum', '_count']) {
      const name = `${def.name}${suffix}`;
      out.push({ name, labels: base, value: value.get(`${name}|${group}|`) ?? 0 });
    }
  }
  return { name: def.name, help: def.help, type: 'histogram', samples: out };
}

function nodeFamilies(nodes: readonly NodeInfo[]): Family[] {
  const families: Family[] = [
    {
      name: 'moat_node_up',
      help: 'A live node (its heartbeat has not expired), with its roles, version and Node.js version.',
      type: 'gauge',
      samples: nodes.map((n) => ({
        labels: {
          node: n.id,
          roles: [...n.roles].sort().join(','),
          version: n.version,
          node_version: n.nodeVersion ?? 'unknown',
        },
        value: 1,
      })),
    },
  ];
  for (const [stat, def] of Object.entries(NODE_STATS)) {
    const samples = nodes
      .filter((n) => typeof n.stats?.[stat] === 'number')
      .map((n) => ({ labels: { node: n.id }, value: n.stats?.[stat] as number }));
    if (samples.length > 0) families.push({ name: def.name, help: def.help, type: def.type, samples });
  }
  // An edge's filter daemons, as its monitor last found them (heartbeat stats "filterUp:<name>").
  const filterUp = nodes.flatMap((n) =>
    Object.entries(n.stats ?? {})
      .filter(([stat]) => stat.startsWith('filterUp:'))
      .map(([stat, value]) => ({ labels: { node: n.id, filter: stat.slice('filterUp:'.length) }, value })),
  );
  if (filterUp.length > 0)
    families.push({
      name: 'moat_filter_up',
      help: "Whether an edge's filter daemon (clamd, Rspamd, spamd) answered its last probe.",
      type: 'gauge',
      samples: filterUp,
    });
  return families;
}
