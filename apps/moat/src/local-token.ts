/**
 * First contact: the embedded one-machine config has no admin token of its own, so `moat start`
 * makes one on its first start (32 random bytes, base64url), keeps it in `<dataDir>/admin-token`
 * with mode 0600, and uses the same one on every later start. The `moat` CLI finds it by itself
 * when it talks to that local default. A config that names its own tokens never gets one.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { MoatConfig } from '@moat/policy';

export const TOKEN_FILE = 'admin-token';

/** The token in `<dataDir>/admin-token`, made (0600) when there is none yet. */
export function localAdminToken(dataDir: string): { token: string; file: string; created: boolean } {
  const file = path.resolve(dataDir, TOKEN_FILE);
  try {
    const token = readFileSync(file, 'utf8').trim();
    if (token.length >= 32) {
      // Someone loosened it: a token readable by others is no secret.
      if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
      return { token, file, created: false };
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { token, file, created: true };
}

/**
 * The config with the local token added, when it is the embedded default and names no token
 * of its own (otherwise the config as it is).
 */
export function withLocalToken(
  config: Readonly<MoatConfig>,
  embedded: boolean,
): { config: Readonly<MoatConfig>; local: ReturnType<typeof localAdminToken> | null } {
  if (!embedded || config.admin.tokens.length > 0 || config.admin.listen === null)
    return { config, local: null };
  const local = localAdminToken(config.dataDir);
  const tokens = [{ name: 'local', token: local.token, scope: 'admin' as const }];
  return { config: Object.freeze({ ...config, admin: { ...config.admin, tokens } }), local };
}

/**
 * For the CLI: the local token, when the command talks to the local default admin API and
 * was given no token. Looked for in ./.moat (where scripts/start.sh runs Moat) and in the
 * .moat of the checkout this command belongs to.
 */
export function findLocalToken(cwd: string, checkout: string): string | undefined {
  for (const dir of [path.join(cwd, '.moat'), path.join(checkout, '.moat')]) {
    try {
      const token = readFileSync(path.join(dir, TOKEN_FILE), 'utf8').trim();
      if (token.length >= 32) return token;
    } catch {
      // not there
    }
  }
  return undefined;
}
