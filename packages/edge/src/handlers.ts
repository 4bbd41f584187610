/**
 * The session handlers: smtp-server's callbacks, each wrapped once (`wrap`) so that every
 * handler is async and every unexpected failure becomes 451 4.3.0.
 * connect → limits; MAIL → back-pressure, sender syntax; RCPT → relay decision;
 * DATA → receive.ts (bounded read, line endings, loop check, filters, Received:, durable queue), 250.
 */
import {
  addressEncodingError,
  decideRecipient,
  invalidHelo,
  ipInAny,
  isAddressError,
  isTrusted,
  isValidHelo,
  parseSender,
  queued,
  Replies,
  replyText,
} from '@moat/policy';
import { lazyChild } from '@moat/spool';
import type {
  SMTPServerAddress,
  SMTPServerAuthentication,
  SMTPServerAuthenticationResponse,
  SMTPServerDataStream,
  SMTPServerSession,
} from 'smtp-server';
import { verifyPassword } from './passwords.js';
import { receiveMessage } from './receive.js';
import { isInternal, SmtpReplyError, toSmtpError } from './smtp-errors.js';
import type { HandlerDeps, SessionState } from './state.js';

type Callback = (err?: Error | null) => void;

export function createHandlers(deps: HandlerDeps) {
  const sessions = new Map<string, SessionState>();

  const stateOf = (session: SMTPServerSession): SessionState => {
    let state = sessions.get(session.id);
    if (state === undefined) {
      const settings = deps.settings();
      state = {
        id: session.id,
        settings,
        clientIp: session.remoteAddress,
        log: lazyChild(deps.log, () => ({ session: session.id })),
        counted: false,
        user: null,
        txn: null,
        txnCount: 0,
        errors: 0,
        inData: false,
        checks:
          settings.checker?.open({
            id: session.id,
            clientIp: session.remoteAddress,
            allowListed: ipInAny(session.remoteAddress, settings.policy.clients),
          }) ?? null,
        heloChecked: false,
      };
      sessions.set(session.id, state);
    }
    return state;
  };

  /** Run an async handler for smtp-server: a thrown reply is sent, anything else is 451. */
  const wrap = (session: SMTPServerSession, event: string, work: () => Promise<void>, cb: Callback) => {
    work().then(
      () => cb(),
      (err: unknown) => {
        const state = stateOf(session);
        const reply = toSmtpError(err);
        if (isInternal(err))
          state.log.error({ event: `edge.${event}_failed`, err }, 'internal failure, answered 451');
        else
          state.log.info({
            event: `edge.${event}_refused`,
            code: reply.responseCode,
            reason: reply.reason,
            detail: reply.detail,
          });
        deps.counters?.inc('rejected', { reason: reply.reason });
        cb(reply);
        if (reply.responseCode >= 500 && ++state.errors >= state.settings.config.smtp.maxErrors) {
          deps.disconnect(
            session.id,
            new SmtpReplyError(
              { code: 421, enhanced: '4.7.0', text: 'Too many errors, closing connection' },
              'too-many-errors',
            ),
          );
        }
      },
    );
  };

  /** smtp.rejectInvalidHelo: a HELO name that is not a host name or an address literal (logged once either way). */
  const checkHelo = (state: SessionState, session: SMTPServerSession): void => {
    const { config } = state.settings;
    const helo = session.hostNameAppearsAs ?? '';
    if (isValidHelo(helo)) return;
    if (!state.heloChecked) {
      state.heloChecked = true;
      state.log.info({
        event: 'edge.helo_invalid',
        helo,
        client: state.clientIp,
        refused: config.smtp.rejectInvalidHelo,
      });
    }
    if (config.smtp.rejectInvalidHelo) throw new SmtpReplyError(invalidHelo, 'helo-invalid', helo);
  };

  return {
    sessions,

    onConnect(session: SMTPServerSession, cb: Callback): void {
      wrap(
        session,
        'connect',
        async () => {
          const state = stateOf(session);
          const { config } = state.settings;
          if (deps.isShuttingDown()) throw new SmtpReplyError(Replies.shuttingDown, 'shutting-down');
          const refused = deps.limiter.acquire(state.clientIp);
          if (refused) throw new SmtpReplyError(refused, 'connection-limit');
          state.counted = true;
          const refused2 = await state.checks?.connect();
          if (refused2) throw new SmtpReplyError(refused2.reply, refused2.reason, refused2.detail);
          // As Postfix's smtpd_tls_auth_only: AUTH is not even offered before STARTTLS.
          if (config.smtp.users.length > 0 && !config.smtp.allowInsecureAuth && !session.secure) {
            session.disabledCommands = ['AUTH'];
          }
          state.log.debug({ event: 'edge.connect', client: state.clientIp }, 'session started');
        },
        cb,
      );
    },

    onSecure(_socket: unknown, session: SMTPServerSession, cb: Callback): void {
      if (stateOf(session).settings.config.smtp.users.length > 0) session.disabledCommands = [];
      cb();
    },

    onClose(session: SMTPServerSession): void {
      const state = sessions.get(session.id);
      if (state?.counted) deps.limiter.release(state.clientIp);
      state?.checks?.close();
      sessions.delete(session.id);
    },

    onAuth(
      auth: SMTPServerAuthentication,
      session: SMTPServerSession,
      cb: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void,
    ): void {
      const state = stateOf(session);
      const user = state.settings.config.smtp.users.find((u) => u.name === auth.username);
      const password = auth.password ?? '';
      (user
        ? verifyPassword(password, user.password)
        : verifyPassword(password, DUMMY_HASH).then(() => false)
      ).then(
        (ok) => {
          if (!ok || !user) {
            state.log.warn({ event: 'edge.auth_failed', user: auth.username }, 'authentication failed');
            return cb(new SmtpReplyError(Replies.authFailed, 'auth-failed'));
          }
          state.user = user.name;
          state.log.info({ event: 'edge.auth', user: user.name }, 'authenticated');
          cb(null, { user: user.name });
        },
        (err: unknown) => {
          state.log.error({ event: 'edge.auth_failed', err }, 'authentication error');
          cb(toSmtpError(err));
        },
      );
    },

    onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, cb: Callback): void {
      wrap(
        session,
        'mail',
        async () => {
          const state = stateOf(session);
          state.txn = null;
          if (deps.isShuttingDown()) throw new SmtpReplyError(Replies.shuttingDown, 'shutting-down');
          if (deps.memory?.full) throw new SmtpReplyError(Replies.storageFull, 'redis-memory');
          const args = address.args as Record<string, unknown> | false | undefined;
          const smtpUtf8 = args ? args.SMTPUTF8 === true : false;
          const badEncoding = addressEncodingError(address.address, smtpUtf8, 'sender');
          if (badEncoding) throw new SmtpReplyError(badEncoding, 'sender-encoding');
          const sender = parseSender(address.address);
          if (isAddressError(sender))
            throw new SmtpReplyError(Replies.badSenderSyntax, 'sender-syntax', sender.message);
          checkHelo(state, session);
          if (state.checks) {
            const refused = await state.checks.mail({
              user: state.user,
              sender: 'null' in sender ? '' : sender.address,
              trusted: isTrusted(state.settings.policy, { clientIp: state.clientIp, user: state.user }),
            });
            if (refused) throw new SmtpReplyError(refused.reply, refused.reason, refused.detail);
          }
          const id = deps.spool.newMessageId();
          const seq = ++state.txnCount;
          state.txn = {
            id,
            seq,
            sender: 'null' in sender ? '' : sender.address,
            accepted: [],
            log: lazyChild(state.log, () => ({ txn: seq, messageId: id })),
          };
        },
        cb,
      );
    },

    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, cb: Callback): void {
      wrap(
        session,
        'rcpt',
        async () => {
          const state = stateOf(session);
          const txn = state.txn;
          if (txn === null) throw new SmtpReplyError(Replies.tempFailure, 'no-transaction');
          const badEncoding = addressEncodingError(
            address.address,
            session.envelope.smtpUtf8 === true,
            'recipient',
          );
          if (badEncoding) throw new SmtpReplyError(badEncoding, 'recipient-encoding');
          const verdict = decideRecipient(
            state.settings.policy,
            { clientIp: state.clientIp, user: state.user },
            address.address,
          );
          if (verdict.action === 'reject') {
            txn.log.info({
              event: 'edge.rcpt_rejected',
              rcpt: address.address,
              reason: verdict.reason,
              client: state.clientIp,
            });
            throw new SmtpReplyError(verdict.reply, verdict.reason);
          }
          if (state.checks) {
            const refused = await state.checks.rcpt(
              {
                user: state.user,
                sender: txn.sender,
                trusted: isTrusted(state.settings.policy, { clientIp: state.clientIp, user: state.user }),
              },
              { address: verdict.recipient.address, direction: verdict.direction },
            );
            if (refused) {
              txn.log.info({
                event: 'edge.rcpt_refused',
                rcpt: verdict.recipient.address,
                reason: refused.reason,
                detail: refused.detail,
                client: state.clientIp,
              });
              throw new SmtpReplyError(refused.reply, refused.reason, refused.detail);
            }
          }
          txn.accepted.push(verdict);
        },
        cb,
      );
    },

    onData(
      stream: SMTPServerDataStream,
      session: SMTPServerSession,
      cb: (err?: Error | null, message?: string) => void,
    ): void {
      const state = stateOf(session);
      state.inData = true;
      const dataStarted = performance.now();
      const timer = setTimeout(
        () =>
          deps.disconnect(
            session.id,
            new SmtpReplyError({ code: 421, enhanced: '4.4.2', text: 'DATA timeout' }, 'data-timeout'),
          ),
        state.settings.config.smtp.dataTimeout,
      );
      receiveMessage(deps, state, stream, session).then(
        (id) => {
          clearTimeout(timer);
          state.inData = false;
          state.txn = null;
          deps.counters?.inc('accepted');
          deps.counters?.observe('acceptDuration', {}, (performance.now() - dataStarted) / 1000);
          cb(null, replyText(queued(id)));
        },
        (err: unknown) => {
          clearTimeout(timer);
          state.inData = false;
          state.txn = null;
          const reply = toSmtpError(err);
          if (isInternal(err))
            state.log.error({ event: 'edge.data_failed', err }, 'internal failure, answered 451');
          else
            state.log.info({
              event: 'edge.data_refused',
              code: reply.responseCode,
              reason: reply.reason,
              detail: reply.detail,
            });
          deps.counters?.inc('rejected', { reason: reply.reason });
          cb(reply);
        },
      );
    },
  };
}

/** A valid hash to spend the same time on unknown users as on wrong passwords. */
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
