/**
 * The worker role in a thread (delivery-thread.ts): started and stopped like the in-process
 * role. A thread that dies is logged and started again a second later: nothing is lost, its
 * jobs' locks expire and the new thread (or another node) takes them.
 */
import { Worker } from 'node:worker_threads';
import type { ThreadInput, ThreadMessage } from '../delivery-thread.js';
import type { RoleContext, Service } from '../run-roles.js';

const ENTRY = new URL('../delivery-thread.js', import.meta.url);
const RESTART_DELAY_MS = 1000;
/** Longer than the delivery service's own graceful stop (30 s). */
const STOP_TIMEOUT_MS = 40_000;

export async function startDeliveryThread(context: RoleContext): Promise<Service> {
  const log = context.log.child({ role: 'worker' });
  const input: ThreadInput = { config: context.config, redisUrl: context.redisUrl, nodeId: context.nodeId };
  let stats: Record<string, number> = {};
  let stopping = false;
  let thread: Worker;

  const spawn = (): Promise<Worker> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(ENTRY, { workerData: input });
      let ready = false;
      worker.on('message', (message: ThreadMessage) => {
        if (message.type === 'stats') stats = message.stats;
        else if (message.type === 'ready') {
          ready = true;
          resolve(worker);
        } else if (message.type === 'failed') reject(new Error(message.error));
      });
      worker.on('error', (err) => {
        log.error({ event: 'delivery.thread_error', err }, 'the delivery thread failed');
        if (!ready) reject(err);
      });
      worker.on('exit', (code) => {
        if (!ready) return reject(new Error(`the delivery thread exited (${code}) before it was ready`));
        if (stopping) return;
        log.error({ event: 'delivery.thread_exit', code }, 'the delivery thread stopped; starting it again');
        setTimeout(() => {
          if (stopping) return;
          spawn().then(
            (next) => {
              thread = next;
            },
            (err: unknown) => log.fatal({ event: 'delivery.thread_restart_failed', err }, 'no delivery'),
          );
        }, RESTART_DELAY_MS).unref();
      });
    });

  thread = await spawn();
  log.info({ event: 'delivery.thread_started', threadId: thread.threadId }, 'delivering from a thread');
  return {
    name: 'worker',
    stats: () => stats,
    async stop() {
      stopping = true;
      const exited = new Promise((r) => thread.once('exit', r));
      thread.postMessage({ type: 'stop' });
      const timer = setTimeout(() => void thread.terminate(), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}
