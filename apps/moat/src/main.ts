/** The process entry of `moat` (bin/moat loads this): run the command, set the exit code. */
// First: V8's collector settings, before the rest is loaded (gc-flags.ts says why).
import './gc-flags.js';
import { main } from './cli.js';
import { processIo } from './io.js';

main(process.argv.slice(2), processIo).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`moat: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
