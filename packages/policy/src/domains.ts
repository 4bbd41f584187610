/**
 * Domain names as policy compares them: lower-case A-labels (IDN → punycode, UTS #46),
 * no trailing dot. `node:url`'s domainToASCII is a pure function; it is the one
 * node: module the policy core may use.
 */
import { domainToASCII } from 'node:url';
import { isHostname } from './routes.js';

/**
 * Normalise a domain for comparison, or return null if it is not a valid host name.
 * A trailing dot is NOT stripped here: "example.com." in an envelope address is a trick
 * the address parser reports; config keys strip it before calling.
 */
export function normalizeDomain(domain: string): string | null {
  if (domain.length === 0 || domain.endsWith('.')) return null;
  // Plain ASCII letters, digits, hyphens and dots take the fast path.
  const ascii = /^[\x21-\x7e]+$/.test(domain) ? domain.toLowerCase() : domainToASCII(domain);
  if (ascii === '' || !isHostname(ascii)) return null;
  return ascii;
}

/** An inbound-domain pattern: "example.com" (exact) or "*.example.com" (strict subdomains only). */
export interface DomainPattern {
  readonly text: string;
  readonly wildcard: boolean;
  /** The normalised domain after any "*." */
  readonly domain: string;
}

export function parseDomainPattern(input: string): DomainPattern | null {
  const text = input.trim().replace(/\.$/, '');
  const wildcard = text.startsWith('*.');
  const domain = normalizeDomain(wildcard ? text.slice(2) : text);
  if (domain === null) return null;
  return { text: wildcard ? `*.${domain}` : domain, wildcard, domain };
}

/** Whether a normalised domain matches a pattern: exact, or a strict subdomain for "*." patterns. */
export function domainMatches(domain: string, pattern: DomainPattern): boolean {
  return pattern.wildcard ? domain.endsWith(`.${pattern.domain}`) : domain === pattern.domain;
}
