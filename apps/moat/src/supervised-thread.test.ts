/** The supervisor with real worker threads (test/thread-fixture.mjs). */
import { Writable } from 'node:stream';
import pino from 'pino';
import { expect, test } from 'vitest';
import { superviseThread } from './supervised-thread.js';

const ENTRY = new URL('../test/thread-fixture.mjs', import.meta.url);

interface Message {
  readonly type: string;
  readonly threadId?: number;
}

function setup(options: Record<string, unknown> = {}, stopTimeoutMs?: number) {
  const workerData = { ...options, counter: new SharedArrayBuffer(4) };
  const events: string[] = [];
  let exits = 0;
  const log = pino(
    { base: null },
    new Writable({
      write(chunk, _encoding, done) {
        events.push(String((JSON.parse(String(chunk)) as { event: string }).event));
        done();
      },
    }),
  );
  const messages: Message[] = [];
  const start = () =>
    superviseThread({
      name: 'test',
      entry: ENTRY,
      workerData,
      log,
      restartDelayMs: 100,
      ...(stopTimeoutMs ? { stopTimeoutMs } : {}),
      onMessage: (m) => messages.push(m),
      onExit: () => {
        exits++;
      },
    });
  const hellos = () => messages.filter((m) => m.type === 'hello').map((m) => m.threadId);
  return { start, events, messages, hellos, exits: () => exits };
}

test('a thread that dies is started again; stop() then stops the new one', async () => {
  const { start, events, messages, hellos, exits } = setup();
  const thread = await start();
  const first = thread.threadId();
  expect(first).toBeGreaterThan(0);
  thread.post({ type: 'crash' });
  await expect.poll(() => hellos().length, { timeout: 5000 }).toBe(2);
  const second = thread.threadId();
  expect(second).toBeGreaterThan(0);
  expect(second).not.toBe(first);
  expect(hellos()).toEqual([first, second]);
  expect(events).toEqual([
    'test.thread_started',
    'test.thread_error',
    'test.thread_exit',
    'test.thread_started',
  ]);
  expect(exits()).toBe(1);
  await thread.stop();
  expect(messages.at(-1)).toEqual({ type: 'stopped', threadId: second });
  expect(exits()).toBe(2);
  expect(thread.threadId()).toBe(-1);
});

test('stop() while a dead thread waits for its restart: none is started, stop() returns', async () => {
  const { start, events, hellos } = setup();
  const thread = await start();
  thread.post({ type: 'crash' });
  await expect.poll(() => thread.threadId(), { timeout: 5000 }).toBe(-1); // dead, restart pending
  await thread.stop();
  await new Promise((r) => setTimeout(r, 300)); // past the restart delay
  expect(hellos()).toHaveLength(1);
  expect(events.filter((e) => e === 'test.thread_started')).toHaveLength(1);
  expect(thread.threadId()).toBe(-1);
});

test('a thread that cannot start makes start fail with its reason', async () => {
  const { start } = setup({ failStarts: [0] });
  await expect(start()).rejects.toThrow('generation 0 told to fail');
});

test('a thread that does not finish in time is terminated', async () => {
  const { start, messages } = setup({ stopDelayMs: 60_000 }, 300);
  const thread = await start();
  const began = Date.now();
  await thread.stop();
  expect(Date.now() - began).toBeLessThan(5000);
  expect(messages.some((m) => m.type === 'stopped')).toBe(false);
});

test('restarts that fail are tried again, later each time, until one comes up', async () => {
  const { start, events, hellos } = setup({ failStarts: [1, 2] });
  const thread = await start();
  thread.post({ type: 'crash' });
  await expect.poll(() => hellos().length, { timeout: 5000 }).toBe(2);
  expect(events.filter((e) => e === 'test.thread_restart_failed')).toHaveLength(2);
  expect(events.at(-1)).toBe('test.thread_started');
  await thread.stop();
});

test('stop() while a restarted thread never gets ready ends it within the stop timeout', async () => {
  const { start, hellos } = setup({ hangStarts: [1] }, 300);
  const thread = await start();
  thread.post({ type: 'crash' });
  await new Promise((r) => setTimeout(r, 400)); // past the restart delay: generation 1 is starting
  const began = Date.now();
  await thread.stop();
  expect(Date.now() - began).toBeLessThan(3000);
  expect(hellos()).toHaveLength(1);
  expect(thread.threadId()).toBe(-1);
});
