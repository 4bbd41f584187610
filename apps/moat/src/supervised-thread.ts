/**
 * A worker thread that is started again when it dies: used for the delivery thread of
 * `moat start`. The thread speaks a small protocol: it posts { type: 'ready' } once it works
 * (or { type: 'failed', error } and exits), and on { type: 'stop' } it finishes and exits.
 * Anything else it posts goes to onMessage (figures for the heartbeat, log lines).
 *
 * Restarts back off (1 s, 2 s, 4 s … 30 s) while threads fail to start or die young, and never
 * give up: a node whose delivery stopped for good would keep taking mail it never sends.
 * stop() is bounded by stopTimeoutMs, a thread still starting included.
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
  /** Called when the running thread is gone (died or stopped). */
  readonly onExit?: () => void;
  /** First restart delay; doubled for each thread in a row that fails or dies young, up to 30 s. */
  readonly restartDelayMs?: number;
  /** How long stop() waits for the thread to finish before it terminates it. */
  readonly stopTimeoutMs?: number;
}

export interface SupervisedThread {
  /** The running thread's id (-1 while it is being started again). */
  threadId(): number;
  /**
   * Posts a message to the running thread (dropped while it is being started again); what
   * `transfer` lists moves to the thread instead of being copied.
   */
  post(message: { readonly type: string }, transfer?: readonly ArrayBuffer[]): void;
  stop(): Promise<void>;
}

interface Thread {
  readonly worker: Worker;
  readonly exited: Promise<void>;
  readonly startedAt: number;
}

const MAX_RESTART_DELAY_MS = 30_000;
/** A thread that ran this long was healthy: the next restart starts from the first delay. */
const HEALTHY_AFTER_MS = 60_000;

/** Starts the thread; rejects if it does not come up (failed, or exited before ready). */
export async function superviseThread(options: SuperviseOptions): Promise<SupervisedThread> {
  const { log, name } = options;
  const baseDelay = options.restartDelayMs ?? 1000;
  const stopTimeout = options.stopTimeoutMs ?? 40_000;
  const stopped = new AbortController();
  /** The thread that is running now; null between a death and its restart. */
  let current: Thread | null = null;
  /** A thread created but not ready yet. */
  let starting: Thread | null = null;
  let restarting: Promise<void> = Promise.resolve();
  let failures = 0;

  const spawn = (): Promise<Thread> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(options.entry, { workerData: options.workerData });
      const thread: Thread = {
        worker,
        exited: new Promise<void>((done) => worker.once('exit', () => done())),
        startedAt: Date.now(),
      };
      starting = thread;
      let ready = false;
      worker.on('message', (message: { type: string; error?: string }) => {
        if (message.type === 'failed') reject(new Error(message.error));
        else if (message.type === 'ready') {
          ready = true;
          starting = null;
          current = thread;
          resolve(thread);
        } else options.onMessage?.(message);
      });
      worker.on('error', (err) => {
        log.error({ event: `${name}.thread_error`, err }, `the ${name} thread failed`);
        if (!ready) reject(err);
      });
      worker.on('exit', (code) => {
        if (starting === thread) starting = null;
        if (!ready) return reject(new Error(`the ${name} thread exited (${code}) before it was ready`));
        current = null;
        options.onExit?.();
        if (stopped.signal.aborted) return;
        failures = Date.now() - thread.startedAt < HEALTHY_AFTER_MS ? failures + 1 : 1;
        log.error({ event: `${name}.thread_exit`, code }, `the ${name} thread stopped; starting it again`);
        restarting = restart();
      });
    });

  const restart = async (): Promise<void> => {
    while (!stopped.signal.aborted) {
      const delay = Math.min(baseDelay * 2 ** Math.max(failures - 1, 0), MAX_RESTART_DELAY_MS);
      try {
        await sleep(delay, undefined, { signal: stopped.signal });
        const next = await spawn();
        log.info({ event: `${name}.thread_started`, threadId: next.worker.threadId }, 'started again');
        return;
      } catch (err) {
        if (stopped.signal.aborted) return;
        failures++;
        log.error({ event: `${name}.thread_restart_failed`, err }, `the ${name} thread did not start`);
      }
    }
  };

  const finish = async (thread: Thread, ask: boolean) => {
    if (ask) thread.worker.postMessage({ type: 'stop' });
    const timer = setTimeout(() => void thread.worker.terminate(), ask ? stopTimeout : 0);
    await thread.exited;
    clearTimeout(timer);
  };

  const first = await spawn();
  log.info({ event: `${name}.thread_started`, threadId: first.worker.threadId }, `${name} thread started`);
  return {
    threadId: () => current?.worker.threadId ?? -1,
    post: (message, transfer = []) => current?.worker.postMessage(message, [...transfer]),
    async stop() {
      stopped.abort(); // no new restart; a pending restart delay ends now
      const pending = starting;
      if (pending !== null) {
        // A restart under way: let it come up within the stop timeout, or end it.
        const up = await Promise.race([
          restarting.then(() => current === pending),
          sleep(stopTimeout, false, { ref: false }),
        ]);
        if (!up) return finish(pending, false);
      }
      await restarting;
      if (current !== null) await finish(current, true);
    },
  };
}
