import type { ConfigError } from '@moat/policy';
import type { Io } from './io.js';

/** Exit status for a config that cannot be used. */
export const EXIT_CONFIG = 2;

export function reportConfigErrors(errors: readonly ConfigError[], io: Io): number {
  io.err(`moat: the configuration is not valid (${errors.length} error${errors.length === 1 ? '' : 's'}):\n`);
  for (const e of errors) io.err(`  ${e.path}: ${e.message}\n`);
  return EXIT_CONFIG;
}
