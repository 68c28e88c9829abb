import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDeploymentConfig } from '../../lib/config/deployment-config.ts';
import { buildEdgeApp } from '../../lib/infra/edge-app.ts';
import { cdkContext, exampleConfig, registryImages } from './fixtures.ts';

// Every ARN and region a regional task receives (container definitions: environment, secrets,
// log configuration; the task and execution roles' policies) belongs to that task's region,
// except the ones listed here, each global by nature or deliberately in the home region.
const HOME = 'eu-west-1';
const ACCOUNT = '123456789012';

interface Exception {
  readonly what: string;
  /** Why a task in another region may legitimately receive it. */
  readonly why: string;
  readonly matches: (where: string, value: string) => boolean;
}

const EXCEPTIONS: readonly Exception[] = [
  {
    what: 'the event topic (home region)',
    why: 'one topic for the whole deployment: the redis-listener publishes cert.issued to it and each sqs-listener subscribes its own queue to it (SNS delivers to SQS across regions)',
    matches: (_w, v) => v.includes(`:sns:${HOME}:${ACCOUNT}:edge-events`),
  },
  {
    what: "the topic's KMS key (home region), only through SNS",
    why: 'publishing to a KMS-encrypted topic needs kms:GenerateDataKey/Decrypt on its key; the grant is limited by kms:ViaService to SNS in the home region',
    matches: (w, v) => w.includes('EventTopicEncryption') && v.includes(`:kms:${HOME}:${ACCOUNT}:key/*`),
  },
  {
    what: 'the state table replica in the home region',
    why: "the issuer's lease, issuance and budget items take conditional writes in one region only (one issuer per domain fleet-wide); everything else reads and writes this region's replica",
    matches: (w, v) =>
      w.includes('StateTable') && v.includes(`:dynamodb:${HOME}:${ACCOUNT}:table/edge-state`),
  },
  {
    what: "the home region's name, given to the issuer",
    why: 'the issuer builds its DynamoDB client for the lease table in the home region (see above)',
    matches: (w, v) => /HOME_REGION/.test(w) && v === HOME,
  },
  {
    what: 'the kms:ViaService condition naming SNS in the home region',
    why: 'the condition value of the topic-key grant above, not a resource',
    matches: (w, v) => w.includes('EventTopicEncryption') && v === `sns.${HOME}.amazonaws.com`,
  },
];

const REGION_NAME = /\b(?:us|eu|ap|sa|ca|me|af|il|mx)(?:-gov)?-[a-z]+-\d\b/g;
type Json = Record<string, unknown>;

/** A CloudFormation value as text: pseudo parameters resolved, this stack's own resources marked. */
function render(v: unknown, region: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map((x) => render(x, region)).join(',');
  if (v && typeof v === 'object') {
    const o = v as Json;
    if ('Ref' in o) {
      const ref = String(o.Ref);
      const pseudo: Record<string, string> = {
        'AWS::Partition': 'aws',
        'AWS::Region': region,
        'AWS::AccountId': ACCOUNT,
        'AWS::URLSuffix': 'amazonaws.com',
      };
      // Resources and SSM-backed parameters of this stack live in this stack's region.
      return pseudo[ref] ?? `<this-stack:${ref}>`;
    }
    if ('Fn::GetAtt' in o) return `<this-stack:${render(o['Fn::GetAtt'], region)}>`;
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map((p) => render(p, region)).join(sep);
    }
    return Object.entries(o)
      .map(([k, x]) => `${k}=${render(x, region)}`)
      .join(';');
  }
  return '';
}

/** [where, value] for every leaf the task receives. */
function received(t: Template, region: string): [string, string][] {
  const out: [string, string][] = [];
  const [taskDef] = Object.values(t.findResources('AWS::ECS::TaskDefinition'));
  const props = (taskDef?.Properties ?? {}) as Json;
  for (const c of (props.ContainerDefinitions as Json[]) ?? []) {
    const name = String(c.Name);
    for (const e of (c.Environment as Json[]) ?? [])
      out.push([`${name} env ${e.Name}`, render(e.Value, region)]);
    for (const s of (c.Secrets as Json[]) ?? [])
      out.push([`${name} secret ${s.Name}`, render(s.ValueFrom, region)]);
    const options = ((c.LogConfiguration as Json | undefined)?.Options ?? {}) as Json;
    for (const [k, x] of Object.entries(options)) out.push([`${name} log ${k}`, render(x, region)]);
  }
  const roleIds = [props.TaskRoleArn, props.ExecutionRoleArn].map(
    (r) => ((r as Json)['Fn::GetAtt'] as string[])[0],
  );
  for (const [id, policy] of Object.entries(t.findResources('AWS::IAM::Policy'))) {
    const p = policy.Properties as Json;
    const roles = ((p.Roles as Json[]) ?? []).map((r) => String(r.Ref));
    if (!roles.some((r) => roleIds.includes(r))) continue;
    for (const s of (p.PolicyDocument as Json).Statement as Json[]) {
      const where = `${id} ${String(s.Sid ?? '')}`;
      for (const r of [s.Resource].flat()) out.push([`${where} resource`, render(r, region)]);
      for (const [op, cond] of Object.entries((s.Condition as Json) ?? {})) {
        for (const [key, x] of Object.entries(cond as Json)) {
          for (const value of [x].flat())
            out.push([`${where} condition ${op} ${key}`, render(value, region)]);
        }
      }
    }
  }
  return out;
}

let byRegion: Record<string, [string, string][]>;

beforeAll(() => {
  const edge = buildEdgeApp(parseDeploymentConfig(exampleConfig()), {
    nag: false,
    images: registryImages(),
    appProps: { context: cdkContext() },
  });
  byRegion = Object.fromEntries(
    edge.regions.map((s) => [s.region, received(Template.fromStack(s), s.region)]),
  );
});

describe('what a regional task receives', () => {
  it.each(['eu-west-1', 'us-east-1', 'ap-southeast-1'])(
    'names only its own region (%s), apart from the listed exceptions',
    (region) => {
      const items = byRegion[region] ?? [];
      expect(items.length).toBeGreaterThan(20);
      const foreign = items.filter(([where, value]) => {
        const others = (value.match(REGION_NAME) ?? []).filter((r) => r !== region);
        return others.length > 0 && !EXCEPTIONS.some((e) => e.matches(where, value));
      });
      expect(foreign).toEqual([]);
    },
  );

  it("gives every task its own region's private-key KMS key", () => {
    for (const [region, items] of Object.entries(byRegion)) {
      const kmsKey = items.filter(([where]) => /KMS_KEY_ID$/.test(where));
      expect(kmsKey.length, region).toBeGreaterThan(0);
      // A key created in (or resolved by) this very stack: the replica, or the home primary's parameter.
      for (const [, value] of kmsKey)
        expect(value, region).toMatch(/^<this-stack:(PrivateKeys|SsmParameterValueedgeprivatekeys)/);
    }
  });

  it('uses every listed exception outside the home region, so the list stays exact', () => {
    const items = byRegion['us-east-1'] ?? [];
    for (const e of EXCEPTIONS) {
      expect(
        items.some(([w, v]) => e.matches(w, v)),
        e.what,
      ).toBe(true);
      expect(e.why.length).toBeGreaterThan(40);
    }
  });
});
