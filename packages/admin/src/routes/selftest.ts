/**
 * POST /selftest/relay: the policy core's open-relay probes run against the running
 * configuration; every case is reported, and `passed` is false if any would make Moat an open
 * relay or refuse its own domains.
 */
import { replyText, runRelayProbes } from '@moat/policy';
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../deps.js';
import { bool, int, nullable, str } from '../schemas.js';

export function registerSelftestRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.post(
    '/selftest/relay',
    {
      schema: {
        tags: ['selftest'],
        summary: 'Run the open-relay probes against the running configuration',
        response: {
          200: {
            type: 'object',
            properties: {
              passed: bool,
              total: int,
              failed: int,
              cases: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: str,
                    clientIp: str,
                    recipient: str,
                    expect: { type: 'string', enum: ['accept', 'reject'] },
                    action: { type: 'string', enum: ['accept', 'reject'] },
                    reason: nullable('string'),
                    reply: nullable('string'),
                    passed: bool,
                  },
                  required: [
                    'name',
                    'clientIp',
                    'recipient',
                    'expect',
                    'action',
                    'reason',
                    'reply',
                    'passed',
                  ],
                },
              },
            },
            required: ['passed', 'total', 'failed', 'cases'],
          },
        },
      },
    },
    async () => {
      const cases = runRelayProbes(deps.policy).map((r) => ({
        name: r.probe.name,
        clientIp: r.probe.clientIp,
        recipient: r.probe.recipient,
        expect: r.probe.expect,
        action: r.verdict.action,
        reason: r.verdict.action === 'reject' ? r.verdict.reason : null,
        reply: r.verdict.action === 'reject' ? `${r.verdict.reply.code} ${replyText(r.verdict.reply)}` : null,
        passed: r.passed,
      }));
      const failed = cases.filter((c) => !c.passed).length;
      return { passed: failed === 0, total: cases.length, failed, cases };
    },
  );
}
