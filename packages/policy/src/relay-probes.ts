/**
 * Open-relay probes: the recipients a relay tester would try, built from the configured inbound
 * domains, each with the verdict a closed relay must give. `moat config check` (or a test) runs
 * them against the policy compiled from the live config; any failure means the config would
 * make Moat an open relay, or refuse its own domains.
 */
import { domainToUnicode } from 'node:url';
import { normalizeDomain } from './domains.js';
import { decideRecipient, findInbound, type RelayPolicy, type Verdict } from './relay.js';

export interface RelayProbe {
  readonly name: string;
  readonly clientIp: string;
  readonly user: string | null;
  readonly recipient: string;
  readonly expect: 'reject' | 'accept';
}

export interface ProbeResult {
  readonly probe: RelayProbe;
  readonly verdict: Verdict;
  readonly passed: boolean;
}

/** The untrusted client of every probe: TEST-NET-1 (RFC 5737), which no real network uses. */
export const UNTRUSTED_PROBE_IP = '192.0.2.1';

/** Probes for every configured inbound domain (a wildcard contributes one of its subdomains). */
export function openRelayProbes(policy: RelayPolicy): RelayProbe[] {
  const notOurs = (domain: string): boolean => {
    const d = normalizeDomain(domain);
    return d !== null && findInbound(policy, d) === undefined;
  };
  const foreign = pickForeign(notOurs, 'relay-test');
  const foreignIdn = pickForeign(notOurs, 'prüfung-relay-test');
  const probes: RelayProbe[] = [];
  const add = (name: string, recipient: string, expect: 'reject' | 'accept' = 'reject'): void => {
    probes.push({ name, clientIp: UNTRUSTED_PROBE_IP, user: null, recipient, expect });
  };

  add('plain foreign address', `user@${foreign}`);
  add('plain foreign address in brackets', `<user@${foreign}>`);
  add('upper-case foreign address', `USER@${foreign.toUpperCase()}`);
  add('IDN foreign address', `user@${foreignIdn}`);
  add('IPv4 address literal', 'user@[127.0.0.1]');
  add('IPv6 address literal', 'user@[IPv6:::1]');
  add('postmaster at an address literal', `postmaster@[${UNTRUSTED_PROBE_IP}]`);
  add('bare IP address as the domain', 'user@127.0.0.1');

  const ours = [
    ...[...policy.exact.values()].map((e) => e.pattern.domain),
    ...policy.wildcards.map((w) => `relay-probe.${w.pattern.domain}`),
  ];
  for (const d of ours) {
    const forms = [d, d.toUpperCase()];
    const unicode = domainToUnicode(d);
    if (unicode !== d && unicode !== '') forms.push(unicode, unicode.toUpperCase());
    for (const o of forms) {
      add(`percent hack via ${o}`, `user%${foreign}@${o}`);
      add(`upper-case percent hack via ${o}`, `USER%${foreign.toUpperCase()}@${o}`);
      add(`double percent hack via ${o}`, `user%${foreign}%${o}@${o}`);
      add(`bang path via ${o}`, `${foreign}!user@${o}`);
      add(`quoted @ via ${o}`, `"user@${foreign}"@${o}`);
      add(`quoted percent hack via ${o}`, `"user%${foreign}"@${o}`);
      add(`source route via ${o}`, `@${o}:user@${foreign}`);
      add(`source route ending at ${o}`, `<@${foreign}:user@${o}>`);
      add(`two @ via ${o}`, `user@${foreign}@${o}`);
      add(`backslash-escaped @ via ${o}`, `user\\@${foreign}@${o}`);
      add(`trailing dot on ${o}`, `user@${o}.`);
      add(`percent hack with trailing dot on ${o}`, `user%${foreign}@${o}.`);
    }
    add(`postmaster at ${d}`, `postmaster@${d}`, 'accept');
    if (unicode !== d && unicode !== '') add(`postmaster at ${unicode}`, `postmaster@${unicode}`, 'accept');
    // Near misses: the parent of a wildcard and a look-alike suffix must not count as ours.
    const parent = d.startsWith('relay-probe.') ? d.slice('relay-probe.'.length) : null;
    if (parent !== null && notOurs(parent)) add(`parent ${parent} of a wildcard`, `user@${parent}`);
    if (notOurs(`bad${d}`)) add(`look-alike bad${d}`, `user@bad${d}`);
    if (notOurs(`${d}.${foreign}`)) add(`${d} as a prefix of ${foreign}`, `user@${d}.${foreign}`);
  }
  return probes;
}

/** Run probes (by default all of `openRelayProbes`) against a policy. */
export function runRelayProbes(
  policy: RelayPolicy,
  probes: readonly RelayProbe[] = openRelayProbes(policy),
): ProbeResult[] {
  return probes.map((probe) => {
    const verdict = decideRecipient(policy, { clientIp: probe.clientIp, user: probe.user }, probe.recipient);
    return { probe, verdict, passed: verdict.action === probe.expect };
  });
}

/**
 * A domain surely not ours: `label`.invalid (RFC 2606), else the same under .test or .example,
 * numbered if need be. Should the config claim all of them, the last candidate is returned and
 * the probes fail, which is the right outcome for such a config.
 */
function pickForeign(notOurs: (domain: string) => boolean, label: string): string {
  let candidate = `${label}.invalid`;
  for (const tld of ['invalid', 'test', 'example']) {
    for (const suffix of ['', '-2', '-3']) {
      candidate = `${label}${suffix}.${tld}`;
      if (notOurs(candidate)) return candidate;
    }
  }
  return candidate;
}
