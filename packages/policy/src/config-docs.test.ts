import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { parseConfig } from './config.js';

const doc = readFileSync(join(import.meta.dirname, '../../../docs/configuration.md'), 'utf8');

// Every key of the effective config (all defaults filled in) must have a row in docs/configuration.md:
// top-level scalars under "## Top level", each section's keys under "## `section`".
const r = parseConfig({ hostname: 'relay.example.com' });
if (!r.ok) throw new Error('default config invalid');
const rows: [string, string, string][] = [];
for (const [key, value] of Object.entries(r.config)) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const sub of Object.keys(value)) rows.push([`${key}.${sub}`, `## \`${key}\``, sub]);
  } else {
    rows.push([key, '## Top level', key]);
  }
}

test.each(rows)('%s is documented', (_name, heading, key) => {
  const start = doc.indexOf(heading);
  expect(start, `no section "${heading}"`).toBeGreaterThanOrEqual(0);
  const end = doc.indexOf('\n## ', start + heading.length);
  expect(doc.slice(start, end < 0 ? undefined : end)).toContain(`| \`${key}\` |`);
});
