/**
 * The `filters` config block made into what the edge runs: one Filter per configured scanner
 * (each with its timeout and onError), the DKIM signer, and a probe per daemon for /ready.
 */
import type { Filter, FilterCheck, FilterInput, Signer } from '@moat/edge';
import {
  type DaemonAddress,
  type Direction,
  decideAuthentication,
  decideClamav,
  decideRspamd,
  decideSpamassassin,
  type FiltersConfig,
} from '@moat/policy';
import { authenticateSender, type LookupFunction } from './authentication.js';
import { pingClamd, scanWithClamd } from './clamd.js';
import { DkimSigner } from './dkim-signer.js';
import { checkWithRspamd, pingRspamd } from './rspamd.js';
import { checkWithSpamd, pingSpamd } from './spamd.js';

/** Asks a filter's daemon whether it answers (clamd PING, Rspamd /ping, spamd PING). */
export interface FilterProbe {
  readonly name: string;
  check(signal: AbortSignal): Promise<void>;
}

export interface BuiltFilters {
  readonly filters: readonly Filter[];
  readonly signer: Signer | null;
  readonly probes: readonly FilterProbe[];
}

export interface BuildOptions {
  /** Moat's hostname: the authserv-id of its Authentication-Results. */
  readonly hostname: string;
  /** DNS through Moat's resolvers (dns.servers), for SPF/DKIM/DMARC/ARC. */
  readonly lookup: LookupFunction;
}

/** X-Spam-* and X-Virus-Status fields from outside are removed where Moat writes its own. */
const SCANNER_FIELDS = new Set(['x-spam-flag', 'x-spam-status', 'x-spam-score', 'x-virus-status']);
const removeScannerFields = (name: string) => SCANNER_FIELDS.has(name);

const both = (action: { inbound: string; outbound: string }) => (direction: Direction) =>
  action[direction] !== 'off';

export function buildFilters(config: FiltersConfig, options: BuildOptions): BuiltFilters {
  const filters: Filter[] = [];
  const probes: FilterProbe[] = [];
  const onErrorOf = (own: 'tempfail' | 'accept' | undefined) => own ?? config.onError;

  const clamav = config.clamav;
  if (clamav) {
    filters.push({
      name: 'clamav',
      timeoutMs: clamav.timeout,
      onError: onErrorOf(clamav.onError),
      appliesTo: both(clamav.action),
      removeHeader: removeScannerFields,
      async check(input, signal): Promise<FilterCheck> {
        const result =
          input.body.length > clamav.maxSize
            ? ({ status: 'oversize', size: input.body.length } as const)
            : await scanWithClamd(clamav.address, input.body, signal);
        return {
          decision: decideClamav(clamav, input.direction, result),
          result,
        };
      },
    });
    probes.push(daemonProbe('clamav', clamav.address, pingClamd));
  }

  const rspamd = config.rspamd;
  if (rspamd) {
    filters.push({
      name: 'rspamd',
      timeoutMs: rspamd.timeout,
      onError: onErrorOf(rspamd.onError),
      appliesTo: both(rspamd.action),
      removeHeader: removeScannerFields,
      async check(input, signal): Promise<FilterCheck> {
        const result = await checkWithRspamd(rspamd.url, input.body, envelopeOf(input, options.hostname), {
          password: rspamd.password,
          signal,
        });
        return {
          decision: decideRspamd(rspamd, input.direction, result),
          result: {
            action: result.action,
            score: result.score,
            required: result.required,
            symbols: result.symbols,
          },
        };
      },
    });
    probes.push({ name: 'rspamd', check: (signal) => pingRspamd(rspamd.url, signal) });
  }

  const spamassassin = config.spamassassin;
  if (spamassassin) {
    filters.push({
      name: 'spamassassin',
      timeoutMs: spamassassin.timeout,
      onError: onErrorOf(spamassassin.onError),
      appliesTo: both(spamassassin.action),
      removeHeader: removeScannerFields,
      async check(input, signal): Promise<FilterCheck> {
        const result = await checkWithSpamd(spamassassin.address, input.body, spamassassin.user, signal);
        return {
          decision: decideSpamassassin(spamassassin, input.direction, result),
          result: { ...result },
        };
      },
    });
    probes.push(daemonProbe('spamassassin', spamassassin.address, pingSpamd));
  }

  const authentication = config.authentication;
  if (authentication) {
    // RFC 8601 §5: an Authentication-Results that claims Moat's authserv-id and did not come
    // from Moat is a forgery; it goes, whatever the verdict.
    const ownId = options.hostname.toLowerCase();
    const forged = (name: string, value: string) =>
      name === 'authentication-results' &&
      value.split(';')[0]?.trim().split(/\s+/)[0]?.toLowerCase() === ownId;
    filters.push({
      name: 'authentication',
      timeoutMs: authentication.timeout,
      onError: onErrorOf(authentication.onError),
      appliesTo: (direction) => direction === 'inbound',
      removeHeader: forged,
      async check(input): Promise<FilterCheck> {
        const result = await authenticateSender(
          input.body,
          { clientIp: input.clientIp, helo: input.helo, sender: input.sender },
          { mta: options.hostname, lookup: options.lookup },
        );
        return {
          decision: decideAuthentication(authentication, result),
          result: {
            spf: result.spf,
            dkim: result.dkim,
            dmarc: result.dmarc.result,
            ...(result.dmarc.policy ? { policy: result.dmarc.policy } : {}),
            ...(result.dmarc.domain ? { domain: result.dmarc.domain } : {}),
            arc: result.arc.result,
          },
        };
      },
    });
  }

  let signer: Signer | null = null;
  if (config.dkim && Object.keys(config.dkim.domains).length > 0) {
    const dkim = new DkimSigner(config.dkim);
    const onError = onErrorOf(config.dkim.onError);
    signer = { onError, sign: (message) => dkim.sign(message) };
  }
  return { filters, signer, probes };
}

function envelopeOf(input: FilterInput, mta: string) {
  return {
    clientIp: input.clientIp,
    helo: input.helo,
    sender: input.sender,
    recipients: input.recipients,
    user: input.user,
    queueId: input.queueId,
    mta,
  };
}

function daemonProbe(
  name: string,
  address: DaemonAddress,
  ping: (address: DaemonAddress, signal: AbortSignal) => Promise<void>,
): FilterProbe {
  return { name, check: (signal) => ping(address, signal) };
}
