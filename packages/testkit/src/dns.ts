import dgram from 'node:dgram';
import net from 'node:net';
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet';
import dnsPacket from 'dns-packet';

export interface MxRecord {
  preference: number;
  /** Host name; '.' or '' is the root, i.e. a null MX (RFC 7505). */
  exchange: string;
}

/** What one name holds. A type left out (or empty) answers NOERROR with no data. */
export interface DnsRecords {
  MX?: MxRecord[];
  A?: string[];
  AAAA?: string[];
  /** One string per record; strings over 255 bytes are split into character-strings. */
  TXT?: string[];
  PTR?: string[];
}

export type DnsRecordType = keyof DnsRecords;

/** Names are case-insensitive and a trailing dot is ignored. A name not listed is NXDOMAIN. */
export type DnsZone = Record<string, DnsRecords>;

/**
 * A broken name: 'servfail' answers SERVFAIL (the resolver reports ESERVFAIL), 'timeout'
 * never answers (the resolver gives up with ETIMEOUT), like a dead authoritative server.
 */
export type DnsFailure = 'servfail' | 'timeout';

/** A question the server received: normalised name (lower case, no trailing dot) and type. */
export interface DnsQuery {
  name: string;
  type: string;
}

export interface DnsServer {
  readonly host: string;
  readonly port: number;
  /** `127.0.0.1:PORT`, the form `dns.Resolver#setServers` takes. */
  readonly server: string;
  /** Every question received, in order. */
  readonly queries: DnsQuery[];
  /** Replaces the records of one type for a name, creating the name if needed. */
  set<T extends DnsRecordType>(name: string, type: T, values: NonNullable<DnsRecords[T]>): void;
  /** Without a type: the name disappears (NXDOMAIN). With one: that type answers no data. */
  remove(name: string, type?: DnsRecordType): void;
  /** Make every question about `name` fail this way; `null` heals it. */
  fail(name: string, failure: DnsFailure | null): void;
  /** Answers about `name` carry this TTL in seconds instead of 0; `null` goes back to 0. */
  ttl(name: string, seconds: number | null): void;
  /** Answers about `name` are sent `ms` after the question, like a slow server; `null`: at once. */
  delay(name: string, ms: number | null): void;
  close(): Promise<void>;
}

const HOST = '127.0.0.1';
const RCODE_FORMERR = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
/** Largest UDP answer for a client that does not announce a size with EDNS (RFC 1035). */
const CLASSIC_UDP_SIZE = 512;
/**
 * TTL 0 on every answer (unless a test sets one with ttl()), so that no cache (a resolver's
 * or the code under test's) keeps an answer that a test changes with set() or remove().
 */
const TTL = 0;

/**
 * Starts an authoritative DNS server for `records` on 127.0.0.1, UDP and TCP on the same
 * kernel-chosen port. UDP answers too large for the client are truncated (TC flag), and
 * the client retries over TCP, as a real server would make it.
 */
export async function startDns(records: DnsZone = {}): Promise<DnsServer> {
  const zone = new Map<string, DnsRecords>();
  for (const [name, entry] of Object.entries(records)) zone.set(normalise(name), copy(entry));
  const queries: DnsQuery[] = [];
  const failures = new Map<string, DnsFailure>();
  const ttls = new Map<string, number>();
  const delays = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  /** Answers `query` through `send`, at once or after the delay set for its name. */
  const respond = (query: DecodedPacket, maxSize: number, send: (reply: Buffer) => void) => {
    const reply = answer(query, zone, queries, maxSize, failures, ttls);
    if (!reply) return;
    const question = query.questions?.[0];
    const wait = question ? delays.get(normalise(question.name)) : undefined;
    if (wait === undefined) return send(reply);
    const timer = setTimeout(() => {
      timers.delete(timer);
      send(reply);
    }, wait);
    timers.add(timer);
  };

  const { udp, tcp, port } = await bindUdpAndTcp();
  udp.on('message', (packet, peer) => {
    const query = decode(packet);
    if (!query) return; // not DNS: a real server would drop it too
    respond(query, udpLimit(query), (reply) => udp.send(reply, peer.port, peer.address));
  });
  tcp.on('connection', (socket) =>
    serveTcp(socket, (query, send) => respond(query, Number.POSITIVE_INFINITY, send)),
  );

  return {
    host: HOST,
    port,
    server: `${HOST}:${port}`,
    queries,
    set(name, type, values) {
      const key = normalise(name);
      const entry = zone.get(key) ?? {};
      entry[type] = [...values] as DnsRecords[typeof type];
      zone.set(key, entry);
    },
    remove(name, type) {
      const key = normalise(name);
      if (type === undefined) zone.delete(key);
      else delete zone.get(key)?.[type];
    },
    fail: perName(failures),
    ttl: perName(ttls),
    delay: perName(delays),
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        new Promise<void>((resolve) => tcp.close(() => resolve())),
      ]);
    },
  };
}

/** A setting kept per name (failure, TTL, delay): set it for a name, or `null` to clear it. */
function perName<T>(settings: Map<string, T>): (name: string, value: T | null) => void {
  return (name, value) => {
    if (value === null) settings.delete(normalise(name));
    else settings.set(normalise(name), value);
  };
}

/**
 * Builds the encoded reply to one query, truncated if it does not fit in `maxSize` bytes;
 * undefined when the name is set to time out (no answer at all).
 */
function answer(
  query: DecodedPacket,
  zone: Map<string, DnsRecords>,
  log: DnsQuery[],
  maxSize: number,
  failures: ReadonlyMap<string, DnsFailure> = new Map(),
  ttls: ReadonlyMap<string, number> = new Map(),
): Buffer | undefined {
  const question = query.questions?.[0];
  const opt = query.additionals?.find((record) => record.type === 'OPT');
  const reply: Packet = {
    type: 'response',
    id: query.id ?? 0,
    flags: dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED),
    questions: query.questions ?? [],
    answers: [],
    // RFC 6891: answer EDNS with EDNS
    additionals: opt
      ? [
          {
            type: 'OPT',
            name: '.',
            udpPayloadSize: 1232,
            extendedRcode: 0,
            ednsVersion: 0,
            flags: 0,
            flag_do: false,
            options: [],
          },
        ]
      : [],
  };
  if (!question) {
    reply.flags = (reply.flags ?? 0) | RCODE_FORMERR;
    return dnsPacket.encode(reply);
  }
  const name = normalise(question.name);
  log.push({ name, type: question.type });
  const failure = failures.get(name);
  if (failure === 'timeout') return undefined;
  const entry = zone.get(name);
  if (failure === 'servfail') reply.flags = (reply.flags ?? 0) | RCODE_SERVFAIL;
  else if (!entry) reply.flags = (reply.flags ?? 0) | RCODE_NXDOMAIN;
  else reply.answers = answersFor(question, entry, ttls.get(name) ?? TTL);

  const encoded = dnsPacket.encode(reply);
  if (encoded.length <= maxSize) return encoded;
  return dnsPacket.encode({
    ...reply,
    answers: [],
    flags: (reply.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE,
  });
}

function answersFor(question: Question, entry: DnsRecords, ttl: number): Answer[] {
  const name = question.name;
  switch (question.type) {
    case 'A':
    case 'AAAA':
    case 'PTR': {
      const type = question.type;
      return (entry[type] ?? []).map((data) => ({ type, name, ttl, data }));
    }
    case 'MX':
      return (entry.MX ?? []).map(({ preference, exchange }) => ({
        type: 'MX',
        name,
        ttl,
        // dns-packet writes '' (and '.') as the root name, which is what a null MX needs
        data: { preference, exchange: exchange === '.' ? '' : exchange },
      }));
    case 'TXT':
      return (entry.TXT ?? []).map((text) => ({ type: 'TXT', name, ttl, data: characterStrings(text) }));
    default:
      return [];
  }
}

/** A TXT record is a list of character-strings of at most 255 bytes each (RFC 1035 3.3.14). */
function characterStrings(text: string): Buffer[] {
  const bytes = Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += 255) parts.push(bytes.subarray(at, at + 255));
  return parts.length > 0 ? parts : [Buffer.alloc(0)];
}

/** DNS over TCP: each message is preceded by its length in two bytes (RFC 1035 4.2.2). */
function serveTcp(
  socket: net.Socket,
  respond: (query: DecodedPacket, send: (reply: Buffer) => void) => void,
): void {
  let pending = Buffer.alloc(0);
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 2) {
      const length = pending.readUInt16BE(0);
      if (pending.length < 2 + length) return;
      const query = decode(pending.subarray(2, 2 + length));
      pending = pending.subarray(2 + length);
      if (!query) return void socket.destroy();
      respond(query, (reply) => {
        if (socket.destroyed) return;
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(reply.length);
        socket.write(Buffer.concat([prefix, reply]));
      });
    }
  });
}

/** UDP and TCP on the same port: bind UDP to port 0, then try TCP on the port it got. */
async function bindUdpAndTcp(): Promise<{ udp: dgram.Socket; tcp: net.Server; port: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, HOST, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    const port = udp.address().port;
    const tcp = net.createServer();
    const listening = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, HOST, () => resolve(true));
    });
    if (listening) return { udp, tcp, port };
    await new Promise<void>((resolve) => udp.close(() => resolve()));
  }
  throw new Error('DNS server: found no port free for both UDP and TCP on 127.0.0.1');
}

function udpLimit(query: DecodedPacket): number {
  const opt = query.additionals?.find((record) => record.type === 'OPT');
  return opt && 'udpPayloadSize' in opt ? Math.max(CLASSIC_UDP_SIZE, opt.udpPayloadSize) : CLASSIC_UDP_SIZE;
}

function decode(packet: Buffer): DecodedPacket | undefined {
  try {
    return dnsPacket.decode(packet);
  } catch {
    return undefined;
  }
}

function normalise(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function copy(entry: DnsRecords): DnsRecords {
  const result: DnsRecords = {};
  if (entry.MX) result.MX = entry.MX.map((mx) => ({ ...mx }));
  if (entry.A) result.A = [...entry.A];
  if (entry.AAAA) result.AAAA = [...entry.AAAA];
  if (entry.TXT) result.TXT = [...entry.TXT];
  if (entry.PTR) result.PTR = [...entry.PTR];
  return result;
}
