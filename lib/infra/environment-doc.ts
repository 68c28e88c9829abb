// Writes docs/environment.md from the environment contracts: `npx tsx lib/infra/environment-doc.ts`.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { EnvContract, EnvVars } from '../config/env-contract.ts';
import { edgeConfigEnv, edgeEnv } from '../edge/environment.ts';
import { issuerEnv } from '../sidecars/issuer/config.ts';
import { redisListenerEnv } from '../sidecars/redis-listener/config.ts';
import { sqsListenerEnv } from '../sidecars/sqs-listener/config.ts';

export const ENVIRONMENT_DOC_PATH = fileURLToPath(new URL('../../docs/environment.md', import.meta.url));

/** Every program's contract, in the order the task starts them. */
export const CONTRACTS: readonly EnvContract<EnvVars>[] = [
  edgeConfigEnv,
  edgeEnv,
  sqsListenerEnv,
  redisListenerEnv,
  issuerEnv,
];

const WHERE: Record<string, string> = {
  'render-edge-config':
    '`edge-config` container, `bin/render-edge-config.ts`; contract `edgeConfigEnv` in `lib/edge/environment.ts`',
  edge: '`edge` container (nginx: `edge-image/edge-entrypoint.sh` and the Lua); contract `edgeEnv` in `lib/edge/environment.ts`',
  'sqs-listener': '`bin/sqs-listener.ts`; contract `sqsListenerEnv` in `lib/sidecars/sqs-listener/config.ts`',
  'redis-listener':
    '`bin/redis-listener.ts`; contract `redisListenerEnv` in `lib/sidecars/redis-listener/config.ts`',
  issuer: '`bin/issuer.ts`; contract `issuerEnv` in `lib/sidecars/issuer/config.ts`',
};

export function renderEnvironmentDoc(): string {
  const out = [
    '# Environment variables of the task’s programs',
    '',
    '<!-- Generated from the environment contracts by lib/infra/environment-doc.ts; do not edit. -->',
    '',
    'Every variable the project defines is `EDGE_<FIELD>`, and one name means one thing in every program',
    'that reads it. Standard AWS SDK variables (`AWS_REGION`, `AWS_ENDPOINT_URL_*`, credentials) are in no',
    'contract: the SDK reads them itself. Each program exports its contract; it parses its environment',
    'from it once at start (every problem reported at once, naming the variable; secret values never',
    'shown) and the CDK builds each container’s `environment` and `secrets` from it',
    '(`containerEnvironment` in `lib/infra/container-environment.ts`), so a misnamed or missing variable',
    'fails at `tsc`. `test/infra/env-contracts.test.ts` holds the synthesized task definition to the',
    'contracts. A program logs the `EDGE_*` variables it was given but does not read.',
    '',
    '“secret” variables arrive through ECS `secrets` (Secrets Manager), never as plain values.',
  ];
  for (const c of CONTRACTS) {
    out.push(
      '',
      `## ${c.program}`,
      '',
      `${WHERE[c.program] ?? ''}.`,
      '',
      '| variable | | field | what |',
      '|---|---|---|---|',
    );
    for (const v of c.describe()) {
      const kind = [v.required ? 'required' : 'optional', ...(v.secret ? ['secret'] : [])].join(', ');
      out.push(`| \`${v.name}\` | ${kind} | \`${v.field}\` | ${v.doc.replace(/\|/g, '\\|')} |`);
    }
  }
  return `${out.join('\n')}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(ENVIRONMENT_DOC_PATH, renderEnvironmentDoc());
  console.log(`wrote ${ENVIRONMENT_DOC_PATH}`);
}
