// Random duplicate/reorder/drop of events while certificates are issued, revoked and tasks replaced;
// counts lost and duplicated certificates. `npx tsx bench/fault-run.ts --seconds 600 [--seed 1]`

import { faultRun } from './replication/fault-run.ts';
import { arg, startBenchStack } from './replication/setup.ts';

const seconds = arg('seconds', 60);
const stack = await startBenchStack('fault-run');
try {
  const result = await faultRun({
    store: stack.store,
    redisPort: stack.redisPort,
    durationMs: seconds * 1000,
    seed: arg('seed', 1),
    faults: { duplicate: 0.1, reorder: 0.1, drop: 0.05 },
    log: (line) => console.log(line),
  });
  console.log(JSON.stringify({ bench: 'fault-run', seconds, ...result }));
  if (result.lostInStore || result.lostInRegions || result.duplicateAnnouncements) process.exitCode = 1;
} finally {
  await stack.stop();
}
