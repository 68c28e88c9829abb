import { defineConfig } from 'vitest/config';

// `npm run test:auto-ssl`: the real lua-resty-auto-ssl (EDGE_AUTO_SSL_DIR), not part of `npm test`.
export default defineConfig({
  test: {
    include: ['test/auto-ssl/**/*.real.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
