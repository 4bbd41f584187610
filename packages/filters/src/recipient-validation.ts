/**
 * Recipient validation for inbound domains, at RCPT: unknown recipients are refused in the
 * session (550 5.1.1) instead of bounced later. Per domain, its sources in order: static files
 * (local, always asked, never cached), then the shared Redis cache, then the remote sources
 * (LDAP / Active Directory, an SMTP callout to the route's smart host), asked at once. What
 * they answer is decided by the policy core: a source that cannot answer, with nobody knowing
 * the address, gives 450 4.1.1, never a 550; the cache keeps known for days, unknown for hours,
 * so a known recipient is still accepted while Exchange is down for maintenance.
 */
import {
  decideRecipientAnswers,
  type NextHop,
  type RecipientAnswer,
  type RecipientDecision,
  type RecipientsConfig,
} from '@moat/policy';
import type { RecipientCache } from '@moat/spool';
import { LdapRecipients } from './ldap-recipients.js';
import { SmtpCallout } from './smtp-callout.js';
import { type ReloadEvent, StaticRecipients } from './static-recipients.js';

interface RemoteSource {
  readonly name: string;
  lookup(address: string, signal: AbortSignal): Promise<'known' | 'unknown'>;
  close(): Promise<void>;
}

interface DomainSources {
  readonly files: readonly StaticRecipients[];
  readonly remote: readonly RemoteSource[];
  readonly timeoutMs: number;
}

export interface RecipientCheck extends RecipientDecision {
  /** Where the answer came from: file, cache, or the remote sources asked. */
  readonly source: string;
  /** Remote sources that could not answer, with why. */
  readonly errors: readonly string[];
}

export interface ValidationOptions {
  readonly hostname: string;
  readonly cache: RecipientCache;
  /** The smart host of an inbound domain's route (callouts go there), or null. */
  readonly smartHost: (domain: string) => NextHop | null;
  readonly onReload?: (event: ReloadEvent) => void;
}

export class RecipientValidator {
  readonly #domains = new Map<string, DomainSources>();
  readonly #config: RecipientsConfig;
  readonly #cache: RecipientCache;

  constructor(config: RecipientsConfig, options: ValidationOptions) {
    this.#config = config;
    this.#cache = options.cache;
    for (const [domain, sources] of Object.entries(config.domains)) {
      const files: StaticRecipients[] = [];
      const remote: RemoteSource[] = [];
      let timeoutMs = 0;
      for (const source of sources) {
        if ('file' in source) {
          files.push(new StaticRecipients(source.file, config.fileCheckInterval, options.onReload));
        } else if ('ldap' in source) {
          const l = source.ldap;
          const client = new LdapRecipients({
            url: l.url,
            startTls: l.startTls,
            bindDn: l.bindDn,
            bindPassword: l.bindPassword,
            base: l.base,
            filter: l.filter,
            timeoutMs: l.timeout,
            tlsRejectUnauthorized: l.verifyCertificate,
          });
          remote.push({ name: 'ldap', lookup: (a, s) => client.lookup(a, s), close: () => client.close() });
          timeoutMs = Math.max(timeoutMs, l.timeout);
        } else {
          const hop = options.smartHost(domain);
          const callout =
            hop === null || hop.mx
              ? null
              : new SmtpCallout({
                  host: hop.host,
                  port: hop.port,
                  helo: options.hostname,
                  timeoutMs: source.callout.timeout,
                });
          remote.push({
            name: 'callout',
            lookup: (a, s) =>
              callout === null
                ? Promise.reject(new Error(`callout: the route of ${domain} has no smart host to ask`))
                : callout.verify(a, s),
            close: async () => callout?.close(),
          });
          timeoutMs = Math.max(timeoutMs, source.callout.timeout);
        }
      }
      this.#domains.set(domain.toLowerCase(), { files, remote, timeoutMs });
    }
  }

  /** Whether recipients of this domain are checked at all. */
  validates(domain: string): boolean {
    return this.#domains.has(domain.toLowerCase());
  }

  /**
   * The decision for one recipient, or null when its domain has no sources. Rejects only when
   * Redis fails. `dryRun`: ask, but keep nothing in the cache (moat policy test).
   */
  async check(address: string, options: { dryRun?: boolean } = {}): Promise<RecipientCheck | null> {
    const sources = this.#domains.get(address.slice(address.lastIndexOf('@') + 1).toLowerCase());
    if (sources === undefined) return null;
    if (sources.files.some((f) => f.has(address)))
      return { action: 'accept', cache: null, source: 'file', errors: [] };
    if (sources.remote.length === 0)
      return { ...decideRecipientAnswers(address, ['unknown']), cache: null, source: 'file', errors: [] };
    const cached = await this.#cache.get(address);
    if (cached !== null)
      return { ...decideRecipientAnswers(address, [cached]), cache: null, source: 'cache', errors: [] };
    const signal = AbortSignal.timeout(sources.timeoutMs);
    const errors: string[] = [];
    const answers = await Promise.all(
      sources.remote.map((s) =>
        s.lookup(address, signal).then(
          (answer): RecipientAnswer => answer,
          (err: Error): RecipientAnswer => {
            errors.push(`${s.name}: ${err.message}`);
            return 'error';
          },
        ),
      ),
    );
    const decision = decideRecipientAnswers(address, answers);
    if (decision.cache !== null && !options.dryRun) {
      const ttl = decision.cache === 'known' ? this.#config.positiveTtl : this.#config.negativeTtl;
      await this.#cache.set(address, decision.cache, ttl);
    }
    return { ...decision, source: sources.remote.map((s) => s.name).join('+'), errors };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#domains.values()].flatMap((d) => d.remote.map((s) => s.close())));
  }
}
