/**
 * The runtime bootstrap (scripts/lib/runtime.sh) and bin/moat's version check: Moat brings its
 * own Node.js 24 when the machine's is too old, leaves a new-enough one alone, reuses its copy
 * without the network, refuses a tarball whose checksum is wrong, and an old Node running
 * `moat` gets one line, not a stack trace.
 *
 * Downloads come from a registry mirror on loopback that serves the tarballs the real bootstrap
 * verified and cached (.moat/tools/cache); on a machine whose own Node is new enough there is no
 * such cache, and the cases that need it are skipped.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const RUNTIME = path.join(ROOT, 'scripts/lib/runtime.sh');
const REAL_TOOLS = path.join(ROOT, '.moat/tools');
const BIN = path.join(ROOT, 'apps/moat/bin/moat');
const run = promisify(execFile);

const pinned = (name: string) => {
  const m = readFileSync(RUNTIME, 'utf8').match(new RegExp(`^${name}=(\\S+)$`, 'm'));
  if (!m?.[1]) throw new Error(`${name} not found in runtime.sh`);
  return m[1];
};
const NODE_VERSION = pinned('MOAT_NODE_VERSION');
const PNPM_VERSION = pinned('MOAT_PNPM_VERSION');
const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64';
const NODE_TARBALL = `node-linux-${ARCH}-${NODE_VERSION}.tgz`;
const cached = (file: string) => path.join(REAL_TOOLS, 'cache', file);
const haveCache = [NODE_TARBALL, `pnpm-${PNPM_VERSION}.tgz`, `exe.linux-${ARCH}-${PNPM_VERSION}.tgz`].every(
  (f) => existsSync(cached(f)),
);

let dir: string;
/** Only the system's tools: no node, npm or pnpm of the machine's, so each case sets its own. */
let systemPath: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-runtime-'));
  systemPath = path.join(dir, 'system-bin');
  await mkdir(systemPath);
  for (const tool of [
    'bash',
    'sh',
    'env',
    'uname',
    'mkdir',
    'mktemp',
    'rm',
    'mv',
    'cp',
    'ln',
    'cut',
    'sha512sum',
    'tar',
    'gzip',
    'curl',
    'dirname',
    'cat',
    'chmod',
    'printf',
  ]) {
    const found = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (found.startsWith('/')) await symlink(found, path.join(systemPath, tool));
  }
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A `node` that only prints a version, as an old system Node would. */
async function fakeNode(version: string): Promise<string> {
  const bin = await mkdtemp(path.join(dir, 'fake-node-'));
  await writeFile(path.join(bin, 'node'), `#!/bin/sh\necho ${version}\n`);
  await chmod(path.join(bin, 'node'), 0o755);
  return bin;
}

/** A registry mirror on loopback: serves what `files` maps, records every request. */
async function mirror(
  files: Record<string, Buffer>,
): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const body = files[req.url ?? ''];
    res.writeHead(body ? 200 : 404).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** Sources runtime.sh and runs moat_runtime, then reports which node and pnpm are first on PATH. */
async function bootstrap(pathDirs: string[], env: Record<string, string>) {
  const script = `. ${RUNTIME} && moat_runtime && echo "node=$(command -v node) $(node --version)" && echo "pnpm=$(command -v pnpm)"`;
  try {
    const r = await run('bash', ['-c', script], {
      env: { PATH: [...pathDirs, systemPath].join(':'), HOME: dir, ...env },
      timeout: 120_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('scripts/lib/runtime.sh', () => {
  test.skipIf(!haveCache)(
    'an old node first on PATH: the tools copy goes in front of it, without the network',
    async () => {
      const old = await fakeNode('v20.20.2');
      const tools = await mkdtemp(path.join(dir, 'tools-'));
      // The tools copy already there: the one the real bootstrap made.
      for (const entry of [`node-v${NODE_VERSION}-linux-${ARCH}`, `pnpm-${PNPM_VERSION}-linux-${ARCH}`])
        await symlink(path.join(REAL_TOOLS, entry), path.join(tools, entry));
      const registry = await mirror({});
      try {
        const r = await bootstrap([old], { MOAT_TOOLS_DIR: tools, MOAT_NPM_REGISTRY: registry.url });
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(r.stdout).toContain(`node=${tools}/node/bin/node v${NODE_VERSION}\n`);
        expect(r.stdout).toContain(`pnpm=${tools}/bin/pnpm\n`);
        expect(registry.requests).toEqual([]);
      } finally {
        await registry.close();
      }
    },
  );

  test.each(['v22.19.0', 'v24.0.0', 'v26.12.1'])('a new-enough node (%s) is left alone', async (version) => {
    const node = await fakeNode(version);
    const tools = await mkdtemp(path.join(dir, 'tools-'));
    // pnpm present and right, so nothing at all is installed.
    const pnpmBin = await mkdtemp(path.join(dir, 'pnpm-'));
    await writeFile(path.join(pnpmBin, 'pnpm'), `#!/bin/sh\necho ${PNPM_VERSION}\n`);
    await chmod(path.join(pnpmBin, 'pnpm'), 0o755);
    const registry = await mirror({});
    try {
      const r = await bootstrap([node, pnpmBin], { MOAT_TOOLS_DIR: tools, MOAT_NPM_REGISTRY: registry.url });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`node=${node}/node ${version}\n`);
      expect(await readdir(tools)).toEqual([]);
      expect(registry.requests).toEqual([]);
    } finally {
      await registry.close();
    }
  });

  test.each([
    ['v22.18.9', false],
    ['v22.19.0', true],
    ['v22.19.1', true],
    ['v23.0.0', true],
    ['v20.20.2', false],
    ['v9.30.0', false],
    ['v100.0.0', true],
    ['v24.0.0-nightly2026', true],
    ['', false],
    ['not a version', false],
  ])('moat_node_new_enough %j: %s', async (version, ok) => {
    const r = spawnSync('bash', ['-c', `. ${RUNTIME} && moat_node_new_enough "$1"`, '_', version]);
    expect(r.status === 0).toBe(ok);
  });

  test.skipIf(!haveCache)(
    'no node at all: Node and pnpm are downloaded once, checked, and reused',
    async () => {
      const tools = await mkdtemp(path.join(dir, 'tools-'));
      const npm = (name: string, file: string) => `/${name}/-/${file}`;
      const files = {
        [npm(`node-linux-${ARCH}`, NODE_TARBALL)]: readFileSync(cached(NODE_TARBALL)),
        [npm('pnpm', `pnpm-${PNPM_VERSION}.tgz`)]: readFileSync(cached(`pnpm-${PNPM_VERSION}.tgz`)),
        [npm(`@pnpm/exe.linux-${ARCH}`, `exe.linux-${ARCH}-${PNPM_VERSION}.tgz`)]: readFileSync(
          cached(`exe.linux-${ARCH}-${PNPM_VERSION}.tgz`),
        ),
      };
      const registry = await mirror(files);
      try {
        const first = await bootstrap([], { MOAT_TOOLS_DIR: tools, MOAT_NPM_REGISTRY: registry.url });
        expect(first.code).toBe(0);
        expect(first.stdout).toContain(`node=${tools}/node/bin/node v${NODE_VERSION}\n`);
        expect(first.stderr).toContain(`installing Node.js ${NODE_VERSION}`);
        expect(registry.requests.sort()).toEqual(Object.keys(files).sort());
        const pnpm = await run(path.join(tools, 'bin/pnpm'), ['--version'], {
          env: { PATH: `${tools}/node/bin:${systemPath}` },
        });
        expect(pnpm.stdout.trim()).toBe(PNPM_VERSION);

        // Again, with the mirror gone: nothing is fetched, the copy is used.
        await registry.close();
        const again = await bootstrap([], { MOAT_TOOLS_DIR: tools, MOAT_NPM_REGISTRY: registry.url });
        expect(again.code).toBe(0);
        expect(again.stderr).toBe('');
        expect(again.stdout).toContain(`node=${tools}/node/bin/node v${NODE_VERSION}\n`);
      } finally {
        await registry.close().catch(() => {});
      }
    },
  );

  test('a tarball whose checksum is wrong is refused, and nothing is installed', async () => {
    const tools = await mkdtemp(path.join(dir, 'tools-'));
    const registry = await mirror({
      [`/node-linux-${ARCH}/-/${NODE_TARBALL}`]: Buffer.from('not the Node.js you asked for'),
    });
    try {
      const r = await bootstrap([await fakeNode('v20.20.2')], {
        MOAT_TOOLS_DIR: tools,
        MOAT_NPM_REGISTRY: registry.url,
      });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(
        `checksum mismatch for ${registry.url}/node-linux-${ARCH}/-/${NODE_TARBALL}`,
      );
      expect(r.stderr).toContain('install Node.js 22.19.0 or newer yourself');
      expect(await readdir(tools)).toEqual([]);
    } finally {
      await registry.close();
    }
  });

  test('the minimum it enforces is the one package.json declares', () => {
    const engines = (p: string) => JSON.parse(readFileSync(path.join(ROOT, p), 'utf8')).engines.node;
    expect(engines('package.json')).toBe('>=22.19');
    expect(engines('apps/moat/package.json')).toBe('>=22.19');
    expect(pinned('MOAT_NODE_MIN')).toBe('22.19.0');
  });
});

describe('bin/moat on an old Node', () => {
  const oneLine = (version: string) =>
    `moat: Node.js ${version} is too old: Moat needs Node.js 22.19 or newer; scripts/bootstrap.sh installs Node.js 24 into .moat/tools/node/bin (put it first on PATH), or install your own\n`;

  test('exits 1 with one line naming the version found, the version needed and the fix', () => {
    // This Node, told it is 20.20.2 before bin/moat runs: the check reads process.versions.
    const pretend =
      "Object.defineProperty(process,'version',{value:'v20.20.2'});Object.defineProperty(process,'versions',{value:{...process.versions,node:'20.20.2'}});";
    const r = spawnSync(
      process.execPath,
      ['--import', `data:text/javascript,${encodeURIComponent(pretend)}`, BIN, 'config', 'check'],
      {
        encoding: 'utf8',
      },
    );
    expect(r.stderr).toBe(oneLine('v20.20.2'));
    expect(r.stdout).toBe('');
    expect(r.status).toBe(1);
  });

  const systemNode = '/usr/bin/node';
  const systemVersion = existsSync(systemNode)
    ? spawnSync(systemNode, ['--version'], { encoding: 'utf8' }).stdout.trim()
    : '';
  const systemIsOld = /^v(1\d|2[01])\.|^v22\.(\d|1[0-8])\./.test(systemVersion);
  test.skipIf(!systemIsOld)(`the same under the machine's own old Node (${systemVersion || 'none'})`, () => {
    const r = spawnSync(systemNode, [BIN, 'start'], { encoding: 'utf8' });
    expect(r.stderr).toBe(oneLine(systemVersion));
    expect(r.status).toBe(1);
  });

  test('a new-enough Node runs the command', () => {
    const r = spawnSync(process.execPath, [BIN, 'help'], { encoding: 'utf8' });
    expect(r.stderr).not.toContain('too old');
    expect(r.status).toBe(0);
  });
});
