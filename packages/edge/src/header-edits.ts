/**
 * The header edits filters ask for: remove fields (a forged Authentication-Results claiming
 * Moat's authserv-id, X-Spam-* from outside) and rewrite the Subject (Rspamd's rewrite
 * subject). The header block is parsed once, only when there is an edit; the body after it
 * is never copied more than the one time the new message is assembled.
 */

export interface HeaderEdits {
  readonly remove: ((name: string, value: string) => boolean) | null;
  readonly subject: string | null;
}

/** The message with the edits made; the same buffer when nothing changed. CRLF endings. */
export function editHeaders(message: Buffer, edits: HeaderEdits): Buffer {
  if (edits.remove === null && edits.subject === null) return message;
  const blankLine = message.indexOf('\r\n\r\n');
  const headEnd = blankLine < 0 ? message.length : blankLine + 2;
  const head = message.subarray(0, headEnd).toString('latin1');
  const fields: string[] = [];
  // Each field: a line that does not start with white space, and its folded continuations.
  for (const line of head.split(/(?<=\r\n)/)) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 0)
      fields[fields.length - 1] += line;
    else if (line !== '') fields.push(line);
  }
  let changed = false;
  let subjectDone = edits.subject === null;
  const kept: string[] = [];
  for (const field of fields) {
    const colon = field.indexOf(':');
    const name = colon > 0 ? field.slice(0, colon).trim() : '';
    const value = colon > 0 ? field.slice(colon + 1).replace(/\r\n$/, '') : '';
    if (name !== '' && edits.remove?.(name.toLowerCase(), value.trim())) {
      changed = true;
      continue;
    }
    if (!subjectDone && name.toLowerCase() === 'subject' && edits.subject !== null) {
      kept.push(`Subject: ${encodeHeaderText(edits.subject)}\r\n`);
      subjectDone = true;
      changed = true;
      continue;
    }
    kept.push(field);
  }
  if (!subjectDone && edits.subject !== null) {
    kept.push(`Subject: ${encodeHeaderText(edits.subject)}\r\n`);
    changed = true;
  }
  if (!changed) return message;
  return Buffer.concat([Buffer.from(kept.join(''), 'latin1'), message.subarray(headEnd)]);
}

/** Text for an unstructured header field: as it is when printable ASCII, else RFC 2047 (UTF-8, B). */
export function encodeHeaderText(text: string): string {
  const oneLine = text.replace(/[\r\n]+/g, ' ');
  if (/^[\x20-\x7e]*$/.test(oneLine)) return oneLine;
  // Encoded words of at most 75 characters (RFC 2047 §2): 45 bytes of UTF-8 each, whole characters.
  const words: string[] = [];
  let chunk = '';
  for (const ch of oneLine) {
    if (Buffer.byteLength(chunk + ch, 'utf8') > 45) {
      words.push(chunk);
      chunk = '';
    }
    chunk += ch;
  }
  if (chunk !== '') words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join('\r\n ');
}
