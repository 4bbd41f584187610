/**
 * A TCP proxy on 127.0.0.1 in front of a real daemon (clamd, rspamd, spamd, Redis…), for
 * fault tests: the client under test talks to the proxy's port, and the test decides how each
 * new connection fares. The mode is read when a connection arrives, so changing
 * `proxy.mode` affects the next connections, not those already open.
 *
 *   'pass'       forwards both ways, like no proxy at all
 *   'cut-reply'  forwards the request, then gives the client only the first `cutAfterBytes`
 *                bytes of the daemon's reply (default 1) and closes the client connection
 *   'refuse'     accepts, then resets the connection at once (the client sees ECONNRESET / EOF)
 *   'garbage'    answers the client with `garbage` and closes, never contacting the target
 */
import net from 'node:net';
import { HOST } from './daemon.js';

export type ProxyMode = 'pass' | 'cut-reply' | 'refuse' | 'garbage';

export interface TcpProxyOptions {
  readonly target: { readonly host: string; readonly port: number };
  /** Default 'pass'. */
  readonly mode?: ProxyMode;
  /** 'cut-reply': how many bytes of the reply get through (default 1). */
  readonly cutAfterBytes?: number;
  /** 'garbage': what the client gets (default `GARBAGE\r\n`). */
  readonly garbage?: string | Buffer;
}

export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /** How the next connections are treated; assignable at any time. */
  mode: ProxyMode;
  cutAfterBytes: number;
  garbage: string | Buffer;
  /** Connections accepted so far (all modes). */
  readonly connections: number;
  /** Connections open right now. */
  readonly open: number;
  /** Stops listening and destroys every open connection. Idempotent. */
  close(): Promise<void>;
}

/** After cutting a client off, how long to drain what it still sends before destroying it. */
const DRAIN_MS = 1000;

export async function startTcpProxy(opts: TcpProxyOptions): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const clients = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      clients.delete(socket);
    });
    // Errors on either side just end the pair; they must not crash the test process.
    socket.on('error', () => {});
  };
  const state = {
    mode: opts.mode ?? ('pass' as ProxyMode),
    cutAfterBytes: opts.cutAfterBytes ?? 1,
    garbage: opts.garbage ?? ('GARBAGE\r\n' as string | Buffer),
    connections: 0,
  };

  const server = net.createServer((client) => {
    state.connections++;
    track(client);
    clients.add(client);
    const mode = state.mode;
    if (mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    if (mode === 'garbage') {
      endAndDrain(client, state.garbage);
      return;
    }
    const upstream = net.connect({ host: opts.target.host, port: opts.target.port });
    track(upstream);
    // Either side going away takes the other with it (a target that is down: accept, then EOF).
    upstream.once('close', () => {
      if (!client.destroyed && !client.writableEnded) client.end();
    });
    client.once('close', () => upstream.destroy());
    client.pipe(upstream);
    if (mode === 'pass') {
      upstream.pipe(client);
      return;
    }
    // cut-reply: let `cutAfterBytes` of the reply through, then close the client.
    let left = Math.max(0, state.cutAfterBytes);
    let cut = false;
    const cutOff = (last: Buffer) => {
      cut = true;
      client.unpipe(upstream);
      upstream.destroy();
      endAndDrain(client, last);
    };
    if (left === 0) {
      upstream.once('data', () => cutOff(Buffer.alloc(0)));
      return;
    }
    upstream.on('data', (chunk: Buffer) => {
      if (cut) return;
      if (chunk.length < left) {
        client.write(chunk);
        left -= chunk.length;
        return;
      }
      cutOff(chunk.subarray(0, left));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('startTcpProxy: listener has no TCP address');

  let closed: Promise<void> | undefined;
  return {
    host: HOST,
    port: address.port,
    get mode() {
      return state.mode;
    },
    set mode(mode: ProxyMode) {
      state.mode = mode;
    },
    get cutAfterBytes() {
      return state.cutAfterBytes;
    },
    set cutAfterBytes(n: number) {
      state.cutAfterBytes = n;
    },
    get garbage() {
      return state.garbage;
    },
    set garbage(value: string | Buffer) {
      state.garbage = value;
    },
    get connections() {
      return state.connections;
    },
    get open() {
      return clients.size;
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closed;
    },
  };
}

/**
 * Sends `last` and a FIN, then reads and drops whatever the client still sends (so the kernel
 * does not answer it with a reset that could discard the bytes just sent), destroying the
 * socket when the client closes its side or after DRAIN_MS.
 */
function endAndDrain(client: net.Socket, last: string | Buffer): void {
  client.end(last);
  client.resume();
  const timer = setTimeout(() => client.destroy(), DRAIN_MS);
  timer.unref();
  client.once('end', () => {
    clearTimeout(timer);
    client.destroy();
  });
  client.once('close', () => clearTimeout(timer));
}
