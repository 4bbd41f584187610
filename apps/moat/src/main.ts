/** The process entry of `moat` (bin/moat loads this): run the command, set the exit code. */
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
