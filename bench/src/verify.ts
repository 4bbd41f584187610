/**
 * The check that goes with every end-to-end figure: after the measured run, a sample of
 * messages relayed through the system under test must reach the next hop byte-identical, once
 * the relay's own Received: header is taken off. The sample is made to catch what a relay gets
 * wrong: lines that start with a dot or are only a dot, 998-octet lines, blank lines, tabs and
 * trailing spaces, and a body of its own in each message.
 */
import { randomBytes } from 'node:crypto';
import { dotStuff, expectCode, RawSmtp, type SinkMessage, withoutFirstReceived } from '@moat/testkit';

/** Moat routes this domain to the verifying sink, not to smtp-sink. */
export const VERIFY_DOMAIN = 'verify.example.com';

export function sampleMessage(index: number, size: number): Buffer {
  const lines = [
    `From: <bench@example.net>`,
    `To: <check${index}@${VERIFY_DOMAIN}>`,
    `Subject: sample ${index}`,
    'Date: Sat, 28 Nov 2026 12:00:00 +0000',
    `Message-ID: <sample-${index}-${randomBytes(6).toString('hex')}@example.net>`,
    '',
    '.a line that starts with a dot',
    '.',
    '..',
    `\tindented with a tab, trailing spaces   `,
    '',
    'x'.repeat(998),
  ];
  let length = lines.reduce((sum, l) => sum + l.length + 2, 0);
  while (length < size) {
    const line = randomBytes(57).toString('base64');
    lines.push(line);
    length += line.length + 2;
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n`, 'latin1');
}

/**
 * Sends `count` sample messages through the relay on `port` and waits for `received` (the
 * verifying sink's messages) to hold them; throws naming the first one that differs.
 */
export async function verifySample(
  port: number,
  received: () => readonly SinkMessage[],
  opts: { count: number; size: number; timeoutMs?: number },
): Promise<number> {
  const sent = new Map<string, Buffer>();
  const client = await RawSmtp.connect({ port, timeoutMs: 30_000 });
  try {
    expectCode(await client.cmd('EHLO verify.example.net'), '250', 'EHLO');
    for (let i = 0; i < opts.count; i++) {
      const message = sampleMessage(i, opts.size);
      sent.set(`check${i}@${VERIFY_DOMAIN}`, message);
      expectCode(
        await client.send('bench@example.net', [`check${i}@${VERIFY_DOMAIN}`], dotStuff(message)),
        '250',
        'end of DATA',
      );
    }
  } finally {
    await client.quit({ wait: false });
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  while (received().length < opts.count) {
    if (Date.now() > deadline)
      throw new Error(`only ${received().length} of ${opts.count} sample messages arrived`);
    await new Promise((r) => setTimeout(r, 20));
  }
  for (const message of received()) {
    const rcpt = message.rcptTo[0] ?? '';
    const original = sent.get(rcpt);
    if (!original) throw new Error(`a sample message arrived for ${rcpt}, which was not sent`);
    if (!withoutFilterFields(withoutFirstReceived(message.raw).rest).equals(original)) {
      throw new Error(`the sample message to ${rcpt} arrived changed (beyond the Received: header)`);
    }
  }
  if (received().length !== opts.count)
    throw new Error(`${received().length} sample messages arrived for ${opts.count} sent`);
  return opts.count;
}

/** The header fields Moat's filters put on top of a message (docs/filters.md), nothing else. */
const FILTER_FIELDS =
  /^(x-virus-status|x-spam-status|x-spam-score|x-spam-flag|authentication-results|received-spf):/i;

/** The message without the filter fields Moat prepended after its Received: (with folded lines). */
function withoutFilterFields(raw: Buffer): Buffer {
  let rest = raw;
  while (FILTER_FIELDS.test(rest.subarray(0, 40).toString('latin1'))) {
    let end = rest.indexOf('\r\n');
    while (end !== -1 && (rest[end + 2] === 0x20 || rest[end + 2] === 0x09))
      end = rest.indexOf('\r\n', end + 2);
    if (end === -1) break;
    rest = rest.subarray(end + 2);
  }
  return rest;
}
