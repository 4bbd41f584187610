import { configSchema } from '@moat/policy';
import { expect, test } from 'vitest';
import { hashPassword, verifyPassword } from './passwords.js';

test('a hash verifies its own password and no other', async () => {
  const hash = await hashPassword('correct horse battery staple', { N: 1024, r: 8, p: 1 });
  expect(hash).toMatch(/^scrypt\$1024\$8\$1\$/);
  await expect(verifyPassword('correct horse battery staple', hash)).resolves.toBe(true);
  await expect(verifyPassword('correct horse battery stapl', hash)).resolves.toBe(false);
  await expect(verifyPassword('', hash)).resolves.toBe(false);
});

test('two hashes of one password differ (salted)', async () => {
  const cost = { N: 1024, r: 8, p: 1 };
  expect(await hashPassword('pw', cost)).not.toBe(await hashPassword('pw', cost));
});

test('a malformed hash never verifies', async () => {
  for (const bad of ['', 'scrypt$', 'bcrypt$1$2$3$4$5', 'scrypt$1024$8$1$c2FsdA==$dG9vc2hvcnQ=']) {
    await expect(verifyPassword('pw', bad)).resolves.toBe(false);
  }
});

test('the config schema accepts what hashPassword prints', async () => {
  const password = await hashPassword('pw', { N: 1024, r: 8, p: 1 });
  const parsed = configSchema.safeParse({
    hostname: 'relay.example.com',
    smtp: { users: [{ name: 'ex', password }] },
  });
  expect(parsed.success).toBe(true);
});
