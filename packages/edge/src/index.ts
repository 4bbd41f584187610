export { type Edge, type EdgeOptions, startEdge } from './edge.js';
export {
  type Filter,
  type FilterCheck,
  type FilterInput,
  type FilterOutcome,
  type FilterReport,
  runFilters,
  type Signer,
} from './filters.js';
export { editHeaders, encodeHeaderText, type HeaderEdits } from './header-edits.js';
export { canonicalLineEndings, type HeaderFacts, headerFacts } from './message.js';
export { hashPassword, verifyPassword } from './passwords.js';
export type {
  CheckRefusal,
  SessionChecker,
  SessionChecks,
  SessionInfo,
  TransactionInfo,
} from './session-checks.js';
export { isInternal, SmtpReplyError, toSmtpError } from './smtp-errors.js';
export type { QueuedHandler } from './state.js';
