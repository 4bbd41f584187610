/**
 * DNS for delivery (RFC 5321 §5.1): MX records by preference (random among equals), the
 * implicit MX (the domain's own A/AAAA) when a domain has none, and null MX (RFC 7505).
 * Queries go only to `dns.servers` (the system's resolvers when that list is empty), through
 * node's c-ares resolver, never the system's getaddrinfo.
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface DnsSettings {
  readonly servers: readonly string[];
  /** Per-query timeout (ms). */
  readonly timeout: number;
}

/** Why a name gave no usable answer. `permanent`: the mail can never go there (bounce). */
export interface DnsFailure {
  readonly ok: false;
  readonly permanent: boolean;
  /** Enhanced status code for the DSN (5.1.2, 5.1.10, 4.4.3). */
  readonly status: string;
  readonly text: string;
}

export interface MxHost {
  readonly exchange: string;
  readonly preference: number;
  /** True when the domain had no MX and its own address records stand in for one. */
  readonly implicit: boolean;
}

export type MxAnswer = { readonly ok: true; readonly hosts: readonly MxHost[] } | DnsFailure;
export type AddressAnswer = { readonly ok: true; readonly addresses: readonly string[] } | DnsFailure;

const NO_SUCH_NAME = new Set(['ENOTFOUND']);
const NO_DATA = new Set(['ENODATA']);

const codeOf = (err: unknown): string => String((err as { code?: unknown }).code ?? 'EUNKNOWN');

function temporary(name: string, what: string, err: unknown): DnsFailure {
  return {
    ok: false,
    permanent: false,
    status: '4.4.3',
    text: `${what} lookup of ${name} failed (${codeOf(err)}), will try again`,
  };
}

export class DnsResolver {
  readonly #resolver: Resolver;

  constructor(settings: DnsSettings) {
    this.#resolver = new Resolver({ timeout: settings.timeout, tries: 2 });
    if (settings.servers.length > 0) this.#resolver.setServers([...settings.servers]);
  }

  /** MX hosts in the order to try them, or why there are none. */
  async mx(domain: string): Promise<MxAnswer> {
    let records: { exchange: string; priority: number }[];
    try {
      records = await this.#resolver.resolveMx(domain);
    } catch (err) {
      const code = codeOf(err);
      if (NO_DATA.has(code))
        return { ok: true, hosts: [{ exchange: domain, preference: 0, implicit: true }] };
      if (NO_SUCH_NAME.has(code)) {
        return { ok: false, permanent: true, status: '5.1.2', text: `domain ${domain} does not exist` };
      }
      return temporary(domain, 'MX', err);
    }
    const real = records.filter((r) => r.exchange !== '' && r.exchange !== '.');
    if (real.length === 0) {
      if (records.length > 0) {
        return {
          ok: false,
          permanent: true,
          status: '5.1.10',
          text: `domain ${domain} does not accept mail (null MX)`,
        };
      }
      return { ok: true, hosts: [{ exchange: domain, preference: 0, implicit: true }] };
    }
    return { ok: true, hosts: orderMx(real) };
  }

  /** IPv4 then IPv6 addresses of a host (an IP address stands for itself). */
  async addresses(host: string): Promise<AddressAnswer> {
    if (isIP(host)) return { ok: true, addresses: [host] };
    const [v4, v6] = await Promise.allSettled([this.#resolver.resolve4(host), this.#resolver.resolve6(host)]);
    const addresses = [
      ...(v4.status === 'fulfilled' ? v4.value : []),
      ...(v6.status === 'fulfilled' ? v6.value : []),
    ];
    if (addresses.length > 0) return { ok: true, addresses };
    const errors = [v4, v6].flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    const transient = errors.find((e) => !NO_SUCH_NAME.has(codeOf(e)) && !NO_DATA.has(codeOf(e)));
    if (transient !== undefined) return temporary(host, 'address', transient);
    return {
      ok: false,
      permanent: true,
      status: '5.1.2',
      text: errors.some((e) => NO_SUCH_NAME.has(codeOf(e)))
        ? `host ${host} does not exist`
        : `host ${host} has no address records`,
    };
  }
}

/** Lowest preference first; hosts with the same preference in random order (RFC 5321 §5.1). */
export function orderMx(
  records: readonly { exchange: string; priority: number }[],
  random: () => number = Math.random,
): MxHost[] {
  const shuffled = records.map((r) => ({ r, key: random() }));
  shuffled.sort((a, b) => a.r.priority - b.r.priority || a.key - b.key);
  const seen = new Set<string>();
  const hosts: MxHost[] = [];
  for (const { r } of shuffled) {
    const exchange = r.exchange.toLowerCase().replace(/\.$/, '');
    if (seen.has(exchange)) continue;
    seen.add(exchange);
    hosts.push({ exchange, preference: r.priority, implicit: false });
  }
  return hosts;
}
