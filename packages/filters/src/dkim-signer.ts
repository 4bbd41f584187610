/**
 * DKIM signing of outbound mail (RFC 6376, RSA-SHA256 and Ed25519-SHA256, RFC 8463) with
 * mailauth, per sender domain: the From header's domain picks the keys, and every key of
 * that domain signs (two selectors during a key rotation). The edge signs a message once,
 * when it accepts it; the signed body is what Redis keeps, so retries never sign again.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DkimConfig } from '@moat/policy';
import { dkimSign } from 'mailauth';

export interface DkimKey {
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: 'rsa-sha256' | 'ed25519-sha256';
  readonly pem: string;
}

/** Why a key cannot sign, or the key: for `moat config check` and for the signer. */
export function loadDkimKey(
  domain: string,
  selector: string,
  file: string,
): { ok: true; key: DkimKey } | { ok: false; error: string } {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    return {
      ok: false,
      error: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    };
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    return { ok: false, error: `${file} is not a PEM private key` };
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 1024)
      return {
        ok: false,
        error: `${file} is an RSA key of ${bits} bits; DKIM needs 1024 or more (2048 recommended)`,
      };
    return { ok: true, key: { domain, selector, algorithm: 'rsa-sha256', pem } };
  }
  if (key.asymmetricKeyType === 'ed25519')
    return { ok: true, key: { domain, selector, algorithm: 'ed25519-sha256', pem } };
  return {
    ok: false,
    error: `${file} is a ${key.asymmetricKeyType ?? 'unknown'} key; DKIM signs with RSA or Ed25519`,
  };
}

/** Every key problem of a dkim block, with the config path it belongs to. */
export function checkDkimKeys(config: DkimConfig): { path: (string | number)[]; message: string }[] {
  const errors: { path: (string | number)[]; message: string }[] = [];
  for (const [domain, keys] of Object.entries(config.domains)) {
    keys.forEach((k, i) => {
      const loaded = loadDkimKey(domain, k.selector, k.key);
      if (!loaded.ok)
        errors.push({ path: ['filters', 'dkim', 'domains', domain, i, 'key'], message: loaded.error });
    });
  }
  return errors;
}

/** The From header's domain, lower-cased: the last addr-spec's domain in the first From field. */
export function fromDomain(message: Buffer): string | null {
  const end = message.indexOf('\r\n\r\n');
  const head = message.subarray(0, end < 0 ? message.length : end).toString('latin1');
  const m = /(?:^|\r\n)from:((?:[^\r]|\r\n[ \t])*)/i.exec(head);
  if (!m?.[1]) return null;
  const value = m[1].replace(/\r\n[ \t]/g, ' ').replace(/\([^)]*\)/g, '');
  const addresses = [...value.matchAll(/@([A-Za-z0-9.-]+)\s*>?/g)];
  const domain = addresses.at(-1)?.[1]?.toLowerCase().replace(/\.$/, '');
  return domain || null;
}

export class DkimSigner {
  readonly #keys = new Map<string, DkimKey[]>();
  readonly #headers: readonly string[];

  /** Loads every key now: a bad one throws (at start), not at the first message. */
  constructor(config: DkimConfig) {
    this.#headers = config.headers;
    for (const [domain, list] of Object.entries(config.domains)) {
      const keys = list.map((k) => {
        const loaded = loadDkimKey(domain, k.selector, k.key);
        if (!loaded.ok) throw new Error(`filters.dkim.domains.${domain}: ${loaded.error}`);
        return loaded.key;
      });
      this.#keys.set(domain.toLowerCase(), keys);
    }
  }

  /** The domains that have keys. */
  get domains(): string[] {
    return [...this.#keys.keys()];
  }

  /**
   * DKIM-Signature fields (CRLF-terminated) for the message, or null when its From domain has
   * no key. A signing error rejects.
   */
  async sign(message: Buffer): Promise<{ headers: string; domain: string; selectors: string[] } | null> {
    const domain = fromDomain(message);
    const keys = domain === null ? undefined : this.#keys.get(domain);
    if (domain === null || keys === undefined) return null;
    // mailauth's typings want one key at the top level; several go in signatureData (its README).
    const options = {
      canonicalization: 'relaxed/relaxed',
      headerList: [...this.#headers],
      signatureData: keys.map((k) => ({
        signingDomain: k.domain,
        selector: k.selector,
        privateKey: k.pem,
        algorithm: k.algorithm,
      })),
    } as unknown as Parameters<typeof dkimSign>[1];
    const result = await dkimSign(message, options);
    if (result.errors.length > 0) {
      const first = result.errors[0] as { err?: Error } | undefined;
      throw new Error(`DKIM signing for ${domain} failed: ${first?.err?.message ?? 'unknown error'}`);
    }
    return {
      headers: result.signatures.replace(/\r?\n/g, '\r\n'),
      domain,
      selectors: keys.map((k) => k.selector),
    };
  }
}
