/**
 * The worker role in a thread of its own (delivery-thread.ts), supervised: a thread that dies
 * is logged and started again. Nothing is lost: its jobs' locks expire and the new thread (or
 * another node) takes them. The thread's log lines come here and go out through this
 * process's one log destination, so lines from the two threads never interleave.
 */
import type { BodyMessage, ThreadInput, ThreadMessage } from '../delivery-thread.js';
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
  // The edge's durable bodies go to the thread: moved when their memory is their own (no
  // copy; the edge is done with them), else copied once into memory of their own.
  if (context.config.delivery.bodyCache > 0) {
    context.bodies.deliverTo((id, body, movable) => {
      const own = movable ? new Uint8Array(body.buffer, body.byteOffset, body.length) : new Uint8Array(body);
      const message: BodyMessage = { type: 'body', id, body: own };
      thread.post(message, [own.buffer as ArrayBuffer]);
    });
  }
  return {
    name: 'worker',
    stats: () => stats,
    async stop() {
      context.bodies.deliverTo(null);
      await thread.stop();
    },
  };
}
