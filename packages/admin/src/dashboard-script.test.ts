import { expect, test } from 'vitest';
import { DASHBOARD_JS } from './dashboard/script.js';

// The page's script is a string in TypeScript: an escape that is wrong there is a syntax
// error only the browser would see. Parse it here, so the failure says what it is.
test('the dashboard script parses', () => {
  expect(() => new Function(DASHBOARD_JS)).not.toThrow();
});
