/** Why the spool could not take a message. The edge maps both to temporary (4xx) replies. */

/** Redis is unreachable, slow past the deadline, or not replicated in time (451 4.3.0). */
export class SpoolUnavailableError extends Error {
  override readonly name = 'SpoolUnavailableError';
}

/** Redis memory is past the back-pressure threshold (452 4.3.1). */
export class SpoolFullError extends Error {
  override readonly name = 'SpoolFullError';
}

/** Run `work` with a deadline; past it, reject with SpoolUnavailableError (the work may still finish). */
export async function withDeadline<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SpoolUnavailableError(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } catch (err) {
    if (err instanceof SpoolUnavailableError || err instanceof SpoolFullError) throw err;
    throw new SpoolUnavailableError(`${what} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
