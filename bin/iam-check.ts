/**
 * The rehearsal's offline permission check: every recorded AWS call against the synthesized
 * task role of one regional stack. Exits 1 when a call is denied (or, with --strict, when a
 * grant no call used is missing from the allow-list); the last line is a one-line summary.
 *
 *   npx tsx bin/iam-check.ts --assembly cdk.out --stack edge-eu-central-1 --record calls.jsonl \
 *     [--allow-unused config/iam-expected-unused.txt] [--strict] [--json report.json]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkPermissions, formatReport } from '../lib/rehearsal/iam-check.ts';

const { values } = parseArgs({
  options: {
    assembly: { type: 'string', default: 'cdk.out' },
    stack: { type: 'string' },
    record: { type: 'string' },
    'allow-unused': { type: 'string' },
    account: { type: 'string' },
    region: { type: 'string' },
    strict: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
if (!values.stack || !values.record) {
  process.stderr.write('iam-check: --stack and --record are required\n');
  process.exit(2);
}
const report = await checkPermissions({
  assemblyDir: values.assembly,
  stackName: values.stack,
  recordFile: values.record,
  allowUnusedFile: values['allow-unused'],
  account: values.account,
  region: values.region,
  strict: values.strict,
});
if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`${formatReport(report)}\n`);
process.exit(report.ok ? 0 : 1);
