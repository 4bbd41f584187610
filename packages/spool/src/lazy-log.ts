/**
 * A child logger that exists only once a line is written at an enabled level. Each SMTP session,
 * transaction and delivery job has its own child (session id, message id, job); most write
 * nothing at the configured level, and making a pino child serialises its bindings.
 */
import type { Logger } from 'pino';

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace']);
const noop = () => {};

export function lazyChild(parent: Logger, bindings: () => Record<string, unknown>): Logger {
  let child: Logger | undefined;
  const real = () => {
    child ??= parent.child(bindings());
    return child;
  };
  return new Proxy(parent, {
    get(_target, prop) {
      if (prop === 'isLevelEnabled' || prop === 'level') {
        const value: unknown = Reflect.get(parent, prop, parent);
        return typeof value === 'function' ? value.bind(parent) : value;
      }
      if (typeof prop === 'string' && LEVELS.has(prop) && !parent.isLevelEnabled(prop)) return noop;
      const logger = real();
      const value: unknown = Reflect.get(logger, prop, logger);
      return typeof value === 'function' ? value.bind(logger) : value;
    },
  });
}
