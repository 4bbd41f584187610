import ipaddr from 'ipaddr.js';
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
    ['10.0.0.1.', false],
    ['10.0.0.', false],
    ['10.0.0.256', false],
    ['10..0.1', false],
    ['::ffff:', false],
  ])('%s → %s', (ip, inside) => {
    expect(ipInAny(ip, nets)).toBe(inside);
  });

  test('agrees with ipaddr.js on random addresses and networks, written every way it reads them', () => {
    let seed = 11;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return (seed >>> 8) % n;
    };
    // Near the edges of the networks: few distinct octets, so addresses fall in and out of them.
    const octet = () => [0, 1, 9, 10, 127, 128, 168, 192, 254, 255][next(10)] as number;
    let inside = 0;
    for (let round = 0; round < 300; round++) {
      const networks = Array.from({ length: 1 + next(3) }, () => {
        const bits = next(33);
        const addr = ipaddr.fromByteArray(Array.from({ length: 4 }, octet));
        const network = ipaddr.IPv4.networkAddressFromCIDR(`${addr.toString()}/${bits}`);
        const parsed = parseCidr(`${network.toString()}/${bits}`);
        if (!parsed.ok) throw new Error(parsed.error);
        return parsed.value;
      });
      for (let k = 0; k < 20; k++) {
        const quad = Array.from({ length: 4 }, octet).join('.');
        // As a socket writes it, IPv4-mapped, with a leading zero (octal to ipaddr.js), in capitals.
        for (const ip of [quad, `::ffff:${quad}`, quad.replace(/^(\d)\./, '0$1.'), `::FFFF:${quad}`]) {
          let expected: boolean;
          try {
            const addr = ipaddr.process(ip);
            expected = networks.some((n) => n.kind === addr.kind() && addr.match(n.range));
          } catch {
            expected = false;
          }
          if (expected) inside++;
          expect(ipInAny(ip, networks), `${ip} in ${networks.map((n) => n.text).join(', ')}`).toBe(expected);
        }
      }
    }
    expect(inside).toBeGreaterThan(2000);
    expect(inside).toBeLessThan(22000);
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
