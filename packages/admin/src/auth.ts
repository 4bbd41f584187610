/**
 * Bearer tokens: every configured token is compared with the presented one in constant time
 * (SHA-256 digests of both, so the lengths are equal, compared with timingSafeEqual), and all
 * of them are always compared, so timing tells nothing about which one came close.
 * Scopes: `read` may use GET routes; `admin` may use every route.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export type Scope = 'read' | 'admin';

export interface AdminToken {
  readonly name: string;
  readonly token: string;
  readonly scope: Scope;
}

export interface Principal {
  readonly name: string;
  readonly scope: Scope;
}

export type AuthResult =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly status: 401 | 403; readonly message: string };

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

export function tokenChecker(tokens: readonly AdminToken[]) {
  const known = tokens.map((t, i) => ({
    digest: digest(t.token),
    name: t.name || `token-${i + 1}`,
    scope: t.scope,
  }));
  return (authorization: string | undefined, needed: Scope): AuthResult => {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    if (!m) {
      return {
        ok: false,
        status: 401,
        message: 'this route needs a token: send "Authorization: Bearer <token>"',
      };
    }
    const presented = digest(m[1] as string);
    let match: (typeof known)[number] | undefined;
    for (const k of known) {
      if (timingSafeEqual(k.digest, presented) && match === undefined) match = k;
    }
    if (match === undefined) return { ok: false, status: 401, message: 'the token is not valid' };
    if (needed === 'admin' && match.scope !== 'admin') {
      return {
        ok: false,
        status: 403,
        message: `token "${match.name}" has scope read; this route needs scope admin`,
      };
    }
    return { ok: true, principal: { name: match.name, scope: match.scope } };
  };
}
