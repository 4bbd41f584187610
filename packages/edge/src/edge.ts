/**
 * The SMTP edge: one smtp-server per listen address, sharing one set of handlers, limits and
 * a spool. Graceful close: stop accepting, answer 421 to sessions that are not in DATA, let
 * those in DATA finish (bounded), then close what is left.
 */
import type { AddressInfo } from 'node:net';
import { compileRelayPolicy, type MoatConfig, parseCidr, Replies, replyText } from '@moat/policy';
import type { Counters, MemoryGuard, Spool } from '@moat/spool';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerResolver } from 'smtp-server';
import type { Filter, Signer } from './filters.js';
import { createHandlers } from './handlers.js';
import { ConnectionLimiter } from './limits.js';
import { acceptProxyV2 } from './proxy.js';
import type { SessionChecker } from './session-checks.js';
import type { SmtpReplyError } from './smtp-errors.js';
import type { EdgeSettings, QueuedHandler } from './state.js';
import { loadTls } from './tls.js';

export interface EdgeOptions {
  readonly config: Readonly<MoatConfig>;
  readonly spool: Spool;
  readonly log: Logger;
  readonly memory?: MemoryGuard;
  readonly filters?: readonly Filter[];
  /** DKIM signing of what leaves (outbound: allow-listed or authenticated clients). */
  readonly signer?: Signer | null;
  /** DNS lists, rate limits, recipient validation, greylisting. */
  readonly checker?: SessionChecker | null;
  /** Cluster-wide metrics: messages received, accepted, and refusals by reason. */
  readonly counters?: Counters;
  /** Reverse DNS through Moat's resolver (only used when smtp.reverseDns is on). */
  readonly resolver?: SMTPServerResolver;
  /** Listen here instead of config.smtp.listen (tests use port 0). */
  readonly listen?: readonly { host: string; port: number }[];
  /** Each message once it is durable (`moat start` hands the body to its own delivery). */
  readonly onQueued?: QueuedHandler;
}

export interface Edge {
  /** Where the edge listens (real ports, after listen()). */
  readonly addresses: readonly { host: string; port: number }[];
  /** Sessions open now. */
  sessions(): number;
  /**
   * A reloaded config (and the filters and checks built from it) for sessions that start from
   * now on; sessions already open keep theirs. What smtp-server was started with (listen
   * addresses, TLS, size, banner, timeouts) stays: those keys cannot change live.
   */
  reconfigure(next: {
    config: Readonly<MoatConfig>;
    filters?: readonly Filter[];
    signer?: Signer | null;
    checker?: SessionChecker | null;
  }): void;
  close(graceMs?: number): Promise<void>;
}

/** The minimal view of smtp-server's connection object that shutdown needs. */
interface Connection {
  readonly id: string;
  send(code: number, text: string): void;
  close(): void;
}

export async function startEdge(options: EdgeOptions): Promise<Edge> {
  const { config, log } = options;
  const policy = compileRelayPolicy(config);
  const tls = await loadTls(config.smtp.tls, config.hostname);
  if (tls.selfSigned)
    log.warn(
      { event: 'edge.tls_self_signed' },
      'no smtp.tls configured: STARTTLS uses a self-signed certificate',
    );
  const trustedProxies = config.smtp.trustedProxies.flatMap((text) => {
    const r = parseCidr(text);
    return r.ok ? [r.value] : [];
  });
  const limiter = new ConnectionLimiter(config.smtp.maxConnections, config.smtp.maxConnectionsPerClient);
  const servers: SMTPServer[] = [];
  let shuttingDown = false;

  const findConnection = (sessionId: string): Connection | undefined => {
    for (const server of servers) {
      for (const c of server.connections as unknown as Set<Connection>) if (c.id === sessionId) return c;
    }
    return undefined;
  };
  const disconnect = (sessionId: string, reply: SmtpReplyError) => {
    const c = findConnection(sessionId);
    if (c) {
      c.send(reply.responseCode, reply.message);
      c.close();
    }
  };

  let settings: EdgeSettings = {
    config,
    policy,
    filters: options.filters ?? [],
    signer: options.signer ?? null,
    checker: options.checker ?? null,
  };
  const handlers = createHandlers({
    settings: () => settings,
    spool: options.spool,
    log,
    limiter,
    memory: options.memory,
    counters: options.counters,
    onQueued: options.onQueued,
    isShuttingDown: () => shuttingDown,
    disconnect,
  });

  const addresses: { host: string; port: number }[] = [];
  for (const address of options.listen ?? config.smtp.listen) {
    const server = new SMTPServer({
      name: config.hostname,
      banner: config.smtp.banner,
      size: config.smtp.maxMessageSize,
      key: tls.key,
      cert: tls.cert,
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: true,
      allowInsecureAuth: config.smtp.allowInsecureAuth,
      disabledCommands: config.smtp.users.length === 0 ? ['AUTH'] : [],
      disableReverseLookup: !config.smtp.reverseDns,
      ...(options.resolver ? { resolver: options.resolver } : {}),
      maxRecipients: config.smtp.maxRecipients,
      maxAllowedUnauthenticatedCommands: false,
      socketTimeout: config.smtp.idleTimeout,
      greetingDelay: config.smtp.greetingDelay,
      useProxy: config.smtp.proxyProtocol,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: true,
      hideREQUIRETLS: true,
      logger: false,
      onConnect: handlers.onConnect,
      onClose: handlers.onClose,
      onSecure: handlers.onSecure,
      onAuth: handlers.onAuth,
      onMailFrom: handlers.onMailFrom,
      onRcptTo: handlers.onRcptTo,
      onData: handlers.onData,
    });
    server.on('error', (err) =>
      log.warn({ event: 'edge.server_error', err: err.message }, 'SMTP server error'),
    );
    if (config.smtp.proxyProtocol) acceptProxyV2(server.server, trustedProxies);
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(address.port, address.host, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    const bound = server.server.address() as AddressInfo;
    addresses.push({ host: bound.address, port: bound.port });
    servers.push(server);
  }
  log.info({ event: 'edge.listening', addresses }, 'SMTP edge listening');

  return {
    addresses,
    sessions: () => handlers.sessions.size,
    reconfigure(next) {
      settings = {
        config: next.config,
        policy: compileRelayPolicy(next.config),
        filters: next.filters ?? [],
        signer: next.signer ?? null,
        checker: next.checker ?? null,
      };
    },
    async close(graceMs = 30_000) {
      shuttingDown = true;
      const closed = Promise.all(
        servers.map((s) => new Promise<void>((resolve) => s.server.close(() => resolve()))),
      );
      const bye = replyText(Replies.shuttingDown);
      const sweep = () => {
        for (const [id, state] of handlers.sessions) {
          if (!state.inData) {
            const c = findConnection(id);
            c?.send(Replies.shuttingDown.code, bye);
            c?.close();
          }
        }
      };
      sweep();
      // Sessions in DATA finish; each then gets 421 at its next command or the next sweep.
      const deadline = Date.now() + graceMs;
      while (handlers.sessions.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        sweep();
      }
      for (const server of servers) {
        for (const c of server.connections as unknown as Set<Connection>) {
          c.send(Replies.shuttingDown.code, bye);
          c.close();
        }
      }
      await closed;
      log.info({ event: 'edge.closed' }, 'SMTP edge closed');
    },
  };
}
