/**
 * The embedded config `moat start` uses without --config: everything on one machine,
 * on loopback, with a private Redis under ./.moat. Mail for the demo domain
 * example.test goes to a smart host on [127.0.0.1]:2526 (point a sink there to see it).
 * Clients on loopback may relay outbound; DNS lookups for that go to a resolver on this
 * machine only (127.0.0.1:53), so the demo never sends a query off the machine: a real
 * config names its resolvers in dns.servers, or [] for the system's.
 */
export const DEFAULT_CONFIG = {
  hostname: 'localhost',
  dataDir: '.moat',
  redis: { url: null },
  smtp: { listen: ['127.0.0.1:2525'] },
  inbound: { domains: { 'example.test': '[127.0.0.1]:2526' } },
  outbound: { clients: ['127.0.0.0/8', '::1/128'], authenticated: true, smarthost: null },
  dns: { servers: ['127.0.0.1'], timeout: '2s' },
  admin: { listen: '127.0.0.1:8025' },
} as const;
