import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';

// These run the built command (bin/moat → dist/), as a user would.
const bin = join(import.meta.dirname, '..', 'bin', 'moat');
const dir = mkdtempSync(join(tmpdir(), 'moat-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function moat(args: string[], env: Record<string, string> = {}, input?: string) {
  const r = spawnSync(bin, args, { encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, input });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function configFile(name: string, yaml: string): string {
  const file = join(dir, name);
  writeFileSync(file, yaml);
  return file;
}

describe('moat config check', () => {
  test('the embedded default config is valid', () => {
    const r = moat(['config', 'check']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('example.test');
    expect(r.out).toContain('127.0.0.1');
  });

  test('a good file: exit 0, effective config printed with secrets masked and ${ENV} expanded', () => {
    const file = configFile(
      'good.yaml',
      `hostname: relay.example.com
redis: redis://127.0.0.1:6379/0
smtp:
  listen: ["0.0.0.0:25"]
  maxMessageSize: 35MB
inbound:
  domains:
    example.com: "[192.168.1.254]"
    example.org: "[192.168.1.254]:2525"
outbound:
  clients: ["192.168.1.254/32"]
admin:
  listen: "127.0.0.1:8025"
  tokens: ["\${MOAT_ADMIN_TOKEN}"]
`,
    );
    const r = moat(['config', 'check', '--config', file], { MOAT_ADMIN_TOKEN: 'a-very-secret-token-123' });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('maxMessageSize: 36700160');
    expect(r.out).not.toContain('a-very-secret-token-123');
  });

  test('MOAT_* variables override keys', () => {
    const r = moat(['config', 'check'], {
      MOAT_SMTP__MAX_MESSAGE_SIZE: '1MB',
      MOAT_HOSTNAME: 'edge1.example.com',
      MOAT_ADMIN_TOKEN: 'x',
    });
    expect(r.code).toBe(0);
    expect(r.out).toContain('maxMessageSize: 1048576');
    expect(r.out).toContain('hostname: edge1.example.com');
  });

  test('a bad file: exit 2 and every error names its key', () => {
    const file = configFile(
      'bad.yaml',
      `hostname: relay.example.com
smtp:
  maxMessageSize: -5
  listen: ["0.0.0.0:99999"]
  colour: blue
outbound:
  clients: ["10.0.0.0/33"]
  smarthost: "[smtp.isp.net"
admin:
  listen: "0.0.0.0:8025"
  allowInsecure: true
`,
    );
    const r = moat(['config', 'check', '--config', file]);
    expect(r.code).toBe(2);
    for (const key of [
      'smtp.maxMessageSize',
      'smtp.listen[0]',
      'smtp.colour',
      'outbound.clients[0]',
      'outbound.smarthost.hosts',
      'admin.tokens',
    ]) {
      expect(r.err).toContain(`  ${key}: `);
    }
    expect(r.out).toBe('');
  });

  test('an unset ${VAR} is named with its key', () => {
    const file = configFile(
      'env.yaml',
      'hostname: relay.example.com\nadmin:\n  tokens: ["${MOAT_TEST_UNSET_TOKEN}"]\n',
    );
    const r = moat(['config', 'check', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('admin.tokens[0]: refers to ${MOAT_TEST_UNSET_TOKEN}, which is not set');
  });

  test('the filters block: unknown keys, bad actions, missing DKIM key files and bad selectors are named', () => {
    const file = configFile(
      'filters.yaml',
      [
        'hostname: relay.example.com',
        'filters:',
        '  clamav: { adress: 127.0.0.1:3310 }',
        '  rspamd: { action: { inbound: drop } }',
        '  dkim:',
        '    domains:',
        '      example.com:',
        `        - { selector: s2026, key: ${join(dir, 'missing-dkim.pem')} }`,
        '        - { selector: "bad selector", key: /x }',
      ].join('\n'),
    );
    const r = moat(['config', 'check', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('filters.clamav');
    expect(r.err).toContain('adress');
    expect(r.err).toContain('filters.rspamd.action.inbound: must be reject, tempfail, tag or off');
    expect(r.err).toContain('filters.dkim.domains["example.com"][1].selector: must be a DNS label');
    // Files are checked once the schema is satisfied.
    const keys = configFile(
      'dkim.yaml',
      `hostname: relay.example.com\nfilters:\n  dkim:\n    domains:\n      example.com: [{ selector: s2026, key: ${join(dir, 'missing-dkim.pem')} }]\n`,
    );
    const k = moat(['config', 'check', '--config', keys]);
    expect(k.code).toBe(2);
    expect(k.err).toMatch(
      /filters\.dkim\.domains\["example\.com"\]\[0\]\.key: cannot read .*missing-dkim\.pem: ENOENT/,
    );
  });

  test('a YAML syntax error or duplicate key gives file:line', () => {
    const file = configFile('dup.yaml', 'hostname: a.example.com\nhostname: b.example.com\n');
    const r = moat(['config', 'check', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/dup\.yaml:2:\d+: .*unique/i);
  });

  test('a missing file', () => {
    const r = moat(['config', 'check', '--config', join(dir, 'nope.yaml')]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('cannot be read');
  });
});

test('moat user hash prints a hash the config accepts', () => {
  const r = moat(['user', 'hash', '--password-stdin'], {}, 'hunter2\n');
  expect(r.code).toBe(0);
  const hash = r.out.trim();
  expect(hash).toMatch(/^scrypt\$16384\$8\$1\$/);
  const file = configFile(
    'user.yaml',
    `hostname: relay.example.com\nsmtp:\n  users: [{ name: ex, password: "${hash}" }]\n`,
  );
  expect(moat(['config', 'check', '--config', file]).code).toBe(0);
});

test('moat --help lists the roles, the tools and the admin commands', () => {
  const r = moat(['--help']);
  expect(r.code).toBe(0);
  for (const line of [
    'moat start',
    'moat config check',
    'moat user hash',
    'moat queue list',
    'moat route pause',
    'moat track',
  ]) {
    expect(r.out).toContain(line);
  }
});

test('an unknown command exits 2 with usage', () => {
  const r = moat(['frobnicate']);
  expect(r.code).toBe(2);
  expect(r.err).toContain('usage: moat');
});
