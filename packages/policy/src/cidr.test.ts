import { describe, expect, test } from 'vitest';
import { ipInAny, isLoopback, parseCidr } from './cidr.js';

const nets = ['192.168.1.254/32', '10.0.0.0/8', '2001:db8::/32'].map((t) => {
  const r = parseCidr(t);
  if (!r.ok) throw new Error(r.error);
  return r.value;
});

describe('ipInAny', () => {
  test.each([
    ['192.168.1.254', true],
    ['::ffff:192.168.1.254', true],
    ['192.168.1.253', false],
    ['10.255.0.1', true],
    ['11.0.0.1', false],
    ['2001:db8:1::25', true],
    ['2001:db9::1', false],
    ['::ffff:10.1.2.3', true],
    ['not-an-ip', false],
    ['', false],
  ])('%s → %s', (ip, inside) => {
    expect(ipInAny(ip, nets)).toBe(inside);
  });
});

test('a bare address is a host network', () => {
  expect(parseCidr('192.0.2.7')).toMatchObject({ ok: true, value: { text: '192.0.2.7/32' } });
  expect(parseCidr('::1')).toMatchObject({ ok: true, value: { text: '::1/128' } });
});

test.each(['10.0.0.0/33', '300.1.1.1', '10.0.0.1/24', 'example.com', '10.0.0/8'])('rejects %s', (text) => {
  expect(parseCidr(text).ok).toBe(false);
});

test.each([
  ['127.0.0.1', true],
  ['127.8.9.10', true],
  ['::1', true],
  ['::ffff:127.0.0.1', true],
  ['0.0.0.0', false],
  ['192.168.1.1', false],
])('isLoopback(%s) = %s', (ip, loop) => {
  expect(isLoopback(ip)).toBe(loop);
});
