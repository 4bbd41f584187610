import { defineConfig } from 'vitest/config';
import shared from '../vitest.shared.ts';

// The shared configuration, plus the chaos suite (chaos/): processes killed under load.
export default defineConfig({
  ...shared,
  test: { ...shared.test, include: ['src/**/*.test.ts', 'chaos/**/*.test.ts'] },
});
