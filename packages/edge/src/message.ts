/**
 * What the edge does to a message body: line endings made canonical (CRLF only, so no next
 * hop can read a bare CR or LF as a line end: the 2023 SMTP smuggling class), and the facts
 * it needs from the header block (Received: count for loop detection, Message-ID, Date).
 */

const CR = 0x0d;
const LF = 0x0a;

/** Whether the body has a CR not followed by LF, or an LF not preceded by CR. */
function hasBareEnding(body: Buffer): boolean {
  // Native searches jump from line end to line end; the bytes between are never touched in JS.
  for (let i = body.indexOf(LF); i >= 0; i = body.indexOf(LF, i + 1)) {
    if (i === 0 || body[i - 1] !== CR) return true;
  }
  for (let i = body.indexOf(CR); i >= 0; i = body.indexOf(CR, i + 1)) {
    if (body[i + 1] !== LF) return true;
  }
  return false;
}

/** Replace every bare CR and bare LF with CRLF. Returns the same buffer when there is none. */
export function canonicalLineEndings(body: Buffer): Buffer {
  if (!hasBareEnding(body)) return body;
  const out = Buffer.allocUnsafe(body.length * 2);
  let o = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as number;
    if (c === LF && (i === 0 || body[i - 1] !== CR)) {
      out[o++] = CR;
      out[o++] = LF;
    } else if (c === CR && body[i + 1] !== LF) {
      out[o++] = CR;
      out[o++] = LF;
    } else {
      out[o++] = c;
    }
  }
  return out.subarray(0, o);
}

export interface HeaderFacts {
  readonly received: number;
  readonly hasMessageId: boolean;
  readonly hasDate: boolean;
}

/** Facts from the header block (everything before the first empty line). Expects CRLF endings. */
export function headerFacts(body: Buffer): HeaderFacts {
  const end = body.indexOf('\r\n\r\n');
  const head = body.subarray(0, end < 0 ? body.length : end + 2).toString('latin1');
  let received = 0;
  let hasMessageId = false;
  let hasDate = false;
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0 || line[0] === ' ' || line[0] === '\t') continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === 'received') received++;
    else if (name === 'message-id') hasMessageId = true;
    else if (name === 'date') hasDate = true;
  }
  return { received, hasMessageId, hasDate };
}
