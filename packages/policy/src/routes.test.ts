import { describe, expect, test } from 'vitest';
import { formatNextHop, parseDestination, parseNextHop, routeIdOf } from './routes.js';

describe('parseNextHop', () => {
  test.each([
    ['[192.168.1.254]', { host: '192.168.1.254', port: 25, mx: false }],
    ['[192.168.1.254]:2525', { host: '192.168.1.254', port: 2525, mx: false }],
    ['[IPv6:2001:db8::1]:587', { host: '2001:db8::1', port: 587, mx: false }],
    ['[2001:DB8::1]', { host: '2001:db8::1', port: 25, mx: false }],
    ['[Mail.Example.com]', { host: 'mail.example.com', port: 25, mx: false }],
    ['mail.example.com', { host: 'mail.example.com', port: 25, mx: true }],
    ['mail.example.com.:2525', { host: 'mail.example.com', port: 2525, mx: true }],
    ['10.0.0.5:26', { host: '10.0.0.5', port: 26, mx: false }],
  ])('%s', (text, hop) => {
    expect(parseNextHop(text)).toEqual({ ok: true, value: hop });
  });

  test.each([
    ['[192.168.1.254', /missing "\]"/],
    ['[192.168.1.254]:0', /out of range/],
    ['[192.168.1.254]:99999', /out of range/],
    ['[192.168.1.254]x', /":number"/],
    ['2001:db8::1', /must be in brackets/],
    ['bad_host.example', /neither an IP/],
    ['', /neither an IP/],
    ['-lead.example.com', /neither an IP/],
  ])('rejects %j', (text, why) => {
    const r = parseNextHop(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(why);
  });

  test.each([
    '[192.168.1.254]',
    '[192.168.1.254]:2525',
    'mail.example.com',
    '[2001:db8::1]:26',
    '[mx.example.com]',
  ])('%s formats back to itself', (text) => {
    const r = parseNextHop(text);
    if (!r.ok) throw new Error(r.error);
    expect(formatNextHop(r.value)).toBe(text);
  });
});

test('a failover list keeps its order and names one route', () => {
  const r = parseDestination(['[10.0.0.5]', '[10.0.0.6]:2525']);
  if (!r.ok) throw new Error(r.error);
  expect(r.value.map((h) => h.host)).toEqual(['10.0.0.5', '10.0.0.6']);
  expect(routeIdOf(r.value)).toBe('[10.0.0.5],[10.0.0.6]:2525');
  expect(routeIdOf([])).toBe('mx');
});
