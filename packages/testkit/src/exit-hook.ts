import { rmSync } from 'node:fs';

/** Child processes and temporary directories the kit still owns. */
export interface Leftovers {
  pids: Set<number>;
  dirs: Set<string>;
}

/**
 * Servers still running (and directories not removed) when the test process exits are
 * killed by PID and deleted. The registry lives on globalThis so that a test runner that
 * loads this module once per test file still installs a single exit hook.
 */
export function leftovers(): Leftovers {
  const key = Symbol.for('@moat/testkit/leftovers');
  const store = globalThis as unknown as Record<symbol, Leftovers | undefined>;
  let registry = store[key];
  if (!registry) {
    const created: Leftovers = { pids: new Set(), dirs: new Set() };
    registry = created;
    store[key] = created;
    process.on('exit', () => {
      for (const pid of created.pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      for (const dir of created.dirs) rmSync(dir, { recursive: true, force: true });
    });
  }
  return registry;
}
