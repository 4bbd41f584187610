// @moat/testkit: dev-only fixtures that start real servers on loopback for tests, and RawSmtp,
// the raw SMTP client of the tests and the bench.

export { type CertificateFiles, makeCertificate } from './certificate.js';
export type { DnsFailure, DnsQuery, DnsRecords, DnsRecordType, DnsServer, DnsZone, MxRecord } from './dns.js';
export { startDns } from './dns.js';
export { freePort } from './ports.js';
export { type Postfix, type PostfixOptions, startPostfix } from './postfix.js';
export { dotStuff, expectCode, RawSmtp, type RawSmtpOptions } from './raw-smtp.js';
export { withoutFirstReceived } from './received.js';
export type { RedisOptions, RedisServer } from './redis.js';
export { startRedis } from './redis.js';
export { type Sentinel, type SentinelOptions, startSentinel } from './sentinel.js';
export type { SinkBehaviour, SinkMessage, SmtpReply, SmtpSink, SmtpSinkOptions } from './smtp-sink.js';
export { startSmtpSink } from './smtp-sink.js';
