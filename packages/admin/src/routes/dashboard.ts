/**
 * The dashboard: a static page, script and stylesheet (no data in them, so no token needed to
 * fetch them); the script signs in with a token and calls the JSON API like any client.
 * A strict Content-Security-Policy allows only these files and calls to this origin.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { DASHBOARD_CSS, DASHBOARD_HTML } from '../dashboard/page.js';
import { DASHBOARD_JS } from '../dashboard/script.js';

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function send(reply: FastifyReply, type: string, body: string) {
  return reply
    .type(type)
    .header('content-security-policy', CSP)
    .header('x-frame-options', 'DENY')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-store')
    .send(body);
}

export function registerDashboardRoutes(app: FastifyInstance): void {
  const options = { config: { auth: 'public' as const }, schema: { hide: true } };
  app.get('/', options, async (_request, reply) => reply.redirect('/dashboard'));
  // Browsers ask for it on their own; an empty answer keeps a 401 out of their console.
  app.get('/favicon.ico', options, async (_request, reply) => reply.code(204).send());
  app.get('/dashboard', options, async (_request, reply) =>
    send(reply, 'text/html; charset=utf-8', DASHBOARD_HTML),
  );
  app.get('/dashboard/app.js', options, async (_request, reply) =>
    send(reply, 'text/javascript; charset=utf-8', DASHBOARD_JS),
  );
  app.get('/dashboard/app.css', options, async (_request, reply) =>
    send(reply, 'text/css; charset=utf-8', DASHBOARD_CSS),
  );
}
