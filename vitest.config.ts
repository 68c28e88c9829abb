import { defineConfig } from 'vitest/config';

// Integration tests start real processes (nginx, redis, pebble) on loopback ports;
// they run in separate forks so one suite's processes never outlive it.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: true,
    maxWorkers: 2,
  },
});
