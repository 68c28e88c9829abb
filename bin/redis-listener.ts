#!/usr/bin/env -S node --import tsx
// The redis-listener sidecar: persists and announces certificates written to the task's Redis.
import { main } from '../lib/sidecars/redis-listener/main.ts';

main().catch((err) => {
  console.error(
    JSON.stringify({
      level: 'fatal',
      service: 'redis-listener',
      msg: 'failed to start',
      err: String(err?.stack ?? err),
    }),
  );
  process.exit(1);
});
