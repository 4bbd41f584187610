import type { Io } from '../io.js';

/** `moat queue|route|track …`: talk to the admin API. */
export async function adminCommand(
  positionals: readonly string[],
  _flags: Record<string, string | boolean | undefined>,
  io: Io,
): Promise<number> {
  io.err(`moat: "${positionals.join(' ')}" is not built yet\n`);
  return 2;
}
