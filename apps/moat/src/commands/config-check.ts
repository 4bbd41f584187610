import { maskSecrets } from '@moat/policy';
import { stringify } from 'yaml';
import { loadConfig } from '../config-load.js';
import type { Io } from '../io.js';
import { reportConfigErrors } from '../report.js';

/** `moat config check [--config FILE]`: print the effective config, or every error. Exit 0 or 2. */
export function configCheck(file: string | undefined, io: Io): number {
  const loaded = loadConfig(file, io.env);
  if (!loaded.ok) return reportConfigErrors(loaded.errors, io);
  io.out(`# ${loaded.source}: valid. Effective config (secrets masked):\n`);
  io.out(stringify(maskSecrets(loaded.config)));
  return 0;
}
