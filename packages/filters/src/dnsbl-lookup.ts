/**
 * DNS block and allow list lookups at connect: every site asked at once through Moat's
 * resolvers, each answer kept for its own TTL (a "not listed" for dnsbl.negativeCache), and a
 * site that has not answered by dnsbl.timeout skipped, never counted as listed. Scoring is
 * the policy core's (scoreDnsbl).
 */
import { Resolver } from 'node:dns/promises';
import {
  type DnsblAnswers,
  type DnsblConfig,
  type DnsblScore,
  dnsblQueryName,
  scoreDnsbl,
} from '@moat/policy';

export interface DnsblResult {
  readonly score: DnsblScore;
  readonly listed: boolean;
  readonly ms: number;
}

const MAX_CACHED = 50_000;

export class DnsblChecker {
  readonly #config: DnsblConfig;
  readonly #resolver: Resolver;
  readonly #cache = new Map<string, { expires: number; answer: readonly string[] }>();

  constructor(config: DnsblConfig, servers: readonly string[]) {
    this.#config = config;
    this.#resolver = new Resolver({ timeout: config.timeout, tries: 1 });
    if (servers.length > 0) this.#resolver.setServers([...servers]);
  }

  get enabled(): boolean {
    return this.#config.sites.length > 0;
  }

  async check(clientIp: string): Promise<DnsblResult> {
    const started = performance.now();
    const answers = new Map<string, readonly string[] | null>();
    await Promise.all(
      this.#config.sites.map(async (site) => {
        answers.set(site.text, await this.#ask(dnsblQueryName(clientIp, site.zone)));
      }),
    );
    const score = scoreDnsbl(this.#config.sites, answers as DnsblAnswers);
    return { score, listed: score.score >= this.#config.threshold, ms: performance.now() - started };
  }

  /** A's of the name; [] when not listed; null when there was no answer in time. */
  async #ask(name: string | null): Promise<readonly string[] | null> {
    if (name === null) return [];
    const now = Date.now();
    const hit = this.#cache.get(name);
    if (hit && hit.expires > now) return hit.answer;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), this.#config.timeout);
    });
    const lookup = this.#resolver.resolve4(name, { ttl: true }).then(
      (records) => {
        const ttl = Math.max(1, Math.min(...records.map((r) => r.ttl), 86_400));
        return this.#keep(
          name,
          records.map((r) => r.address),
          ttl * 1000,
        );
      },
      (err: NodeJS.ErrnoException) =>
        err.code === 'ENOTFOUND' || err.code === 'ENODATA'
          ? this.#keep(name, [], this.#config.negativeCache)
          : null,
    );
    try {
      return await Promise.race([lookup, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  #keep(name: string, answer: readonly string[], ms: number): readonly string[] {
    if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
    if (ms > 0) this.#cache.set(name, { expires: Date.now() + ms, answer });
    return answer;
  }
}
