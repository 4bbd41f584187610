/**
 * The ledger must see a loss, or no chaos scenario could fail. Against a real SMTP sink standing
 * in for an edge (its 250 is the acknowledgement, what it keeps is what was "delivered"), with a
 * closed port beside it and refusals the clients must retry; then with a reception taken away.
 */
import { freePort, type SmtpSink, startSmtpSink } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type Attempt,
  assertNothingLost,
  formatTally,
  Ledger,
  messageIdOf,
  receivedIds,
  startLoad,
} from './ledger.js';

const attempt = (messageId: string, code: string, at: number, step: Attempt['step'] = 'end-of-data') => ({
  messageId,
  port: 2525,
  started: at - 5,
  dataSent: step === 'end-of-data' ? at - 1 : Number.NaN,
  ended: at,
  step,
  code,
  text: code,
});

describe('Ledger', () => {
  test('an acknowledged message nobody received is lost, and the scenario fails', () => {
    const ledger = new Ledger();
    for (const id of ['a', 'b', 'c', 'd']) ledger.begin(id);
    ledger.record(attempt('a', '250', 100));
    ledger.record(attempt('b', '451', 110));
    ledger.record(attempt('b', '250', 120));
    ledger.record(attempt('c', '250', 130));
    ledger.record(attempt('d', '452', 140, 'mail'));
    // a twice, b once, c never; d was never acknowledged but arrived (stored, reply lost).
    const tally = ledger.tally(['a', 'a', 'b', 'd', 'someone-else']);
    expect(tally).toEqual({
      sent: 4,
      acknowledged: 3,
      delivered: 3,
      duplicates: 1,
      lost: 1,
      lostIds: ['c'],
      deliveredUnacknowledged: 1,
      refusals: 2,
    });
    expect(formatTally('unit', tally)).toMatch(
      /^unit: sent 4 \/ acknowledged 3 \/ delivered 3 \/ duplicates 1 \/ lost 1 /,
    );
    expect(() => assertNothingLost('unit', tally)).toThrow(
      /unit: 1 acknowledged message\(s\) never delivered: c/,
    );
    expect(() => assertNothingLost('unit', ledger.tally(['a', 'b', 'c']))).not.toThrow();
  });

  test('outage: from the first refusal after a moment to the first acknowledgement sent after it', () => {
    const ledger = new Ledger();
    for (const id of ['a', 'b', 'c', 'd']) ledger.begin(id);
    ledger.record(attempt('a', '250', 1000));
    ledger.record(attempt('b', '451', 2000));
    ledger.record(attempt('c', 'cut', 2500, 'connect'));
    // Its DATA was written before the first refusal: it does not end the outage.
    ledger.record({ ...attempt('d', '250', 2600), dataSent: 1990 });
    ledger.record(attempt('b', '250', 4000));
    expect(ledger.outage(1500)).toEqual({ firstRefusal: 2000, firstAcceptance: 4000, ms: 2000 });
    expect(ledger.outage(5000)).toBeNull();
    expect(ledger.replies(1500)).toBe('250@end-of-data: 2, 451@end-of-data: 1, cut@connect: 1');
  });

  test('a Message-ID is read from the header only', () => {
    const raw = Buffer.from('Received: x\r\nMessage-ID: <m-1@chaos.test>\r\n\r\nMessage-ID: <body@x>\r\n');
    expect(messageIdOf(raw)).toBe('m-1@chaos.test');
    expect(messageIdOf(Buffer.from('Subject: none\r\n\r\nMessage-ID: <body@x>\r\n'))).toBeNull();
  });
});

describe('startLoad against a real SMTP server', () => {
  let sink: SmtpSink;
  let closedPort: number;
  let mails = 0;
  let datas = 0;

  beforeAll(async () => {
    closedPort = await freePort();
    sink = await startSmtpSink({
      tls: false,
      // Every fourth MAIL and every fifth DATA refused: the clients must retry them.
      onMailFrom: () => (++mails % 4 === 0 ? { code: 452, message: '4.3.1 Full' } : undefined),
      onData: () => (++datas % 5 === 0 ? { code: 451, message: '4.3.0 Later' } : undefined),
    });
  });
  afterAll(() => sink?.close());

  test('bounded in count: retries refusals and a closed port until each message is acknowledged', async () => {
    const load = startLoad({
      name: 'unit',
      ports: () => [sink.port, closedPort],
      clients: 3,
      maxMessages: 30,
      durationMs: 20_000,
      retry: { attempts: 10, delayMs: 20 },
    });
    await load.done;
    const { ledger } = load;
    const tally = ledger.tally(receivedIds([sink]));
    console.log(formatTally('ledger self-test', tally), `replies: ${ledger.replies()}`);
    expect(tally.sent).toBe(30);
    expect(tally.acknowledged).toBe(30);
    expect(tally.lost).toBe(0);
    expect(ledger.replies()).toMatch(/cut@connect/);
    expect(ledger.replies()).toMatch(/452@mail/);
    expect(ledger.replies()).toMatch(/451@end-of-data/);
    // Every acknowledgement came from the sink, never from the closed port.
    expect(ledger.attempts.filter((a) => a.code === '250' && a.port !== sink.port)).toEqual([]);

    // One reception taken away: the ledger says which message was lost.
    const received = receivedIds([sink]);
    const removed = received.splice(7, 1)[0];
    const lossy = ledger.tally(received);
    expect(lossy.lost).toBe(1);
    expect(lossy.lostIds).toEqual([removed]);
    expect(() => assertNothingLost('lossy', lossy)).toThrow(/1 acknowledged message\(s\) never delivered/);
  });

  test('bounded in time: stops by itself, and what it did not get acknowledged is not counted', async () => {
    const started = Date.now();
    const load = startLoad({
      name: 'timed',
      ports: () => [closedPort],
      clients: 2,
      maxMessages: 1_000_000,
      durationMs: 500,
      graceMs: 300,
      retry: { attempts: 1000, delayMs: 50 },
    });
    await load.done;
    expect(Date.now() - started).toBeLessThan(3000);
    const tally = load.ledger.tally([]);
    expect(tally.sent).toBeGreaterThan(0);
    expect(tally.acknowledged).toBe(0);
    expect(tally.lost).toBe(0);
  });
});
