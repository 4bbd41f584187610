/** The answer parsers of Rspamd and spamd: what each daemon says, and garbage. */
import { describe, expect, test } from 'vitest';
import { parseHttpReply, parseRspamdReply } from './rspamd.js';
import { parseSpamdReply } from './spamd.js';

describe('parseRspamdReply', () => {
  test('an answer of /checkv2', () => {
    const json = JSON.stringify({
      is_skipped: false,
      score: 15.5,
      required_score: 15,
      action: 'rewrite subject',
      subject: '*** SPAM *** hi',
      symbols: { GTUBE: { score: 0 }, ARC_NA: { score: 0 } },
    });
    expect(parseRspamdReply(200, json)).toEqual({
      action: 'rewrite subject',
      score: 15.5,
      required: 15,
      symbols: ['ARC_NA', 'GTUBE'],
      subject: '*** SPAM *** hi',
    });
  });

  test.each([
    [200, 'notjson'],
    [200, '{"score": 1}'],
    [200, '{"action": "quarantine", "score": 1}'],
    [200, '{"action": "reject"}'],
    [500, '{"error": "internal"}'],
  ])('HTTP %s %j throws', (status, text) => {
    expect(() => parseRspamdReply(status, text)).toThrow(/^rspamd answered/);
  });
});

describe('parseHttpReply (Rspamd over a plain socket)', () => {
  const json = '{"action":"no action","score":1.5,"required_score":15,"symbols":{}}';
  test('status, headers, then the JSON body', () => {
    const reply = Buffer.from(
      `HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: ${json.length}\r\n\r\n${json}`,
    );
    expect(parseHttpReply(reply)).toEqual({ action: 'no action', score: 1.5, required: 15, symbols: [] });
  });

  test.each([
    ['', /^rspamd answered ""/],
    ['HTTP/1.1 2', /^rspamd answered/],
    ['GARBAGE\r\n\r\n{}', /^rspamd answered/],
    [`HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n${json}`, /cut off \(\d+ of 500 bytes\)/],
    ['HTTP/1.1 503 Service Unavailable\r\n\r\nbusy', /^rspamd answered HTTP 503/],
  ])('%j throws', (text, error) => {
    expect(() => parseHttpReply(Buffer.from(text))).toThrow(error);
  });
});

describe('parseSpamdReply', () => {
  test.each([
    [
      'SPAMD/1.1 0 EX_OK\r\nContent-length: 12\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nGTUBE,NO_RELAYS',
      { spam: true, score: 1000, threshold: 5, symbols: ['GTUBE', 'NO_RELAYS'] },
    ],
    [
      'SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.1 / 5.0\r\n\r\n',
      { spam: false, score: -0.1, threshold: 5, symbols: [] },
    ],
    [
      'SPAMD/1.5 0 EX_OK\r\nSpam: yes ; 6.2 / 5.0\r\n\r\nA',
      { spam: true, score: 6.2, threshold: 5, symbols: ['A'] },
    ],
  ])('%j', (reply, result) => {
    expect(parseSpamdReply(reply)).toEqual(result);
  });

  test.each([
    ['', /^spamd answered ""/],
    ['WHAT?\0', /^spamd answered/],
    ['SPAMD/1.0 76 Bad header line: (null)\r\n\r\n', /^spamd refused the message/],
    ['SPAMD/1.1 0 EX_OK\r\nContent-length: 3\r\n\r\nabc', /^spamd sent no Spam header/],
  ])('%j throws', (reply, error) => {
    expect(() => parseSpamdReply(reply)).toThrow(error);
  });
});
