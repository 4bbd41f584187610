/**
 * `moat queue|route|track …`: talk to the admin API. Exit 0 when done, 1 when the API refused
 * or could not be reached, 2 for bad usage.
 */
import type { Io } from '../io.js';
import { EXIT_CONFIG } from '../report.js';
import { AdminClient, CommandError, type Flags } from './admin-http.js';
import { queueCommand } from './admin-queue.js';
import { partitionsCommand, routeCommand, trackCommand } from './admin-route.js';

export const ADMIN_USAGE = `Admin commands (talk to the admin API; --url or MOAT_ADMIN_URL, default http://127.0.0.1:8025;
--token or MOAT_ADMIN_TOKEN; --json for JSON instead of tables):
  moat queue list [--state S] [--route R] [--limit N]
  moat queue show <message-id>
  moat queue retry|hold|release <message-id> [--route R]
  moat queue delete <message-id> [--route R] [--dsn]
  moat queue retry|hold|release|delete --sender A | --recipient DOMAIN | --route R | --state S | --older-than 4h [--dry-run] [--dsn]
  moat route list | moat route pause <route> | moat route resume <route>
  moat partitions
  moat track <message-id | address | @domain> [--limit N]
`;

export async function adminCommand(positionals: readonly string[], flags: Flags, io: Io): Promise<number> {
  const [command, ...args] = positionals;
  try {
    const api = new AdminClient(flags, io);
    if (command === 'queue') return await queueCommand(args, flags, io, api);
    if (command === 'route') return await routeCommand(args, flags, io, api);
    if (command === 'track') return await trackCommand(args, flags, io, api);
    if (command === 'partitions') return await partitionsCommand(args, flags, io, api);
    throw new CommandError(`unknown command "${positionals.join(' ')}"`, true);
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    io.err(`moat: ${err.message}\n${err.usage ? `\n${ADMIN_USAGE}` : ''}`);
    return err.usage ? EXIT_CONFIG : 1;
  }
}
