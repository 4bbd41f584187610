import { createInterface } from 'node:readline';
import { hashPassword } from '@moat/edge';
import type { Io } from '../io.js';

/** `moat user hash`: read a password (first line of stdin) and print its hash for smtp.users. */
export async function userHash(fromStdin: boolean, io: Io): Promise<number> {
  if (!fromStdin && process.stdin.isTTY)
    io.err('Password (input is echoed; or pipe it with --password-stdin): ');
  const rl = createInterface({ input: process.stdin });
  const line: string = await new Promise((done) => {
    rl.once('line', done);
    rl.once('close', () => done(''));
  });
  rl.close();
  if (line.length === 0) {
    io.err('moat: no password given on standard input\n');
    return 2;
  }
  io.out(`${await hashPassword(line)}\n`);
  return 0;
}
