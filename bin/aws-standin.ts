/**
 * The rehearsal's AWS stand-in as a process: SNS, SQS, KMS, Secrets Manager and Route53 served
 * locally, DynamoDB proxied to dynalite, every call recorded for the offline permission check.
 * Prints `{"event":"listening",...}` with the endpoints first, then one JSON line per request.
 *
 *   npx tsx bin/aws-standin.ts --account 111122223333 --region eu-west-1 --record out/calls.jsonl \
 *     [--port 0] [--host 127.0.0.1] [--public-host 10.0.2.2] [--secrets-dir DIR] \
 *     [--challtestsrv http://127.0.0.1:8055] [--dynalite http://127.0.0.1:4567] \
 *     [--queue edge-dlq]... [--topic-key <topic arn>=<key>]... [--multi-region-keys]
 */
import { parseArgs } from 'node:util';
import { startAwsStandIn } from '../lib/rehearsal/aws/server.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'public-host': { type: 'string' },
    account: { type: 'string' },
    region: { type: 'string' },
    'secrets-dir': { type: 'string' },
    challtestsrv: { type: 'string' },
    dynalite: { type: 'string' },
    record: { type: 'string' },
    queue: { type: 'string', multiple: true, default: [] },
    'topic-key': { type: 'string', multiple: true, default: [] },
    'multi-region-keys': { type: 'boolean', default: false },
  },
});

function required(name: 'account' | 'region' | 'record'): string {
  const v = values[name];
  if (!v) {
    process.stderr.write(`aws-standin: --${name} is required\n`);
    process.exit(2);
  }
  return v;
}

const standIn = await startAwsStandIn({
  port: Number(values.port),
  host: values.host,
  publicHost: values['public-host'],
  accountId: required('account'),
  region: required('region'),
  recordFile: required('record'),
  secretsDir: values['secrets-dir'],
  challtestsrvUrl: values.challtestsrv,
  dynaliteUrl: values.dynalite,
  // --queue [region:]name
  queues: values.queue.map((q) => {
    const i = q.indexOf(':');
    return i > 0 ? { region: q.slice(0, i), name: q.slice(i + 1) } : { name: q };
  }),
  topicKeys: Object.fromEntries(
    values['topic-key'].map((t) => {
      const i = t.lastIndexOf('=');
      return [t.slice(0, i), t.slice(i + 1)];
    }),
  ),
  multiRegionKeys: values['multi-region-keys'],
});
process.stdout.write(
  `${JSON.stringify({ event: 'listening', port: standIn.port, url: standIn.url, endpoints: standIn.endpoints, recordFile: standIn.recordFile })}\n`,
);

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    void standIn.stop().then(() => process.exit(0));
  });
}
