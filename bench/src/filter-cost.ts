/**
 * Moat's own CPU per message for the filter path, apart from the daemons' and from the accept
 * path: the edge's runFilters (the code the edge runs after DATA) with the filters built from
 * a config, against real clamd and Rspamd (the testkit's) and mailauth through a DNS server on
 * loopback, driven in-process with `--concurrency` messages in flight. The process's own CPU
 * time (process.cpuUsage) over the run is the figure; the daemons, and the DNS server (which
 * Rspamd asks too), run in processes of their own.
 *
 *   node bench/dist/filter-cost.js [--messages 2000] [--concurrency 20] [--size 10]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { runFilters } from '@moat/edge';
import { buildFilters, lookupThrough } from '@moat/filters';
import { parseConfig } from '@moat/policy';
import { startClamd, startRspamd } from '@moat/testkit';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '20' },
    size: { type: 'string', default: '10' },
  },
});
const messages = Number(values.messages);
const concurrency = Number(values.concurrency);
const size = Number(values.size) * 1024;

/** The testkit's DNS server (an empty zone: every name NXDOMAIN) in a child process. */
async function dnsProcess() {
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "const { startDns } = await import('@moat/testkit'); const d = await startDns({}); process.stdout.write(d.server + '\\n'); setInterval(() => {}, 1e9);",
    ],
    { cwd: import.meta.dirname, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
  return { server: chunk.toString().trim(), close: async () => void child.kill('SIGTERM') };
}

const dns = await dnsProcess();
const [clamd, rspamd] = await Promise.all([startClamd(), startRspamd({ dnsServer: dns.server })]);

function body(i: number): Buffer {
  const head = `From: sender${i % 50}@example.net\r\nTo: user@example.com\r\nSubject: message ${i}\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <${i}@example.net>\r\n\r\n`;
  const line = 'The quick brown fox jumps over the lazy dog, again and again and again.\r\n';
  return Buffer.from(head + line.repeat(Math.max(1, Math.ceil((size - head.length) / line.length))));
}

const SETS: Record<string, Record<string, unknown>> = {
  clamav: { clamav: { address: `127.0.0.1:${clamd.port}` } },
  rspamd: { rspamd: { url: rspamd.url, action: 'tag' } },
  authentication: { authentication: {} },
  'all three': {
    clamav: { address: `127.0.0.1:${clamd.port}` },
    rspamd: { url: rspamd.url, action: 'tag' },
    authentication: {},
  },
};

async function measure(name: string, block: Record<string, unknown>) {
  const parsed = parseConfig({ hostname: 'relay.bench', filters: block, dns: { servers: [dns.server] } });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const { filters } = buildFilters(parsed.config.filters, {
    hostname: 'relay.bench',
    lookup: lookupThrough([dns.server], 2000),
  });
  const bodies = Array.from({ length: 200 }, (_, i) => body(i));
  const run = async (count: number) => {
    let next = 0;
    let errors = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          const i = next++;
          const out = await runFilters(filters, {
            queueId: `Q${i}`,
            direction: 'inbound',
            sender: `sender${i % 50}@example.net`,
            recipients: ['user@example.com'],
            clientIp: `192.0.2.${(i % 200) + 1}`,
            helo: 'mx.example.net',
            user: null,
            body: bodies[i % bodies.length] as Buffer,
          });
          if (out.reports.some((r) => r.verdict === 'error')) errors++;
        }
      }),
    );
    return errors;
  };
  await run(Math.min(messages, 1000)); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const errors = await run(messages);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const ms = (cpu.user + cpu.system) / 1000 / messages;
  process.stdout.write(`| ${name} | ${ms.toFixed(3)} | ${(messages / seconds).toFixed(0)} | ${errors} |\n`);
}

process.stdout.write(
  `\n${size / 1024} KB messages, ${messages} per set, ${concurrency} in flight\n\n| filters | Moat CPU ms/msg | msgs/s | errors |\n|---|---|---|---|\n`,
);
try {
  for (const [name, block] of Object.entries(SETS))
    if (!process.env.ONLY || name === process.env.ONLY) await measure(name, block);
} finally {
  await Promise.all([clamd.stop(), rspamd.stop()]);
  await dns.close();
}
