import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `done` every `everyMs` until it holds; throws naming `what` after `ms`. */
export async function until(
  what: string,
  done: () => boolean | Promise<boolean>,
  ms: number,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(everyMs);
  }
}
