import { Writable } from 'node:stream';
import pino from 'pino';
import { expect, test } from 'vitest';
import { lazyChild } from './lazy-log.js';

function logger(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  const log = pino({ level, base: null }, sink);
  let children = 0;
  // Counts every child made from this logger or its children (they inherit the method).
  const original = log.child;
  log.child = function (this: typeof log, ...args: Parameters<typeof log.child>) {
    children++;
    return original.apply(this, args);
  } as typeof log.child;
  return { log, lines, children: () => children };
}

test('lines below the level make no child; a line at the level carries both bindings', async () => {
  const { log, lines, children } = logger('warn');
  const session = lazyChild(log, () => ({ session: 's1' }));
  const txn = lazyChild(session, () => ({ txn: 1, messageId: 'm1' }));
  txn.info({ event: 'edge.queued' });
  session.debug({ event: 'edge.connect' });
  expect(txn.isLevelEnabled('info')).toBe(false);
  expect(children()).toBe(0);
  txn.warn({ event: 'edge.rejected' }, 'refused');
  await new Promise((r) => setImmediate(r));
  expect(children()).toBe(2); // the session's child, then the transaction's made from it
  expect(lines).toEqual([
    expect.objectContaining({
      session: 's1',
      txn: 1,
      messageId: 'm1',
      event: 'edge.rejected',
      msg: 'refused',
    }),
  ]);
});

test('at info level the same calls write, each with its bindings', async () => {
  const { log, lines } = logger('info');
  const session = lazyChild(log, () => ({ session: 's2' }));
  const txn = lazyChild(session, () => ({ txn: 2 }));
  session.info({ event: 'a' });
  txn.info({ event: 'b' });
  await new Promise((r) => setImmediate(r));
  expect(lines.map((l) => [l.event, l.session, l.txn])).toEqual([
    ['a', 's2', undefined],
    ['b', 's2', 2],
  ]);
});

test('setting the level of a lazy child changes the child, not its parent', () => {
  const { log } = logger('warn');
  const child = lazyChild(log, () => ({ session: 's3' }));
  expect(child.isLevelEnabled('debug')).toBe(false);
  child.level = 'debug';
  expect(child.isLevelEnabled('debug')).toBe(true);
  expect(log.level).toBe('warn');
  expect(log.isLevelEnabled('debug')).toBe(false);
});
