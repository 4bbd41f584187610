/**
 * A worker thread that is started again when it dies: used for the delivery thread of
 * `moat start`. The thread speaks a small protocol: it posts { type: 'ready' } once it works
 * (or { type: 'failed', error } and exits), and on { type: 'stop' } it finishes and exits.
 * Anything else it posts goes to onMessage (figures for the heartbeat).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';

export interface SuperviseOptions {
  /** Prefix of the log events: "<name>.thread_started", "<name>.thread_exit", … */
  readonly name: string;
  readonly entry: URL;
  readonly workerData: unknown;
  readonly log: Logger;
  readonly onMessage?: (message: { readonly type: string }) => void;
  readonly restartDelayMs?: number;
  /** How long stop() waits for the thread to finish before it terminates it. */
  readonly stopTimeoutMs?: number;
}

export interface SupervisedThread {
  /** The running thread's id (-1 while it is being started again). */
  threadId(): number;
  /** Posts a message to the running thread (dropped while it is being started again). */
  post(message: { readonly type: string }): void;
  stop(): Promise<void>;
}

interface Running {
  readonly worker: Worker;
  readonly exited: Promise<void>;
}

/** Starts the thread; rejects if it does not come up (failed, or exited before ready). */
export async function superviseThread(options: SuperviseOptions): Promise<SupervisedThread> {
  const { log, name } = options;
  let stopping = false;
  /** The thread that is running now; null between a death and its restart. */
  let current: Running | null = null;
  let restarting: Promise<void> = Promise.resolve();

  const spawn = (): Promise<Running> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(options.entry, { workerData: options.workerData });
      const exited = new Promise<void>((done) => worker.once('exit', () => done()));
      let ready = false;
      worker.on('message', (message: { type: string; error?: string }) => {
        if (message.type === 'failed') reject(new Error(message.error));
        else if (message.type === 'ready') {
          ready = true;
          current = { worker, exited };
          resolve(current);
        } else options.onMessage?.(message);
      });
      worker.on('error', (err) => {
        log.error({ event: `${name}.thread_error`, err }, `the ${name} thread failed`);
        if (!ready) reject(err);
      });
      worker.on('exit', (code) => {
        if (current?.worker === worker) current = null;
        if (!ready) return reject(new Error(`the thread exited (${code}) before it was ready`));
        if (stopping) return;
        log.error({ event: `${name}.thread_exit`, code }, `the ${name} thread stopped; starting it again`);
        restarting = sleep(options.restartDelayMs ?? 1000).then(async () => {
          if (stopping) return;
          await spawn().then(
            (next) =>
              log.info({ event: `${name}.thread_started`, threadId: next.worker.threadId }, 'started again'),
            (err: unknown) =>
              log.fatal({ event: `${name}.thread_restart_failed`, err }, `the ${name} thread did not start`),
          );
        });
      });
    });

  const first = await spawn();
  log.info({ event: `${name}.thread_started`, threadId: first.worker.threadId }, `${name} thread started`);
  return {
    threadId: () => current?.worker.threadId ?? -1,
    post: (message) => current?.worker.postMessage(message),
    async stop() {
      stopping = true;
      await restarting; // a restart under way finishes first; its thread is then stopped
      const running = current;
      if (running === null) return;
      running.worker.postMessage({ type: 'stop' });
      const timer = setTimeout(() => void running.worker.terminate(), options.stopTimeoutMs ?? 40_000);
      await running.exited;
      clearTimeout(timer);
    },
  };
}
