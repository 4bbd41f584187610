import net from 'node:net';

// The machine's own Redis lives here; a fixture must never hand it out, even if it is down.
const RESERVED = new Set([6379]);

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, picked by the kernel (bind to port 0).
 * There is a small window in which another process could take it; for servers that can
 * listen on port 0 themselves (smtp-server, dgram) prefer that and read the port back.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => {
          if (address && typeof address === 'object') resolve(address.port);
          else reject(new Error('freePort: listener has no TCP address'));
        });
      });
    });
    if (!RESERVED.has(port)) return port;
  }
}
