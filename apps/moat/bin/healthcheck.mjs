#!/usr/bin/env node
// The container's health check (Dockerfile HEALTHCHECK, Kubernetes exec probes): exit 0 when
// the process answers, 1 otherwise, within 5 s. What to ask comes from MOAT_HEALTHCHECK:
//   http://127.0.0.1:8025/health   (the default) a 200 from the admin API
//   smtp://127.0.0.1:25             a 220 greeting from the SMTP edge (then QUIT)
//   smtp+proxy://127.0.0.1:25       the same, after a "PROXY UNKNOWN" line, for an edge with
//                                   smtp.proxyProtocol (127.0.0.1 in smtp.trustedProxies)
import net from 'node:net';

const target = new URL(process.env.MOAT_HEALTHCHECK || 'http://127.0.0.1:8025/health');
const fail = (why) => {
  process.stderr.write(`healthcheck ${target.href}: ${why}\n`);
  process.exit(1);
};
setTimeout(() => fail('no answer in 5 s'), 5000).unref();

if (target.protocol === 'smtp:' || target.protocol === 'smtp+proxy:') {
  const socket = net.connect(Number(target.port || 25), target.hostname.replace(/^\[|\]$/g, ''));
  if (target.protocol === 'smtp+proxy:') socket.write('PROXY UNKNOWN\r\n');
  let greeting = '';
  socket.on('data', (chunk) => {
    greeting += chunk.toString('latin1');
    if (!greeting.includes('\n')) return;
    if (!greeting.startsWith('220')) fail(`greeting ${JSON.stringify(greeting.trim())}`);
    socket.end('QUIT\r\n');
    process.exit(0);
  });
  socket.on('error', (err) => fail(err.code ?? err.message));
} else if (target.protocol === 'http:' || target.protocol === 'https:') {
  fetch(target, { signal: AbortSignal.timeout(5000) }).then(
    (res) => (res.status === 200 ? process.exit(0) : fail(`HTTP ${res.status}`)),
    (err) => fail(err.cause?.code ?? err.message),
  );
} else {
  fail('MOAT_HEALTHCHECK must be an http://, https://, smtp:// or smtp+proxy:// URL');
}
