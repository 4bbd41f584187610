// @moat/testkit: dev-only fixtures that start real servers on loopback for tests, and RawSmtp,
// the raw SMTP client of the tests and the bench.

export { type CertificateFiles, makeCertificate } from './certificate.js';
export { chromiumAvailable, chromiumLaunchOptions } from './chromium.js';
export {
  CLAMD_EICAR_SIGNATURE,
  type Clamd,
  type ClamdOptions,
  clamdInstream,
  EICAR,
  startClamd,
} from './clamd.js';
export { type ProxyMode, startTcpProxy, type TcpProxy, type TcpProxyOptions } from './cut-proxy.js';
export { daemonBinary, type FilterDaemon, groupMembers } from './daemon.js';
export type { DnsFailure, DnsQuery, DnsRecords, DnsRecordType, DnsServer, DnsZone, MxRecord } from './dns.js';
export { startDns } from './dns.js';
export { freePort } from './ports.js';
export { type Postfix, type PostfixOptions, startPostfix } from './postfix.js';
export { dotStuff, expectCode, RawSmtp, type RawSmtpOptions } from './raw-smtp.js';
export { withoutFirstReceived } from './received.js';
export type { RedisOptions, RedisServer } from './redis.js';
export { startRedis } from './redis.js';
export {
  CLUSTER_SLOTS,
  type ClusterNode,
  type ClusterRole,
  type RedisCluster,
  type RedisClusterOptions,
  startRedisCluster,
} from './redis-cluster.js';
export {
  defaultRspamdDbDir,
  GTUBE,
  RSPAMD_GTUBE,
  RSPAMD_REMOTE_MAP_MODULES,
  type Rspamd,
  type RspamdOptions,
  type RspamdResult,
  readRspamdLog,
  rspamdCheck,
  startRspamd,
} from './rspamd.js';
export { type Sentinel, type SentinelOptions, startSentinel } from './sentinel.js';
export {
  MOAT_LDAP_SCHEMA,
  SLAPD_MISSING_PACKAGE,
  type Slapd,
  type SlapdOptions,
  startSlapd,
  withSuffixEntry,
} from './slapd.js';
export type { SinkBehaviour, SinkMessage, SmtpReply, SmtpSink, SmtpSinkOptions } from './smtp-sink.js';
export { startSmtpSink } from './smtp-sink.js';
export { type Spamd, type SpamdOptions, type SpamdReply, spamdRequest, startSpamd } from './spamd.js';
