/**
 * A relayed message split at the end of its first header field when that is a Received: (the
 * relay's own, with its folded lines): what the tests and the bench compare byte for byte.
 */
export function withoutFirstReceived(raw: Buffer): { received: string; rest: Buffer } {
  if (!/^received:/i.test(raw.subarray(0, 9).toString('latin1'))) return { received: '', rest: raw };
  let end = raw.indexOf('\r\n');
  while (end !== -1 && (raw[end + 2] === 0x20 || raw[end + 2] === 0x09)) end = raw.indexOf('\r\n', end + 2);
  if (end === -1) return { received: '', rest: raw };
  return { received: raw.subarray(0, end + 2).toString('latin1'), rest: raw.subarray(end + 2) };
}
