/**
 * A deliberately lenient SMTP server, the kind the 2023 SMTP smuggling research fooled: it
 * takes a bare LF as the end of a command line, and it ends DATA at a lone "." between any
 * two line endings it can find: "<LF>.<LF>", "<LF>.<CRLF>", "<CR>.<CR>", "<CRLF>.<LF>", … as
 * well as the real "<CRLF>.<CRLF>". Whatever follows the end it found is read as commands, so
 * "MAIL FROM / RCPT TO / DATA" hidden in a body becomes a second, smuggled message.
 *
 * Never use it for anything but being fooled: it records every message it thinks it got.
 */
import net from 'node:net';

export interface LenientMessage {
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  /** The DATA bytes before the end it found, as they came over the wire (still dot-stuffed). */
  readonly raw: string;
  /** The lines of `raw` (split at any line ending), dot-unstuffed. */
  readonly lines: readonly string[];
}

export interface LenientServer {
  readonly port: number;
  readonly messages: LenientMessage[];
  close(): Promise<void>;
}

/** A lone dot between two line endings of any kind. */
const LENIENT_END = /(?:\r\n|\n|\r)\.(?:\r\n|\n|\r)/;

export async function startLenientServer(): Promise<LenientServer> {
  const messages: LenientMessage[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setEncoding('latin1');
    let buffer = '';
    let inData = false;
    let mailFrom: string | null = null;
    let rcptTo: string[] = [];
    const say = (line: string) => socket.write(`${line}\r\n`, 'latin1');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (;;) {
        if (inData) {
          // The DATA command's own line ending counts as the line ending before a first "." line.
          const found = LENIENT_END.exec(`\n${buffer}`);
          if (!found) return;
          // A final CR may be the first half of a CRLF still on its way: wait for the next byte.
          if (found[0].endsWith('\r') && found.index + found[0].length === buffer.length + 1) return;
          const raw = buffer.slice(0, Math.max(0, found.index - 1));
          buffer = buffer.slice(found.index - 1 + found[0].length);
          const lines =
            raw === '' ? [] : raw.split(/\r\n|\n|\r/).map((l) => (l.startsWith('.') ? l.slice(1) : l));
          messages.push({ mailFrom: mailFrom ?? '', rcptTo, raw, lines });
          inData = false;
          mailFrom = null;
          rcptTo = [];
          say(`250 2.0.0 Ok: message ${messages.length} queued`);
          continue;
        }
        const eol = buffer.indexOf('\n');
        if (eol < 0) return;
        const line = buffer.slice(0, eol).replace(/\r$/, '');
        buffer = buffer.slice(eol + 1);
        if (line === '') continue;
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') say('250 lenient.test');
        else if (verb === 'MAIL') {
          mailFrom = /<([^>]*)>/.exec(line)?.[1] ?? '';
          rcptTo = [];
          say('250 2.1.0 Ok');
        } else if (verb === 'RCPT') {
          rcptTo.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
          say('250 2.1.5 Ok');
        } else if (verb === 'DATA') {
          inData = true;
          say('354 End data with <CR><LF>.<CR><LF>');
        } else if (verb === 'RSET') {
          mailFrom = null;
          rcptTo = [];
          say('250 2.0.0 Ok');
        } else if (verb === 'NOOP') say('250 2.0.0 Ok');
        else if (verb === 'QUIT') {
          say('221 2.0.0 Bye');
          socket.end();
          return;
        } else say('502 5.5.2 Command not recognized');
      }
    });
    say('220 lenient.test ESMTP');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('lenient server: no TCP address');
  return {
    port: address.port,
    messages,
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
