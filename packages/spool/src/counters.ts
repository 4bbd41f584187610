/**
 * Cluster-wide counters: the metrics registry the edge and the workers increment. Each process
 * adds up its increments in memory and flushes them every `flushMs` into one Redis hash
 * (HINCRBY), so the admin API's /metrics shows totals across every node, surviving restarts.
 *
 *   const counters = new Counters(redis, spool.keys); counters.start();
 *   counters.inc('accepted');                                   // one message queued
 *   counters.inc('rejected', { reason: 'relay-denied' });       // one command refused
 *   counters.inc('deliveries', { route, result: 'delivered' }); // one recipient's outcome
 *   counters.observe('deliveryLatency', { route }, seconds);    // accepted → delivered
 *   await counters.stop();                                      // last flush
 *
 * Metric names, label names and histogram buckets are fixed in METRICS: one place to read.
 */
import type { RedisClient } from './connection.js';
import type { Keys } from './keys.js';

interface MetricDef {
  readonly name: string;
  readonly help: string;
  readonly labels: readonly string[];
  readonly buckets?: readonly number[];
}

export const METRICS = {
  received: {
    name: 'moat_messages_received_total',
    help: 'Messages whose DATA the edge received completely (before filters and queueing).',
    labels: [],
  },
  accepted: {
    name: 'moat_messages_accepted_total',
    help: 'Messages queued and answered 250.',
    labels: [],
  },
  rejected: {
    name: 'moat_messages_rejected_total',
    help: 'Commands the edge refused (connection, MAIL, RCPT or DATA), by reason.',
    labels: ['reason'],
  },
  deliveries: {
    name: 'moat_deliveries_total',
    help: "Recipients' delivery outcomes by route: delivered, deferred, bounced, expired.",
    labels: ['route', 'result'],
  },
  deliveryLatency: {
    name: 'moat_delivery_latency_seconds',
    help: 'Time from acceptance to successful delivery, per job.',
    labels: ['route'],
    buckets: [1, 5, 15, 60, 300, 900, 3600, 14_400, 86_400, 432_000],
  },
  acceptDuration: {
    name: 'moat_accept_duration_seconds',
    help: 'From the DATA command to the answer: receiving the message, the filters, making it durable (accepted messages).',
    labels: [],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  },
  filterVerdicts: {
    name: 'moat_filter_verdicts_total',
    help: "Each filter's verdict per message: accept, tag, tempfail, reject, or error (no answer).",
    labels: ['filter', 'verdict'],
  },
  filterDuration: {
    name: 'moat_filter_duration_seconds',
    help: 'How long each filter took per message (the scanners run side by side).',
    labels: ['filter'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  },
  localAcks: {
    name: 'moat_messages_acknowledged_local_total',
    help: 'Messages acknowledged with the primary alone while fewer replicas were online than redis.replicas (redis.whenReplicasMissing: local).',
    labels: [],
  },
  dnsblChecks: {
    name: 'moat_dnsbl_checks_total',
    help: 'DNS list checks of connecting clients: listed, clean, or skipped (a site did not answer in time).',
    labels: ['result'],
  },
  dkimSigned: {
    name: 'moat_dkim_signatures_total',
    help: 'Outbound messages DKIM-signed, by signing domain, or failed to sign.',
    labels: ['domain', 'result'],
  },
} as const satisfies Record<string, MetricDef>;

type Defs = typeof METRICS;
export type CounterName = { [K in keyof Defs]: Defs[K] extends { buckets: unknown } ? never : K }[keyof Defs];
export type HistogramName = {
  [K in keyof Defs]: Defs[K] extends { buckets: unknown } ? K : never;
}[keyof Defs];
export type Labels = Readonly<Record<string, string>>;

/** One series as stored: metric name (with _bucket/_sum/_count for histograms), labels, value. */
export interface Sample {
  readonly name: string;
  readonly labels: Labels;
  readonly value: number;
}

export class Counters {
  readonly #redis: RedisClient;
  readonly #key: string;
  readonly #flushMs: number;
  #pending = new Map<string, number>();
  readonly #fields = new Map<string, SeriesFields>();
  #timer: NodeJS.Timeout | undefined;

  constructor(redis: RedisClient, keys: Keys, options: { readonly flushMs?: number } = {}) {
    this.#redis = redis;
    this.#key = keys.metrics;
    this.#flushMs = options.flushMs ?? 2000;
  }

  inc(metric: CounterName, labels: Labels = {}, by = 1): void {
    const def: MetricDef = METRICS[metric];
    this.#add(this.#series(def, labels).total, by);
  }

  /** Record one observation (seconds) in a histogram. */
  observe(metric: HistogramName, labels: Labels, value: number): void {
    const def: MetricDef = METRICS[metric];
    const series = this.#series(def, labels);
    const buckets = def.buckets ?? [];
    for (let i = 0; i <= buckets.length; i++) {
      if (value <= (buckets[i] ?? Number.POSITIVE_INFINITY)) this.#add(series.buckets[i] ?? '', 1);
    }
    this.#add(series.sum, value);
    this.#add(series.count, 1);
  }

  /** Write the increments gathered so far; on failure they are kept for the next flush. */
  async flush(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    const tx = this.#redis.multi();
    for (const [field, by] of batch) {
      if (Number.isInteger(by)) tx.hincrby(this.#key, field, by);
      else tx.hincrbyfloat(this.#key, field, by);
    }
    const keep = (entries: Iterable<[string, number]>) => {
      for (const [field, by] of entries) this.#pending.set(field, (this.#pending.get(field) ?? 0) + by);
    };
    let results: [Error | null, unknown][] | null;
    try {
      results = await tx.exec();
    } catch (err) {
      keep(batch);
      throw err;
    }
    // A transaction is not rolled back: keep only the increments Redis refused.
    const entries = [...batch];
    const refused = entries.filter((_, i) => results === null || (results[i]?.[0] ?? null) !== null);
    keep(refused);
    if (refused.length > 0) throw new Error(`Redis refused ${refused.length} metric increments`);
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.flush().catch(() => {}), this.#flushMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush().catch(() => {});
  }

  #add(field: string, by: number): void {
    this.#pending.set(field, (this.#pending.get(field) ?? 0) + by);
  }

  /**
   * The hash fields of one series (JSON of [name, declared labels in order (+ le)]), made once
   * per metric and label values and kept: a hot path, every message increments several.
   */
  #series(def: MetricDef, labels: Labels): SeriesFields {
    let key = def.name;
    for (const label of def.labels) key += `\0${labels[label] ?? ''}`;
    let series = this.#fields.get(key);
    if (series === undefined) {
      const base = pickLabels(def, labels);
      const field = (name: string, extra: Labels = {}) => JSON.stringify([name, { ...base, ...extra }]);
      series = {
        total: field(def.name),
        buckets: [...(def.buckets ?? []), Number.POSITIVE_INFINITY].map((le) =>
          field(`${def.name}_bucket`, { le: le === Number.POSITIVE_INFINITY ? '+Inf' : String(le) }),
        ),
        sum: field(`${def.name}_sum`),
        count: field(`${def.name}_count`),
      };
      this.#fields.set(key, series);
    }
    return series;
  }
}

/** The stored fields of one counter (total) or histogram (buckets, sum, count). */
interface SeriesFields {
  readonly total: string;
  readonly buckets: readonly string[];
  readonly sum: string;
  readonly count: string;
}

/** Every stored series (summed over all nodes). */
export async function readCounters(redis: RedisClient, keys: Keys): Promise<Sample[]> {
  const all = await redis.hgetall(keys.metrics);
  const out: Sample[] = [];
  for (const [field, value] of Object.entries(all)) {
    try {
      const [name, labels] = JSON.parse(field) as [string, Labels];
      out.push({ name, labels, value: Number(value) });
    } catch {
      // Not one of ours: skip.
    }
  }
  return out.sort((a, b) => (a.name === b.name ? 0 : a.name < b.name ? -1 : 1));
}

/** Only the declared labels, in declared order, so one series is always one field. */
function pickLabels(def: MetricDef, labels: Labels): Labels {
  const out: Record<string, string> = {};
  for (const name of def.labels) out[name] = labels[name] ?? '';
  return out;
}
