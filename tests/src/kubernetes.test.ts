/**
 * infra/kubernetes/base is tested as far as a machine without a cluster can: kubectl's own
 * kustomize renders it (Debian's `kubernetes-client`); every manifest is checked against the
 * Kubernetes API schema, and the ServiceMonitor against the Prometheus Operator's CRD schema
 * (kubernetes-models, generated from both OpenAPI documents); the manifests are checked against
 * Moat's config (ports, probes, grace periods, secrets, TLS mounts, security context); and the
 * probes are run, as the kubelet would, against real `moat edge` and `moat admin` processes
 * started from config/moat.yaml. Broken copies show that each check can fail.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { ipInAny, type MoatConfig, parseCidr, parseConfig } from '@moat/policy';
import { freePort, makeCertificate, type RedisServer, startRedis } from '@moat/testkit';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { type IService, Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { afterAll, beforeAll, expect, test } from 'vitest';
import YAML from 'yaml';
import { type MoatProcess, runMoat, startMoat } from './moat-process.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BASE = path.join(ROOT, 'infra/kubernetes/base');
const CONFIG = path.join(BASE, 'config/moat.yaml');

const SECRETS = {
  MOAT_REDIS_PASSWORD: 'k8s-redis-password-that-must-not-show',
  MOAT_ADMIN_TOKEN: 'k8s-admin-token-that-must-not-show-01',
  MOAT_READ_TOKEN: 'k8s-read-token-that-must-not-show-012',
};

interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string> };
  readonly [key: string]: unknown;
}

/** The schema of each kind used here: Kubernetes' OpenAPI and the Prometheus Operator's CRD. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

function schemaErrors(doc: Manifest): string[] {
  const where = `${doc.kind}/${doc.metadata?.name}`;
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) return [`${where}: no schema for ${doc.apiVersion} ${doc.kind}`];
  try {
    new Model(doc as never).validate();
    return [];
  } catch (err) {
    return [`${where}: ${(err as Error).message}`];
  }
}

function run(
  command: string,
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, [...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT')
        return reject(new Error(`${command} not found: install the Debian package \`kubernetes-client\``));
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 128, stdout, stderr });
    });
  });
}

const kustomize = (dir: string) => run('kubectl', ['kustomize', dir]);

function parseDocs(text: string): Manifest[] {
  return YAML.parseAllDocuments(text)
    .map((d) => d.toJS() as Manifest | null)
    .filter((d): d is Manifest => d !== null);
}

async function sourceFiles(dir = BASE, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = path.posix.join(prefix, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path.join(dir, entry.name), rel)));
    else out.push(rel);
  }
  return out.sort();
}

/** ${NAME} references of the config file, and the config with them filled in, parsed by Moat. */
function moatConfig(text: string): { config: MoatConfig; variables: string[] } {
  const variables = [...new Set([...text.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1] as string))];
  const filled = text.replace(/\$\{(\w+)\}/g, (_, name: string) => `${name.toLowerCase()}-0123456789abcdef`);
  const result = parseConfig(YAML.parse(filled));
  if (!result.ok) throw new Error(`config/moat.yaml: ${JSON.stringify(result.errors)}`);
  return { config: result.config, variables };
}

const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

function containerPort(container: IContainer, port: number | string | undefined): number | undefined {
  return container.ports?.find((p) => (typeof port === 'number' ? p.containerPort : p.name) === port)
    ?.containerPort;
}

const isUnder = (file: string, dir: string) => file.startsWith(`${dir.replace(/\/$/, '')}/`);

/** Everything about the rendered manifests that has to agree with Moat and its config. */
function problems(docs: readonly Manifest[], config: MoatConfig, variables: readonly string[]): string[] {
  const out: string[] = [];
  const deployments = docs.filter((d) => d.kind === 'Deployment') as unknown as IDeployment[];
  const services = docs.filter((d) => d.kind === 'Service') as unknown as IService[];
  const configMaps = docs.filter((d) => d.kind === 'ConfigMap') as unknown as {
    metadata: { name: string };
    data?: Record<string, string>;
  }[];
  const byRole = new Map<string, { deployment: IDeployment; container: IContainer }>();
  const smtpPort = config.smtp.listen[0]?.port;

  for (const d of deployments) {
    const name = d.metadata?.name ?? '?';
    const pod = d.spec?.template.spec;
    const container = pod?.containers[0];
    if (!pod || !container || pod.containers.length !== 1) {
      out.push(`${name}: one container expected`);
      continue;
    }
    if (!matches(d.spec?.selector.matchLabels, d.spec?.template.metadata?.labels))
      out.push(`${name}: selector does not match the pod template's labels`);
    const [role, flag, file] = container.args ?? [];
    if (!role || !['edge', 'worker', 'admin'].includes(role)) {
      out.push(`${name}: args[0] is not a Moat role: ${role}`);
      continue;
    }
    byRole.set(role, { deployment: d, container });
    if (d.spec?.template.metadata?.labels?.['app.kubernetes.io/component'] !== role)
      out.push(`${name}: component label is not ${role}`);
    // The config file: from a mounted ConfigMap that has it.
    if (flag !== '--config' || !file) out.push(`${name}: no --config FILE`);
    else {
      const mount = container.volumeMounts?.find((m) => isUnder(file, m.mountPath));
      const volume = pod.volumes?.find((v) => v.name === mount?.name);
      const map = configMaps.find((c) => c.metadata.name === volume?.configMap?.name);
      if (!map?.data?.[path.posix.relative(mount?.mountPath ?? '', file)])
        out.push(`${name}: ${file} is not in a mounted ConfigMap`);
    }
    // Every ${NAME} the config refers to is set (every role reads the whole file).
    for (const v of variables) {
      const env = container.env?.find((e) => e.name === v);
      if (!env?.valueFrom?.secretKeyRef?.name || env.valueFrom.secretKeyRef.key !== v)
        out.push(`${name}: ${v} is not set from a Secret`);
    }
    // Non-root, read-only root filesystem, no privilege escalation, no capabilities.
    if (pod.securityContext?.runAsNonRoot !== true || !(Number(pod.securityContext?.runAsUser) > 0))
      out.push(`${name}: pod does not run as a non-root user`);
    const sc = container.securityContext;
    if (sc?.allowPrivilegeEscalation !== false) out.push(`${name}: allowPrivilegeEscalation is not false`);
    if (sc?.readOnlyRootFilesystem !== true) out.push(`${name}: root filesystem is not read-only`);
    if (!sc?.capabilities?.drop?.includes('ALL')) out.push(`${name}: capabilities not all dropped`);
    if (pod.automountServiceAccountToken !== false) out.push(`${name}: mounts a service account token`);
    for (const kind of ['requests', 'limits'] as const)
      for (const r of ['cpu', 'memory'])
        if (container.resources?.[kind]?.[r] === undefined) out.push(`${name}: no ${kind}.${r}`);
    // dataDir is writable: an emptyDir (the root filesystem is read-only).
    const data = container.volumeMounts?.find((m) => m.mountPath === config.dataDir);
    if (!pod.volumes?.find((v) => v.name === data?.name)?.emptyDir)
      out.push(`${name}: dataDir is not an emptyDir`);
    // TLS files the role reads are in a mounted Secret.
    const tls = role === 'edge' ? config.smtp.tls : role === 'admin' ? config.admin.tls : null;
    for (const f of tls ? [tls.key, tls.cert] : []) {
      const mount = container.volumeMounts?.find((m) => isUnder(f, m.mountPath));
      if (!pod.volumes?.find((v) => v.name === mount?.name)?.secret)
        out.push(`${name}: ${f} is not in a mounted Secret`);
    }
  }

  const edge = byRole.get('edge');
  const worker = byRole.get('worker');
  const admin = byRole.get('admin');
  if (!edge || !worker || !admin) out.push('one Deployment per role expected: edge, worker, admin');

  if (edge) {
    const { deployment, container } = edge;
    const smtp = container.ports?.find((p) => p.name === 'smtp');
    if (smtp?.containerPort !== smtpPort) out.push(`edge: port smtp is not smtp.listen's ${smtpPort}`);
    for (const probe of ['startupProbe', 'livenessProbe'] as const) {
      const p = container[probe];
      if (containerPort(container, p?.tcpSocket?.port) !== smtpPort)
        out.push(`edge: ${probe} is not tcpSocket on ${smtpPort}`);
    }
    // Readiness: the image's health check, a 220 through "PROXY UNKNOWN" from 127.0.0.1.
    const command = container.readinessProbe?.exec?.command ?? [];
    const target = container.env?.find((e) => e.name === 'MOAT_HEALTHCHECK')?.value;
    if (command.at(-1) !== '/opt/moat/bin/healthcheck.mjs' || target !== `smtp+proxy://127.0.0.1:${smtpPort}`)
      out.push(`edge: readinessProbe is not the image's health check of smtp+proxy://127.0.0.1:${smtpPort}`);
    if (!config.smtp.proxyProtocol) out.push('edge: smtp.proxyProtocol is off');
    const trusted = config.smtp.trustedProxies.flatMap((text) => {
      const cidr = parseCidr(text);
      return cidr.ok ? [cidr.value] : [];
    });
    if (!ipInAny('127.0.0.1', trusted))
      out.push('edge: smtp.trustedProxies lacks 127.0.0.1/32 for the readiness probe');
    // The grace period covers the preStop pause, the DATA grace and a margin.
    const preStop = container.lifecycle?.preStop?.sleep?.seconds ?? 0;
    const grace = Math.min(config.smtp.dataTimeout, 30_000) / 1000;
    const period = deployment.spec?.template.spec?.terminationGracePeriodSeconds ?? 30;
    if (period < preStop + grace + 10)
      out.push(
        `edge: terminationGracePeriodSeconds ${period} < ${preStop} preStop + ${grace} DATA grace + 10`,
      );
  }
  if (worker) {
    const period = worker.deployment.spec?.template.spec?.terminationGracePeriodSeconds ?? 30;
    if (period < 30 + 10) out.push(`worker: terminationGracePeriodSeconds ${period} < 30 s deliveries + 10`);
    if ((worker.container.ports ?? []).length > 0) out.push('worker: a worker listens on nothing');
  }
  if (admin) {
    const { container } = admin;
    const listen = config.admin.listen;
    if (!listen) out.push('admin: admin.listen is null');
    else {
      if (listen.host.startsWith('127.') || listen.host === '::1')
        out.push('admin: admin.listen is loopback: the kubelet and Prometheus cannot reach it');
      const https = container.ports?.find((p) => p.containerPort === listen.port);
      if (!https) out.push(`admin: no containerPort ${listen.port}`);
      const scheme = config.admin.tls ? 'HTTPS' : 'HTTP';
      for (const [probe, path] of [
        ['readinessProbe', '/ready'],
        ['livenessProbe', '/health'],
      ] as const) {
        const get = container[probe]?.httpGet;
        if (
          get?.path !== path ||
          (get.scheme ?? 'HTTP') !== scheme ||
          containerPort(container, get.port) !== listen.port
        )
          out.push(`admin: ${probe} is not ${scheme} GET ${path} on ${listen.port}`);
      }
    }
  }

  // Services select one Deployment each, and their target ports are its container ports.
  for (const s of services) {
    const name = s.metadata?.name ?? '?';
    const target = deployments.filter((d) => matches(s.spec?.selector, d.spec?.template.metadata?.labels));
    const container = target[0]?.spec?.template.spec?.containers[0];
    if (target.length !== 1 || !container) {
      out.push(`Service ${name}: selects ${target.length} Deployments`);
      continue;
    }
    for (const p of s.spec?.ports ?? [])
      if (containerPort(container, p.targetPort ?? p.port) === undefined)
        out.push(`Service ${name}: targetPort ${p.targetPort} is no container port`);
  }
  const edgeService = services.find((s) =>
    matches(s.spec?.selector, edge?.deployment.spec?.template.metadata?.labels),
  );
  const smtpService = edgeService?.spec?.ports?.find((p) => p.port === 25);
  if (edgeService?.spec?.type !== 'LoadBalancer' || !smtpService)
    out.push('edge: no LoadBalancer Service on port 25');
  else if (edge && containerPort(edge.container, smtpService.targetPort) !== smtpPort)
    out.push(`edge: Service port 25 does not go to ${smtpPort}`);
  if (edgeService?.spec?.externalTrafficPolicy !== 'Local')
    out.push('edge: externalTrafficPolicy is not Local');
  const adminService = services.find((s) =>
    matches(s.spec?.selector, admin?.deployment.spec?.template.metadata?.labels),
  );
  if (adminService?.spec?.type !== 'ClusterIP') out.push('admin: no ClusterIP Service');

  // A disruption budget per Deployment that still lets a node drain.
  for (const d of deployments) {
    const pdbs = docs.filter(
      (p) =>
        p.kind === 'PodDisruptionBudget' &&
        matches(
          (p as { spec?: { selector?: { matchLabels?: Record<string, string> } } }).spec?.selector
            ?.matchLabels,
          d.spec?.template.metadata?.labels,
        ),
    ) as { spec?: { minAvailable?: number; maxUnavailable?: number } }[];
    const spec = pdbs[0]?.spec;
    if (pdbs.length !== 1) out.push(`${d.metadata?.name}: ${pdbs.length} PodDisruptionBudgets`);
    else if (
      (spec?.minAvailable ?? -1) >= (d.spec?.replicas ?? 1) ||
      (spec?.maxUnavailable !== undefined && spec.maxUnavailable < 1)
    )
      out.push(`${d.metadata?.name}: its PodDisruptionBudget never lets a pod go`);
  }

  // The ServiceMonitor scrapes the admin Service's /metrics, as admin.tls serves it.
  const monitors = docs.filter((d) => d.kind === 'ServiceMonitor') as unknown as IServiceMonitor[];
  if (monitors.length !== 1) out.push(`${monitors.length} ServiceMonitors`);
  for (const m of monitors) {
    const selected = services.filter((s) => matches(m.spec.selector.matchLabels, s.metadata?.labels));
    if (selected.length !== 1 || selected[0] !== adminService)
      out.push('ServiceMonitor: does not select the admin Service alone');
    for (const e of m.spec.endpoints ?? []) {
      if (!adminService?.spec?.ports?.some((p) => p.name === e.port))
        out.push(`ServiceMonitor: no Service port ${e.port}`);
      if (e.path !== '/metrics') out.push('ServiceMonitor: path is not /metrics');
      if ((e.scheme ?? 'http') !== (config.admin.tls ? 'https' : 'http'))
        out.push('ServiceMonitor: wrong scheme');
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

let rendered: Manifest[];
let config: MoatConfig;
let variables: string[];

beforeAll(async () => {
  const result = await kustomize(BASE);
  if (result.code !== 0) throw new Error(`kubectl kustomize failed: ${result.stderr}`);
  rendered = parseDocs(result.stdout);
  ({ config, variables } = moatConfig(await readFile(CONFIG, 'utf8')));
});

test('kustomization.yaml lists every file of the base; each parses', async () => {
  const kustomization = YAML.parse(await readFile(path.join(BASE, 'kustomization.yaml'), 'utf8')) as {
    resources: string[];
    configMapGenerator: { name: string; files: string[] }[];
  };
  const listed = [...kustomization.resources, ...kustomization.configMapGenerator.flatMap((g) => g.files)];
  expect(listed.sort()).toEqual((await sourceFiles()).filter((f) => f !== 'kustomization.yaml'));
  for (const file of kustomization.resources) {
    const docs = parseDocs(await readFile(path.join(BASE, file), 'utf8'));
    expect(docs, file).toHaveLength(1);
    expect(docs[0]?.metadata?.name, file).toMatch(/^moat(-[a-z]+)*$/);
  }
});

test('`kubectl kustomize` renders the base: every resource, and the ConfigMap made from config/moat.yaml', async () => {
  const kinds = rendered.map((d) => `${d.kind}/${d.metadata.name}`).sort();
  const configMap = kinds.find((k) => k.startsWith('ConfigMap/'));
  expect(configMap).toMatch(/^ConfigMap\/moat-config-[a-z0-9]+$/);
  expect(kinds).toEqual(
    [
      'Deployment/moat-admin',
      'Deployment/moat-edge',
      'Deployment/moat-worker',
      'PodDisruptionBudget/moat-admin',
      'PodDisruptionBudget/moat-edge',
      'PodDisruptionBudget/moat-worker',
      'Service/moat-admin',
      'Service/moat-edge',
      'ServiceAccount/moat',
      'ServiceMonitor/moat-admin',
      configMap,
    ].sort(),
  );
  const data = (rendered.find((d) => d.kind === 'ConfigMap') as unknown as { data: Record<string, string> })
    .data;
  expect(data['moat.yaml']).toBe(await readFile(CONFIG, 'utf8'));
  // The Deployments refer to the generated name (a config change rolls them out).
  for (const d of rendered.filter((r) => r.kind === 'Deployment') as unknown as IDeployment[]) {
    const volumes = d.spec?.template.spec?.volumes ?? [];
    expect(volumes.find((v) => v.name === 'config')?.configMap?.name, d.metadata?.name).toBe(
      configMap?.slice(10),
    );
    expect(d.spec?.template.spec?.containers[0]?.image).toBe('moat:latest');
  }

  // A kustomization naming a file that is not there is refused.
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'moat-kustomize-'));
  try {
    await cp(BASE, tmp, { recursive: true });
    const file = path.join(tmp, 'kustomization.yaml');
    await writeFile(
      file,
      (await readFile(file, 'utf8')).replace('  - admin-pdb.yaml\n', '  - admin-pbd.yaml\n'),
    );
    const broken = await kustomize(tmp);
    expect(broken.code).not.toBe(0);
    expect(broken.stderr).toContain('admin-pbd.yaml');
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

test("every manifest passes its schema: Kubernetes' API, the Prometheus Operator's CRD for the ServiceMonitor", () => {
  expect(rendered.flatMap(schemaErrors)).toEqual([]);
  // ... and broken ones do not.
  const deployment = rendered.find((d) => d.kind === 'Deployment') as unknown as IDeployment;
  const monitor = rendered.find((d) => d.kind === 'ServiceMonitor') as unknown as IServiceMonitor;
  const clone = <T>(v: T): T => structuredClone(v);
  const twoReplicas = clone(deployment) as unknown as { spec: { replicas: unknown } };
  twoReplicas.spec.replicas = 'two';
  expect(schemaErrors(twoReplicas as unknown as Manifest).join()).toContain('spec/replicas must be integer');
  const badPolicy = clone(deployment);
  (badPolicy.spec?.template.spec?.containers[0] as { imagePullPolicy: string }).imagePullPolicy = 'Sometimes';
  expect(schemaErrors(badPolicy as unknown as Manifest).join()).toContain('imagePullPolicy');
  const noContainers = clone(deployment) as unknown as {
    spec: { template: { spec: Record<string, unknown> } };
  };
  delete noContainers.spec.template.spec.containers;
  expect(schemaErrors(noContainers as unknown as Manifest).join()).toContain('containers');
  const badScheme = clone(monitor);
  (badScheme.spec.endpoints?.[0] as { scheme: string }).scheme = 'gopher';
  expect(schemaErrors(badScheme as unknown as Manifest).join()).toContain('scheme');
  expect(schemaErrors({ apiVersion: 'v2', kind: 'Pod', metadata: { name: 'x' } })).toEqual([
    'Pod/x: no schema for v2 Pod',
  ]);
});

test("the manifests fit Moat: ports, probes, grace periods, the Secret's variables, TLS mounts, security", () => {
  expect(variables.sort()).toEqual(Object.keys(SECRETS).sort());
  expect(problems(rendered, config, variables)).toEqual([]);

  // Each kind of mistake is seen.
  const edit = (kind: string, name: string, change: (doc: never) => void) => {
    const docs = structuredClone(rendered);
    const doc = docs.find((d) => d.kind === kind && d.metadata.name === name);
    change(doc as never);
    return problems(docs, config, variables);
  };
  expect(
    edit('Service', 'moat-edge', (s: IService) => {
      (s.spec?.ports?.[0] as { targetPort: number }).targetPort = 25;
    }),
  ).toContain('Service moat-edge: targetPort 25 is no container port');
  expect(
    edit('Deployment', 'moat-edge', (d: IDeployment) => {
      (d.spec?.template.spec as { terminationGracePeriodSeconds: number }).terminationGracePeriodSeconds = 30;
    }),
  ).toContain('edge: terminationGracePeriodSeconds 30 < 10 preStop + 30 DATA grace + 10');
  expect(
    edit('Deployment', 'moat-worker', (d: IDeployment) => {
      d.spec?.template.spec?.containers[0]?.env?.splice(1, 1);
    }),
  ).toContain('moat-worker: MOAT_ADMIN_TOKEN is not set from a Secret');
  expect(
    edit('Deployment', 'moat-admin', (d: IDeployment) => {
      const get = d.spec?.template.spec?.containers[0]?.readinessProbe?.httpGet;
      if (get) get.path = '/health';
    }),
  ).toContain('admin: readinessProbe is not HTTPS GET /ready on 8025');
  expect(
    edit('Deployment', 'moat-admin', (d: IDeployment) => {
      d.spec?.template.spec?.containers[0]?.volumeMounts?.splice(1, 1);
    }),
  ).toContain('moat-admin: /etc/moat/tls/admin/tls.key is not in a mounted Secret');
  expect(
    edit('Deployment', 'moat-edge', (d: IDeployment) => {
      const sc = d.spec?.template.spec?.containers[0]?.securityContext;
      if (sc) sc.readOnlyRootFilesystem = false;
    }),
  ).toContain('moat-edge: root filesystem is not read-only');
  expect(
    edit('ServiceMonitor', 'moat-admin', (m: IServiceMonitor) => {
      (m.spec.endpoints?.[0] as { port: string }).port = 'metrics';
    }),
  ).toContain('ServiceMonitor: no Service port metrics');
});

test("config/moat.yaml passes `moat config check` with the Secret's variables, and exits 2 without one", async () => {
  const ok = await runMoat(['config', 'check', '--config', CONFIG], SECRETS);
  expect(ok.stderr).toBe('');
  expect(ok.code).toBe(0);
  for (const secret of Object.values(SECRETS)) expect(ok.stdout).not.toContain(secret);
  const { MOAT_READ_TOKEN: _, ...partial } = SECRETS;
  const missing = await runMoat(['config', 'check', '--config', CONFIG], partial);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain('${MOAT_READ_TOKEN}');
});

// ---------------------------------------------------------------------------------------------
// The probes, run as the kubelet runs them, against moat edge and moat admin started from
// config/moat.yaml (only Redis, the listen addresses and the TLS files are overridden).

let dir: string;
let redis: RedisServer;
const processes: MoatProcess[] = [];

afterAll(async () => {
  for (const p of processes) await p.stop();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function httpsGet(port: number, urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    // The kubelet does not verify the certificate of an HTTPS probe either.
    const req = https.get(
      { host: '127.0.0.1', port, path: urlPath, rejectUnauthorized: false, timeout: 5000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/** A tcpSocket probe from an address that is not a trusted proxy: connects, then what happens. */
function tcpProbe(port: number, localAddress: string): Promise<{ connected: boolean; data: string }> {
  return new Promise((resolve) => {
    let connected = false;
    let data = '';
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    s.setTimeout(5000, () => s.destroy());
    s.on('connect', () => {
      connected = true;
    });
    s.on('data', (d) => {
      data += d.toString();
    });
    s.on('error', () => {});
    s.on('close', () => resolve({ connected, data }));
  });
}

function execProbe(command: readonly string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const [bin, ...args] = command;
    const file = bin === 'node' ? process.execPath : (bin ?? '');
    execFile(file, args, { timeout: 6000, env: { PATH: process.env.PATH ?? '', ...env } }, (err) =>
      resolve(err === null ? 0 : typeof err.code === 'number' ? err.code : 128),
    );
  });
}

test('the probes work on real processes: the edge greets the image health check, the admin API answers /ready and /health', async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-k8s-'));
  redis = await startRedis({ appendonly: false, maxmemory: '64mb' });
  const [smtpPort, adminPort, closedPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const [smtpCert, adminCert] = await Promise.all([
    mkdtemp(path.join(dir, 'smtp-')).then((d) =>
      makeCertificate(d, 'relay.example.com', 'DNS:relay.example.com'),
    ),
    mkdtemp(path.join(dir, 'admin-')).then((d) => makeCertificate(d, 'moat-admin', 'IP:127.0.0.1')),
  ]);
  const env = {
    ...SECRETS,
    MOAT_REDIS__URL: redis.url,
    MOAT_DATA_DIR: dir,
    MOAT_SMTP__LISTEN: `["127.0.0.1:${smtpPort}"]`,
    MOAT_SMTP__TLS: JSON.stringify(smtpCert),
    MOAT_ADMIN__LISTEN: `127.0.0.1:${adminPort}`,
    MOAT_ADMIN__TLS: JSON.stringify(adminCert),
  };
  const file = YAML.parse(await readFile(CONFIG, 'utf8')) as unknown;
  const started = await Promise.all([
    startMoat('edge', file, dir, 'edge', env),
    startMoat('admin', file, dir, 'admin', env),
  ]);
  processes.push(...started);
  await Promise.all(started.map((p) => p.waitForEvent('moat.ready')));

  const deployment = (role: string) =>
    (rendered as unknown as IDeployment[]).find(
      (d) => d.kind === 'Deployment' && d.metadata?.name === `moat-${role}`,
    )?.spec?.template.spec?.containers[0] as IContainer;
  const edge = deployment('edge');
  const admin = deployment('admin');

  // Edge readiness: the manifest's command and MOAT_HEALTHCHECK, with this checkout for the
  // image's /opt/moat and this test's port for the pod's.
  const listenPort = String(config.smtp.listen[0]?.port);
  const command = (edge.readinessProbe?.exec?.command ?? []).map((a) =>
    a.replace(/^\/opt\/moat\//, `${ROOT}/apps/moat/`),
  );
  const target = edge.env?.find((e) => e.name === 'MOAT_HEALTHCHECK')?.value ?? '';
  expect(target).toContain(`:${listenPort}`);
  expect(
    await execProbe(command, { MOAT_HEALTHCHECK: target.replace(`:${listenPort}`, `:${smtpPort}`) }),
  ).toBe(0);
  expect(
    await execProbe(command, { MOAT_HEALTHCHECK: target.replace(`:${listenPort}`, `:${closedPort}`) }),
  ).toBe(1);
  // Edge liveness (tcpSocket) from an address that is no trusted proxy, like the kubelet's:
  // the connection opens, so the probe passes, and the edge closes it unanswered.
  expect(edge.livenessProbe?.tcpSocket).toBeDefined();
  expect(await tcpProbe(smtpPort, '127.0.0.2')).toEqual({ connected: true, data: '' });

  // Admin: the manifest's paths, over HTTPS.
  const ready = admin.readinessProbe?.httpGet?.path ?? '';
  const health = admin.livenessProbe?.httpGet?.path ?? '';
  expect(await httpsGet(adminPort, ready)).toBe(200);
  expect(await httpsGet(adminPort, health)).toBe(200);
  // /ready follows Redis: stopped, it answers 503 (the Service then sends nobody there).
  redis.pause();
  try {
    expect(await httpsGet(adminPort, ready)).toBe(503);
    expect(await httpsGet(adminPort, health)).toBe(200);
  } finally {
    redis.resume();
  }
});
