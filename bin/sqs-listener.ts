#!/usr/bin/env -S node --import tsx
// The sqs-listener sidecar: bootstraps the task's Redis, then applies control events.
import { main } from '../lib/sidecars/sqs-listener/main.ts';

main().catch((err) => {
  console.error(
    JSON.stringify({
      level: 'fatal',
      service: 'sqs-listener',
      msg: 'failed to start',
      err: String(err?.stack ?? err),
    }),
  );
  process.exit(1);
});
