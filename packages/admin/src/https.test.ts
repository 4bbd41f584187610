import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCertificate } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { AUTH, type Fixture, startFixture } from './test-app.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await startFixture();
});
afterAll(() => fx.close());

/** A certificate for 127.0.0.1, read into memory; its files are removed. */
async function selfSigned() {
  const dir = mkdtempSync(join(tmpdir(), 'moat-admin-tls-'));
  try {
    const files = await makeCertificate(dir, 'localhost', 'IP:127.0.0.1');
    return { key: readFileSync(files.key), cert: readFileSync(files.cert) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function get(url: string, ca: Buffer, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(url, { ca, headers }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += String(d);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('with admin.tls the API is HTTPS only', async () => {
  const tls = await selfSigned();
  const { app } = await fx.app({ https: tls });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  expect(base).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  expect((await get(`${base}/health`, tls.cert)).status).toBe(200);
  const routes = await get(`${base}/routes`, tls.cert, AUTH);
  expect(routes.status).toBe(200);
  expect(JSON.parse(routes.body).routes.length).toBeGreaterThan(0);
  // Plain HTTP on the same port gets no API answer.
  const plain = await fetch(`${base.replace('https:', 'http:')}/health`).then(
    (r) => r.status,
    () => 'refused',
  );
  expect(plain).not.toBe(200);
});
