/**
 * `moat`: the command line. Parses arguments, dispatches, and owns the process:
 * exit codes, signals. 0 = ok, 1 = failure at run time, 2 = bad usage or bad config.
 */
import { parseArgs } from 'node:util';
import { ADMIN_USAGE, adminCommand } from './commands/admin-client.js';
import { configCheck } from './commands/config-check.js';
import { policyTest } from './commands/policy-test.js';
import { reloadCommand } from './commands/reload.js';
import { userHash } from './commands/user-hash.js';
import type { Io } from './io.js';
import { EXIT_CONFIG } from './report.js';
import { ROLES, type Role, runRoles } from './run-roles.js';

/** Commands that talk to the admin API (commands/admin-client.ts). */
const ADMIN_COMMANDS = ['queue', 'route', 'track', 'partitions'];

const USAGE = `usage: moat <command> [options]

Roles (run until SIGTERM/SIGINT):
  moat start   [--config FILE]   all roles in one process (edge, worker, admin)
  moat edge    [--config FILE]   the SMTP listener
  moat worker  [--config FILE]   the delivery workers
  moat admin   [--config FILE]   the admin API

Tools:
  moat config check [--config FILE]   validate a config and print the effective one
  moat reload --pid PID[,PID] [--config FILE]
                                      check the config, then have running processes re-read it (SIGHUP)
  moat user hash [--password-stdin]   print a password hash for smtp.users
  moat policy test --ip IP --to ADDR[,ADDR] [--from ADDR] [--helo NAME] [--auth USER] [--json]
                                      what Moat would answer at each phase, and why (sends no mail)

Without --config, MOAT_CONFIG names the file; without either, the embedded one-machine default is used.

${ADMIN_USAGE}`;

export async function main(argv: readonly string[], io: Io): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.err(`moat: ${(err as Error).message}\n\n${USAGE}`);
    return EXIT_CONFIG;
  }
  const { values, positionals } = parsed;
  const [command, sub] = positionals;
  const configFile = values.config ?? io.env.MOAT_CONFIG;
  if (values.help || command === undefined || command === 'help') {
    io.out(USAGE);
    return command === undefined && !values.help ? EXIT_CONFIG : 0;
  }
  if ((ROLES as readonly string[]).includes(command)) {
    const roles: Role[] = command === 'start' ? [...ROLES.filter((r) => r !== 'start')] : [command as Role];
    return runRoles(roles, configFile, io);
  }
  if (command === 'config' && sub === 'check') return configCheck(configFile, io);
  if (command === 'reload') return reloadCommand(values.pid, configFile, io);
  if (command === 'policy' && sub === 'test') return policyTest(values, configFile, io);
  if (command === 'user' && sub === 'hash') return userHash(values['password-stdin'] === true, io);
  if (ADMIN_COMMANDS.includes(command)) return adminCommand(positionals, values, io);
  io.err(`moat: unknown command "${positionals.join(' ')}"\n\n${USAGE}`);
  return EXIT_CONFIG;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      'password-stdin': { type: 'boolean' },
      pid: { type: 'string' },
      ip: { type: 'string' },
      helo: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      auth: { type: 'string' },
      // Admin API client options (moat queue|route|track).
      url: { type: 'string' },
      token: { type: 'string' },
      json: { type: 'boolean' },
      route: { type: 'string' },
      state: { type: 'string' },
      sender: { type: 'string' },
      recipient: { type: 'string' },
      limit: { type: 'string' },
      dsn: { type: 'boolean' },
      'older-than': { type: 'string' },
      'dry-run': { type: 'boolean' },
    },
  });
}
