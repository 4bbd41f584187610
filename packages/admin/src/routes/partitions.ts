/** GET /partitions: the queue partitions (redis.partitions), where each lives and what it holds. */
import { partitionFigures } from '@moat/spool';
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../deps.js';
import { errorSchema } from '../errors.js';

const partitionSchema = {
  type: 'object',
  properties: {
    partition: { type: 'integer' },
    tag: { type: 'string', description: 'the hash tag of its keys, e.g. {moat:p7}' },
    slot: { type: 'integer', description: 'its Redis Cluster slot' },
    messages: { type: 'integer', description: 'messages it holds' },
    placing: { type: 'boolean', description: 'whether new mail is placed in it' },
  },
  required: ['partition', 'tag', 'slot', 'messages', 'placing'],
} as const;

export function registerPartitionRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get(
    '/partitions',
    {
      schema: {
        tags: ['queue'],
        summary:
          'Queue partitions: each one that may hold mail, its slot, the messages it holds, and whether new mail goes there',
        response: {
          200: {
            type: 'object',
            properties: {
              placement: { type: 'integer', description: 'redis.partitions of this node' },
              partitions: { type: 'array', items: partitionSchema },
            },
            required: ['placement', 'partitions'],
          },
          503: errorSchema,
        },
      },
    },
    async () => ({ placement: deps.spool.placement, partitions: await partitionFigures(deps.spool) }),
  );
}
