/**
 * npm run rehearse: the synthesized regional task run locally in one podman pod, only AWS
 * endpoints and unreachable images substituted (lib/rehearsal/README.md).
 *
 *   rehearse [--stack edge-us-east-1] [--config config/example.deployment.json] [--keep] [--assembly cdk.out-dir]
 */
import { parseArgs } from 'node:util';
import { rehearse } from '../lib/rehearsal/run.ts';

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: 'config/example.deployment.json' },
    stack: { type: 'string' },
    keep: { type: 'boolean', default: false },
    assembly: { type: 'string' },
  },
});
process.exitCode = await rehearse({
  configPath: values.config as string,
  stack: values.stack,
  keep: values.keep,
  assembly: values.assembly,
});
