/**
 * npm run rehearse: the synthesized regional task run locally in one podman pod, only AWS
 * endpoints and unreachable images substituted (lib/rehearsal/README.md).
 *
 *   rehearse [--stack edge-us-east-1] [--config config/example.deployment.json] [--keep] [--assembly cdk.out-dir]
 *            [--faults [--outage-seconds 600] [--kms-throttle 0.5]]
 *
 * --faults (not in CI at its default length): after the serving checks, the bus, DynamoDB and KMS
 * unavailable for --outage-seconds under load, the live task queue deleted, and the task replaced
 * under load while KMS throttles a share of the calls of two bootstrapping tasks (lib/rehearsal/faults.ts).
 */
import { parseArgs } from 'node:util';
import { rehearse } from '../lib/rehearsal/run.ts';

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: 'config/example.deployment.json' },
    stack: { type: 'string' },
    keep: { type: 'boolean', default: false },
    assembly: { type: 'string' },
    faults: { type: 'boolean', default: false },
    'outage-seconds': { type: 'string', default: '600' },
    'kms-throttle': { type: 'string', default: '0.5' },
  },
});
const outageSeconds = Number(values['outage-seconds']);
const kmsThrottleFraction = Number(values['kms-throttle']);
if (!(outageSeconds > 0) || !(kmsThrottleFraction >= 0 && kmsThrottleFraction <= 1)) {
  process.stderr.write(
    `rehearse: --outage-seconds must be > 0 and --kms-throttle within 0..1, got ${values['outage-seconds']} and ${values['kms-throttle']}\n`,
  );
  process.exit(2);
}
process.exitCode = await rehearse({
  configPath: values.config as string,
  stack: values.stack,
  keep: values.keep,
  assembly: values.assembly,
  faults: values.faults ? { outageSeconds, kmsThrottleFraction } : undefined,
});
