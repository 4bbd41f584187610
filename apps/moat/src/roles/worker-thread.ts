/**
 * The worker role in a thread of its own (delivery-thread.ts), supervised: a thread that dies
 * is logged and started again. Nothing is lost: its jobs' locks expire and the new thread (or
 * another node) takes them. The thread's log lines come here and go out through this
 * process's one log destination, so lines from the two threads never interleave.
 */
import type { ThreadInput, ThreadMessage } from '../delivery-thread.js';
import type { RoleContext, Service } from '../run-roles.js';
import { superviseThread } from '../supervised-thread.js';

const ENTRY = new URL('../delivery-thread.js', import.meta.url);
/** Longer than the delivery service's own graceful stop (30 s). */
const STOP_TIMEOUT_MS = 40_000;

export async function startDeliveryThread(context: RoleContext): Promise<Service> {
  const input: ThreadInput = { config: context.config, redisUrl: context.redisUrl, nodeId: context.nodeId };
  let stats: Record<string, number> = {};
  const thread = await superviseThread({
    name: 'delivery',
    entry: ENTRY,
    workerData: input,
    log: context.log.child({ role: 'worker' }),
    stopTimeoutMs: STOP_TIMEOUT_MS,
    onMessage: (message) => {
      const m = message as ThreadMessage;
      if (m.type === 'stats') stats = m.stats;
      else if (m.type === 'log') context.writeLog(m.line);
    },
    // No thread, no deliveries: the heartbeat must not go on showing the last figures.
    onExit: () => {
      stats = { deliveryRoutes: 0 };
    },
  });
  return { name: 'worker', stats: () => stats, stop: () => thread.stop() };
}
