/**
 * Address tricks: envelope address forms that are (or once were) ways to make a mail server
 * relay onward to somewhere other than the domain after the "@". The parser records them;
 * the relay decision (relay.ts) makes sure none of them ever grants relay.
 */

export type Trick =
  /** "user%other.example@ours": the percent hack, "deliver to user@other.example". */
  | 'percent-hack'
  /** "other.example!user@ours": a UUCP bang path. */
  | 'bang-path'
  /** "\"user@other.example\"@ours": a quoted local part holding an "@". */
  | 'quoted-at'
  /** "user@other.example@ours": more than one "@" outside quotes (always a parse error). */
  | 'multiple-at'
  /** "user@ours.": a domain with a trailing dot. */
  | 'trailing-dot'
  /** "user@[192.0.2.1]", "user@[IPv6:2001:db8::1]", or a bare IP address as the domain. */
  | 'address-literal'
  /** "@ours:user@other.example": an RFC 821 source route (stripped by the parser). */
  | 'source-route';

export const TRICKS: readonly Trick[] = [
  'percent-hack',
  'bang-path',
  'quoted-at',
  'multiple-at',
  'trailing-dot',
  'address-literal',
  'source-route',
];

const DESCRIPTIONS: Readonly<Record<Trick, string>> = {
  'percent-hack': 'percent hack ("%" in the local part, as in user%other.example@ours)',
  'bang-path': 'bang path ("!" in the local part, as in other.example!user@ours)',
  'quoted-at': 'quoted "@" (a quoted local part holding "@", as in "user@other.example"@ours)',
  'multiple-at': 'multiple "@" (more than one "@" outside quotes, as in user@other.example@ours)',
  'trailing-dot': 'trailing dot (a domain ending in ".", as in user@ours.)',
  'address-literal': 'address literal (an IP address instead of a domain, as in user@[192.0.2.1])',
  'source-route': 'source route (as in @ours:user@other.example)',
};

/** A short human description of a trick, for log lines. */
export function describeTrick(trick: Trick): string {
  return DESCRIPTIONS[trick];
}

/**
 * The tricks a (decoded) local part carries. `quoted`: it was written as a quoted string,
 * which is the only way a local part can hold "@".
 */
export function localPartTricks(local: string, quoted: boolean): Trick[] {
  const tricks: Trick[] = [];
  if (local.includes('%')) tricks.push('percent-hack');
  if (local.includes('!')) tricks.push('bang-path');
  if (quoted && local.includes('@')) tricks.push('quoted-at');
  return tricks;
}
