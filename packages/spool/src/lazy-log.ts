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
  const member = (logger: Logger, prop: string | symbol) => {
    const value: unknown = Reflect.get(logger, prop, logger);
    return typeof value === 'function' ? value.bind(logger) : value;
  };
  return new Proxy(parent, {
    get(_target, prop) {
      // Until the child exists, level questions go to the parent (whose level it would have)
      // and lines below that level go nowhere; from then on, everything is the child's.
      if (child === undefined) {
        if (prop === 'isLevelEnabled' || prop === 'level') return member(parent, prop);
        if (typeof prop === 'string' && LEVELS.has(prop) && !parent.isLevelEnabled(prop)) return noop;
      }
      return member(real(), prop);
    },
    // Setting (log.level = …) is the child's business, never the parent's.
    set(_target, prop, value) {
      return Reflect.set(real(), prop, value);
    },
  });
}
