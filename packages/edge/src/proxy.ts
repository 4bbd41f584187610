/**
 * PROXY protocol v2 (binary) for load balancers that send it: smtp-server reads v1 (text)
 * headers itself, so a v2 header is read here and handed on as the equivalent v1 line.
 * A connection that starts with anything else goes to smtp-server untouched (it refuses a
 * missing header when useProxy is on). Only the trusted load balancers may connect at all:
 * anyone else could send a header claiming to be a trusted client.
 */
import type { Server, Socket } from 'node:net';
import { type Cidr, ipInAny } from '@moat/policy';

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_HEADER_LENGTH = 16;

/** Wrap the server's connection listener so v2 headers are translated first. */
export function acceptProxyV2(server: Server, trusted: readonly Cidr[]): void {
  const listeners = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    if (!ipInAny(socket.remoteAddress ?? '', trusted)) {
      socket.destroy();
      return;
    }
    readHeader(socket).then(
      (prefix) => {
        if (prefix.length > 0) socket.unshift(prefix);
        for (const listener of listeners) listener.call(server, socket);
      },
      () => socket.destroy(),
    );
  });
}

/** Reads enough to tell v2 from anything else; returns the bytes to put back in front. */
function readHeader(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error('no PROXY header in time')), 10_000);
    const done = (prefix: Buffer) => {
      cleanup();
      resolve(prefix);
    };
    const fail = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('end', onEnd);
      socket.pause();
    };
    const onEnd = () => fail(new Error('connection ended before the PROXY header'));
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const probe = buffered.subarray(0, Math.min(buffered.length, V2_SIGNATURE.length));
      if (!V2_SIGNATURE.subarray(0, probe.length).equals(probe)) return done(buffered);
      if (buffered.length < V2_HEADER_LENGTH) return;
      const length = buffered.readUInt16BE(14);
      if (buffered.length < V2_HEADER_LENGTH + length) return;
      const v1 = toV1(buffered.subarray(0, V2_HEADER_LENGTH + length));
      if (v1 === null) return fail(new Error('unsupported PROXY v2 header'));
      done(Buffer.concat([Buffer.from(v1, 'latin1'), buffered.subarray(V2_HEADER_LENGTH + length)]));
    };
    socket.on('data', onData);
    socket.once('error', fail);
    socket.once('end', onEnd);
  });
}

/** The v1 line for a v2 header: "PROXY TCP4 src dst sport dport\r\n", or "PROXY UNKNOWN\r\n" for LOCAL. */
export function toV1(header: Buffer): string | null {
  const versionCommand = header[12] ?? 0;
  if (versionCommand >> 4 !== 2) return null;
  const command = versionCommand & 0x0f;
  if (command === 0) return 'PROXY UNKNOWN\r\n';
  if (command !== 1) return null;
  const family = (header[13] ?? 0) >> 4;
  const body = header.subarray(V2_HEADER_LENGTH);
  if (family === 1 && body.length >= 12) {
    const ip = (o: number) => [...body.subarray(o, o + 4)].join('.');
    return `PROXY TCP4 ${ip(0)} ${ip(4)} ${body.readUInt16BE(8)} ${body.readUInt16BE(10)}\r\n`;
  }
  if (family === 2 && body.length >= 36) {
    const ip = (o: number) => {
      const parts: string[] = [];
      for (let i = 0; i < 16; i += 2) parts.push(body.readUInt16BE(o + i).toString(16));
      return parts.join(':');
    };
    return `PROXY TCP6 ${ip(0)} ${ip(16)} ${body.readUInt16BE(32)} ${body.readUInt16BE(34)}\r\n`;
  }
  return 'PROXY UNKNOWN\r\n';
}
