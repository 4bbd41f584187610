export { type Edge, type EdgeOptions, startEdge } from './edge.js';
export {
  type Filter,
  type FilterInput,
  type FilterOutcome,
  type FilterVerdict,
  runFilters,
} from './filters.js';
export { canonicalLineEndings, type HeaderFacts, headerFacts } from './message.js';
export { hashPassword, verifyPassword } from './passwords.js';
export { isInternal, SmtpReplyError, toSmtpError } from './smtp-errors.js';
