/**
 * Test helpers (this package's and, through the source-only export "@moat/spool/test-queue",
 * other packages' tests): put queued jobs into the states a real worker leaves them in.
 */
import type { RedisClient } from './connection.js';
import type { Spool } from './spool.js';
import { deferJob, startRouteWorker } from './workers.js';

export type WorkerVerdict =
  | {
      readonly defer: number;
      readonly reply?: { code: number; text: string; host?: string };
      /** Also write the "deferred" tracking event a real worker writes. */
      readonly track?: boolean;
    }
  | { readonly fail: string };

/**
 * Run a real worker on a route until `count` jobs have been taken, deferring or failing each
 * as `verdict` says, then stop it. Jobs are left deferred (with a last reply) or failed.
 */
export async function workOnce(
  spool: Spool,
  connection: RedisClient,
  routeId: string,
  count: number,
  verdict: WorkerVerdict,
  partition = 0,
): Promise<void> {
  let taken = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const worker = startRouteWorker(
    spool.partitionKeys(partition),
    routeId,
    async (job, token) => {
      taken += 1;
      if (taken >= count) setImmediate(done);
      if ('fail' in verdict) throw new Error(verdict.fail);
      const { reply } = verdict;
      if (verdict.track && reply) {
        await spool.track({
          type: 'deferred',
          messageId: job.data.messageId,
          routeId,
          recipients: job.data.recipients,
          ...(reply.host ? { host: reply.host } : {}),
          reply: `${reply.code} ${reply.text}`,
        });
      }
      await deferJob(job, token, verdict.defer, {
        ...job.data,
        attempts: job.data.attempts + 1,
        lastReply: verdict.reply,
      });
    },
    { connection, concurrency: 1 },
  );
  await finished;
  await worker.close();
}
