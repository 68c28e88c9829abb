/**
 * The offline permission check: every AWS call the rehearsal recorded is evaluated against the
 * synthesized task role's policies with an offline IAM evaluator; every grant (action × resource
 * of a statement) that no call used is reported, unless an allow-list says it is expected.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { type CallRecord, readCallRecords } from './aws/record.ts';
import { resolveIntrinsics } from './intrinsics.ts';

export interface CheckPermissionsOptions {
  /** The synthesized cloud assembly (cdk.out). */
  readonly assemblyDir: string;
  /** The regional stack: its stack name or its artifact id. */
  readonly stackName: string;
  /** The stand-in's record of AWS calls (JSON lines). */
  readonly recordFile: string;
  /** Expected-unused grants, one `<action> <resource>` per line, `#` comments (see docs/rehearsal.md). */
  readonly allowUnusedFile?: string;
  /** Account, region and partition the template's pseudo parameters resolve to; default the stack's environment, else the account the calls name. */
  readonly account?: string;
  readonly region?: string;
  readonly partition?: string;
  /** Values for references the check cannot resolve on its own: `LogicalId` or `LogicalId.Attribute` → value. */
  readonly values?: Readonly<Record<string, string>>;
  /**
   * Resolves a reference the way the rehearsal resolved the task's environment (so generated
   * names and key ids agree with what the sidecars were given); `undefined` falls back to the
   * check's own resolution.
   */
  readonly reference?: (logicalId: string, attribute?: string) => string | undefined;
  /** The principal recorded for the task's own calls; default `task`. */
  readonly taskPrincipal?: string;
  /** Unused grants the allow-list does not name fail the check too (`ok` false); default false. */
  readonly strict?: boolean;
}

export interface Grant {
  /** `<policy logical id>/<statement index or Sid>` */
  readonly statement: string;
  readonly action: string;
  readonly resource: string;
  readonly conditional: boolean;
}

export interface CallVerdict {
  readonly call: Pick<CallRecord, 'principal' | 'action' | 'resource' | 'region' | 'context'>;
  /** How many recorded calls had exactly this shape. */
  readonly count: number;
  readonly decision: 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied' | 'Error';
  readonly reason: string;
}

export interface PermissionReport {
  readonly stackName: string;
  readonly roleLogicalId: string;
  readonly policies: readonly { readonly name: string; readonly document: unknown }[];
  /** References in the policies that could not be resolved (their place holds `<unresolved:…>`). */
  readonly unresolved: readonly string[];
  readonly calls: readonly CallVerdict[];
  readonly denied: readonly CallVerdict[];
  /** Grants no recorded call used and the allow-list does not name. */
  readonly unused: readonly Grant[];
  /** Grants no recorded call used, named by the allow-list. */
  readonly expectedUnused: readonly Grant[];
  /** Allow-list entries that match no unused grant (a grant now used, or gone). */
  readonly staleAllowList: readonly string[];
  /**
   * Calls signed by someone other than the task (the control plane seeding and purging): not the
   * task role's business, so neither judged nor counted as using a grant.
   */
  readonly otherCallers: readonly { readonly principal: string; readonly count: number }[];
  readonly strict: boolean;
  /** True when every recorded call is allowed (and, when strict, no grant is unused and unlisted). */
  readonly ok: boolean;
}

interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}

interface Template {
  readonly Resources?: Record<string, TemplateResource>;
  readonly Parameters?: Record<string, { Default?: unknown }>;
}

interface Scope {
  readonly account: string;
  readonly region: string;
  readonly partition: string;
  readonly stackName: string;
  readonly template: Template;
  readonly values: Readonly<Record<string, string>>;
  readonly reference?: (logicalId: string, attribute?: string) => string | undefined;
  /** Key ARNs the recorded calls used, by alias (`<region>/<alias>`): resolves keys CloudFormation named. */
  readonly keysByAlias: ReadonlyMap<string, string>;
  readonly unresolved: Set<string>;
}

interface Statement {
  Sid?: string;
  Effect: string;
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: unknown;
}

export class PermissionCheckError extends Error {
  override readonly name = 'PermissionCheckError';
}

export async function checkPermissions(opts: CheckPermissionsOptions): Promise<PermissionReport> {
  const { template, stackName, env } = loadStack(opts.assemblyDir, opts.stackName);
  const taskPrincipal = opts.taskPrincipal ?? 'task';
  const recorded = readCallRecords(readFileSync(opts.recordFile, 'utf8'));
  // The task's calls and what AWS services do on its behalf (a service principal, `*.amazonaws.com`).
  const isTasks = (c: CallRecord) => c.principal === taskPrincipal || c.principal.endsWith('.amazonaws.com');
  const calls = recorded.filter(isTasks);
  const otherCallers = new Map<string, number>();
  for (const c of recorded.filter((x) => !isTasks(x)))
    otherCallers.set(c.principal, (otherCallers.get(c.principal) ?? 0) + 1);
  const firstArnAccount = calls.map((c) => c.resource.split(':')[4]).find((a) => a && /^\d{12}$/.test(a));
  const scope: Scope = {
    account: opts.account ?? env.account ?? firstArnAccount ?? '123456789012',
    region: opts.region ?? env.region ?? calls[0]?.region ?? 'us-east-1',
    partition: opts.partition ?? 'aws',
    stackName,
    template,
    values: opts.values ?? {},
    reference: opts.reference,
    keysByAlias: keysByAlias(calls),
    unresolved: new Set(),
  };
  const roleLogicalId = taskRole(template, stackName);
  const policies = rolePolicies(template, roleLogicalId, scope);
  const allowList = opts.allowUnusedFile ? readAllowList(opts.allowUnusedFile) : [];

  // One identity policy per statement, so the evaluator names the statement that allowed a call.
  const statements = policies.flatMap((p) =>
    asStatements(p.document).map((s, i) => ({ id: `${p.name}/${s.Sid ?? i}`, statement: s })),
  );
  const identityPolicies = statements.map(({ id, statement }) => ({
    name: id,
    policy: { Version: '2012-10-17', Statement: [statement] },
  }));

  const used = new Set<string>();
  const verdicts: CallVerdict[] = [];
  for (const { call, count } of distinctCalls(calls)) {
    const verdict = await evaluate(call, identityPolicies, scope.account, used, taskPrincipal);
    verdicts.push({ call, count, ...verdict });
  }

  const grants: Grant[] = statements.flatMap(({ id, statement }) =>
    statement.Effect !== 'Allow'
      ? []
      : list(statement.Action).flatMap((action) =>
          list(statement.Resource).map((resource) => ({
            statement: id,
            action,
            resource,
            conditional: statement.Condition !== undefined,
          })),
        ),
  );
  const unusedAll = grants.filter((g) => !used.has(grantKey(g.statement, g.action, g.resource)));
  const listed = (g: Grant) => allowList.some((e) => e.matches(g));
  const denied = verdicts.filter((v) => v.decision !== 'Allowed');
  const unused = unusedAll.filter((g) => !listed(g));
  const strict = opts.strict ?? false;
  return {
    stackName,
    roleLogicalId,
    policies,
    unresolved: [...scope.unresolved],
    calls: verdicts,
    denied,
    unused,
    expectedUnused: unusedAll.filter(listed),
    staleAllowList: allowList.filter((e) => !unusedAll.some((g) => e.matches(g))).map((e) => e.text),
    otherCallers: [...otherCallers].map(([principal, count]) => ({ principal, count })),
    strict,
    ok: denied.length === 0 && !(strict && unused.length > 0),
  };
}

/** The report as an operator reads it; the last line is a one-line summary. */
export function formatReport(r: PermissionReport): string {
  const lines: string[] = [];
  const show = (v: CallVerdict) =>
    `${v.call.action} on ${v.call.resource} (${v.call.principal}, ${v.call.region}, ${v.count}×)`;
  for (const u of r.unresolved) lines.push(`warning: unresolved reference in the task role's policies: ${u}`);
  for (const v of r.denied) lines.push(`DENIED ${show(v)}: ${v.reason}`);
  for (const g of r.unused) {
    lines.push(
      `${r.strict ? 'UNUSED' : 'warning:'} allowed but never needed: ${g.action} on ${g.resource} (${g.statement}${g.conditional ? ', conditional' : ''})`,
    );
  }
  for (const g of r.expectedUnused)
    lines.push(`expected unused: ${g.action} on ${g.resource} (${g.statement})`);
  for (const e of r.staleAllowList) lines.push(`warning: allow-list entry matches no unused grant: ${e}`);
  for (const o of r.otherCallers)
    lines.push(`not the task's: ${o.count} calls by ${o.principal} (not judged against the task role)`);
  const allowed = r.calls.length - r.denied.length;
  lines.push(
    `iam-check ${r.stackName}: ${r.ok ? 'PASS' : 'FAIL'}: ${allowed}/${r.calls.length} distinct calls allowed, ` +
      `${r.denied.length} denied, ${r.unused.length} unused grants (${r.expectedUnused.length} expected), ` +
      `${r.unresolved.length} unresolved references` +
      (r.otherCallers.length > 0
        ? `, ${r.otherCallers.reduce((n, o) => n + o.count, 0)} calls by others not judged`
        : ''),
  );
  return lines.join('\n');
}

/* ------------------------------------------------------------------ evaluation */

/** Keys on which calls are the same request to IAM. */
function distinctCalls(
  calls: readonly CallRecord[],
): { call: CallVerdict['call'] & { resourcePolicy?: unknown }; count: number }[] {
  const seen = new Map<string, { call: CallVerdict['call'] & { resourcePolicy?: unknown }; count: number }>();
  for (const c of calls) {
    const call = {
      principal: c.principal,
      action: c.action,
      resource: c.resource,
      region: c.region,
      context: c.context,
      ...(c.resourcePolicy ? { resourcePolicy: c.resourcePolicy } : {}),
    };
    const key = JSON.stringify(call);
    const entry = seen.get(key);
    if (entry) entry.count += 1;
    else seen.set(key, { call, count: 1 });
  }
  return [...seen.values()];
}

async function evaluate(
  call: CallVerdict['call'] & { resourcePolicy?: unknown },
  identityPolicies: { name: string; policy: unknown }[],
  account: string,
  used: Set<string>,
  taskPrincipal: string,
): Promise<Pick<CallVerdict, 'decision' | 'reason'>> {
  const service = call.principal !== taskPrincipal;
  const context: Record<string, string | string[]> = {
    'aws:RequestedRegion': call.region,
    ...Object.fromEntries(
      Object.entries(call.context).map(([k, v]) => [k, typeof v === 'string' ? v : [...v]]),
    ),
  };
  const resourcePolicy = service
    ? call.resourcePolicy
    : call.action.startsWith('kms:')
      ? // A key's default policy: the account's IAM policies decide (CDK's default key policy).
        {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { AWS: `arn:aws:iam::${account}:root` },
              Action: 'kms:*',
              Resource: '*',
            },
          ],
        }
      : undefined;
  if (service && !resourcePolicy) {
    return {
      decision: 'ImplicitlyDenied',
      reason: `no resource policy on ${call.resource} lets ${call.principal} in`,
    };
  }
  const result = await runSimulation(
    {
      identityPolicies: service ? [] : identityPolicies,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(resourcePolicy ? { resourcePolicy } : {}),
      request: {
        action: call.action,
        principal: service ? call.principal : `arn:aws:iam::${account}:role/rehearsal-task-role`,
        resource: { resource: call.resource, accountId: account },
        contextVariables: context,
      },
    },
    {},
  );
  if (result.resultType === 'error') {
    return {
      decision: 'Error',
      reason: `the evaluator rejected the request: ${JSON.stringify(result.errors)}`,
    };
  }
  const analysis =
    result.resultType === 'single'
      ? result.result.analysis
      : result.results.find((x) => x.analysis)?.analysis;
  const identity = analysis?.identityAnalysis;
  for (const s of identity?.allowStatements ?? []) {
    const actions = ([] as { action: string; matches: boolean }[]).concat((s.explain.actions ?? []) as never);
    const resources = ([] as { resource: string; matches: boolean }[]).concat(
      (s.explain.resources ?? []) as never,
    );
    for (const a of actions.filter((x) => x.matches)) {
      for (const r of resources.filter((x) => x.matches))
        used.add(grantKey(s.policyId, a.action, r.resource));
    }
  }
  if (result.overallResult === 'Allowed') return { decision: 'Allowed', reason: 'allowed' };
  const decision = result.overallResult === 'ExplicitlyDenied' ? 'ExplicitlyDenied' : 'ImplicitlyDenied';
  return { decision, reason: denialReason(call, identity, decision, service) };
}

function denialReason(
  call: CallVerdict['call'],
  identity:
    | {
        unmatchedStatements?: {
          policyId: string;
          actionMatch: boolean;
          resourceMatch: boolean;
          conditionMatch: unknown;
        }[];
        denyStatements?: { policyId: string }[];
      }
    | undefined,
  decision: string,
  service: boolean,
): string {
  if (service)
    return `the resource policy of ${call.resource} does not allow ${call.principal} (aws:SourceArn ${String(call.context['aws:SourceArn'])})`;
  if (decision === 'ExplicitlyDenied') {
    return `explicitly denied by ${(identity?.denyStatements ?? []).map((s) => s.policyId).join(', ')}`;
  }
  const near = (identity?.unmatchedStatements ?? []).filter((s) => s.actionMatch);
  if (near.length === 0) return `no statement of the task role grants ${call.action}`;
  return near
    .map((s) =>
      !s.resourceMatch
        ? `${s.policyId} grants ${call.action} but not on ${call.resource}`
        : `${s.policyId} grants ${call.action} on ${call.resource} but its condition does not match (${JSON.stringify(call.context)})`,
    )
    .join('; ');
}

function grantKey(statement: string, action: string, resource: string): string {
  return `${statement}\n${action}\n${resource}`;
}

function list(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function asStatements(doc: unknown): Statement[] {
  const s = (doc as { Statement?: Statement | Statement[] }).Statement;
  return s === undefined ? [] : Array.isArray(s) ? s : [s];
}

function keysByAlias(calls: readonly CallRecord[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of calls) {
    if (c.service !== 'kms') continue;
    const aliases = c.context['kms:ResourceAliases'];
    const region = c.resource.split(':')[3];
    for (const alias of typeof aliases === 'string' ? [aliases] : (aliases ?? []))
      out.set(`${region}/${alias}`, c.resource);
  }
  return out;
}

/* ------------------------------------------------------------------ allow-list */

interface AllowEntry {
  readonly text: string;
  matches(g: Grant): boolean;
}

/**
 * One expected-unused grant per line: `<action> <resource>` (either may use `*` as a glob), then
 * optionally `# why`. Blank lines and lines starting with `#` are ignored.
 */
export function parseAllowList(text: string, where = 'allow-list'): AllowEntry[] {
  const out: AllowEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const parts = line.split(/\s+/);
    if (parts.length !== 2) {
      throw new PermissionCheckError(
        `${where}:${i + 1}: expected "<action> <resource>", got "${raw.trim()}"`,
      );
    }
    const [action, resource] = parts as [string, string];
    const a = glob(action, true);
    const r = glob(resource, false);
    out.push({ text: line, matches: (g) => a.test(g.action) && r.test(g.resource) });
  });
  return out;
}

function readAllowList(file: string): AllowEntry[] {
  return parseAllowList(readFileSync(file, 'utf8'), file);
}

function glob(pattern: string, ignoreCase: boolean): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\?]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${body}$`, ignoreCase ? 'i' : '');
}

/* ------------------------------------------------------------------ the template */

function loadStack(
  assemblyDir: string,
  name: string,
): { template: Template; stackName: string; env: { account?: string; region?: string } } {
  const manifest = JSON.parse(readFileSync(join(assemblyDir, 'manifest.json'), 'utf8')) as {
    artifacts?: Record<
      string,
      {
        type: string;
        environment?: string;
        displayName?: string;
        properties?: { templateFile?: string; stackName?: string };
      }
    >;
  };
  const stacks = Object.entries(manifest.artifacts ?? {}).filter(
    ([, a]) => a.type === 'aws:cloudformation:stack',
  );
  const found = stacks.find(
    ([id, a]) => id === name || a.properties?.stackName === name || a.displayName === name,
  );
  if (!found) {
    throw new PermissionCheckError(
      `no stack "${name}" in ${assemblyDir}; stacks: ${stacks.map(([id, a]) => a.properties?.stackName ?? id).join(', ')}`,
    );
  }
  const [id, artifact] = found;
  const file = artifact.properties?.templateFile ?? `${id}.template.json`;
  const env = /^aws:\/\/([^/]+)\/(.+)$/.exec(artifact.environment ?? '');
  const account = env?.[1] && /^\d{12}$/.test(env[1]) ? env[1] : undefined;
  const region = env?.[2] && env[2] !== 'unknown-region' ? env[2] : undefined;
  return {
    template: JSON.parse(readFileSync(join(assemblyDir, file), 'utf8')) as Template,
    stackName: artifact.properties?.stackName ?? id,
    env: { account, region },
  };
}

/** The role the stack's task definition runs as. */
function taskRole(template: Template, stackName: string): string {
  const resources = template.Resources ?? {};
  const ids = new Set<string>();
  for (const r of Object.values(resources)) {
    if (r.Type !== 'AWS::ECS::TaskDefinition') continue;
    const ref = r.Properties?.TaskRoleArn as { 'Fn::GetAtt'?: [string, string]; Ref?: string } | undefined;
    const id = ref?.['Fn::GetAtt']?.[0] ?? ref?.Ref;
    if (id) ids.add(id);
  }
  if (ids.size !== 1) {
    throw new PermissionCheckError(
      `expected one task role in ${stackName}, found ${ids.size}: ${[...ids].join(', ')}`,
    );
  }
  return [...ids][0] as string;
}

function rolePolicies(
  template: Template,
  roleId: string,
  scope: Scope,
): { name: string; document: unknown }[] {
  const resources = template.Resources ?? {};
  const out: { name: string; document: unknown }[] = [];
  const role = resources[roleId];
  for (const [i, p] of (
    (role?.Properties?.Policies ?? []) as { PolicyName?: string; PolicyDocument: unknown }[]
  ).entries()) {
    out.push({ name: `${roleId}.${p.PolicyName ?? i}`, document: resolve(p.PolicyDocument, scope) });
  }
  for (const arn of (role?.Properties?.ManagedPolicyArns ?? []) as unknown[]) {
    scope.unresolved.add(`managed policy ${JSON.stringify(arn)} (not evaluated offline)`);
  }
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    const roles = (r.Properties?.Roles ?? []) as { Ref?: string }[];
    if (!roles.some((x) => x?.Ref === roleId)) continue;
    out.push({ name: id, document: resolve(r.Properties?.PolicyDocument, scope) });
  }
  return out;
}

/** CloudFormation intrinsics resolved for the stack's account, region and partition. */
function resolve(v: unknown, s: Scope): unknown {
  return resolveIntrinsics(v, {
    ref: (id) => ref(id, s),
    getAtt: (id, attr) => getAtt(id, attr, s),
    unmodelled: (fn, arg) => placeholder(`${fn} ${JSON.stringify(arg)}`, s),
    text: (value) => String(value),
  });
}

/** Stays a well-formed ARN (so the evaluator accepts the policy) that no call can match. */
function placeholder(what: string, s: Scope): string {
  s.unresolved.add(what);
  return `arn:${s.partition}:unresolved:::${what.replace(/[^A-Za-z0-9.:_-]+/g, '_')}`;
}

function ref(id: string, s: Scope): string {
  if (s.values[id] !== undefined) return s.values[id] as string;
  const hooked = s.reference?.(id);
  if (hooked !== undefined) return hooked;
  switch (id) {
    case 'AWS::Partition':
      return s.partition;
    case 'AWS::Region':
      return s.region;
    case 'AWS::AccountId':
      return s.account;
    case 'AWS::URLSuffix':
      return 'amazonaws.com';
    case 'AWS::StackName':
      return s.stackName;
  }
  const param = s.template.Parameters?.[id];
  if (param?.Default !== undefined) return String(param.Default);
  const r = s.template.Resources?.[id];
  const p = r?.Properties ?? {};
  const name = (key: string) => (typeof p[key] === 'string' ? (p[key] as string) : undefined);
  switch (r?.Type) {
    case 'AWS::SNS::Topic': {
      const topic = name('TopicName');
      return topic ? `arn:${s.partition}:sns:${s.region}:${s.account}:${topic}` : placeholder(`Ref ${id}`, s);
    }
    case 'AWS::DynamoDB::Table':
    case 'AWS::DynamoDB::GlobalTable':
      return name('TableName') ?? placeholder(`Ref ${id}`, s);
    case 'AWS::KMS::Alias':
      return name('AliasName') ?? placeholder(`Ref ${id}`, s);
    case 'AWS::SecretsManager::Secret': {
      const secret = name('Name');
      return secret
        ? `arn:${s.partition}:secretsmanager:${s.region}:${s.account}:secret:${secret}-??????`
        : placeholder(`Ref ${id}`, s);
    }
    case 'AWS::IAM::Role':
      return name('RoleName') ?? placeholder(`Ref ${id}`, s);
    default:
      return placeholder(`Ref ${id}`, s);
  }
}

function getAtt(id: string, attr: string, s: Scope): string {
  const given = s.values[`${id}.${attr}`] ?? s.reference?.(id, attr);
  if (given !== undefined) return given;
  const r = s.template.Resources?.[id];
  const p = r?.Properties ?? {};
  const name = (key: string) => (typeof p[key] === 'string' ? (p[key] as string) : undefined);
  switch (`${r?.Type}.${attr}`) {
    case 'AWS::SQS::Queue.Arn': {
      const queue = name('QueueName');
      return queue
        ? `arn:${s.partition}:sqs:${s.region}:${s.account}:${queue}`
        : placeholder(`Fn::GetAtt ${id}.${attr}`, s);
    }
    case 'AWS::SQS::Queue.QueueName':
      return name('QueueName') ?? placeholder(`Fn::GetAtt ${id}.${attr}`, s);
    case 'AWS::SNS::Topic.TopicArn':
      return ref(id, s);
    case 'AWS::DynamoDB::Table.Arn':
    case 'AWS::DynamoDB::GlobalTable.Arn': {
      const table = name('TableName');
      return table
        ? `arn:${s.partition}:dynamodb:${s.region}:${s.account}:table/${table}`
        : placeholder(`Fn::GetAtt ${id}.${attr}`, s);
    }
    case 'AWS::KMS::Key.Arn':
    case 'AWS::KMS::ReplicaKey.Arn': {
      // The key id is generated at deploy time: take the key the calls reached through its alias.
      const aliases = Object.values(s.template.Resources ?? {}).filter(
        (a) =>
          a.Type === 'AWS::KMS::Alias' && JSON.stringify(a.Properties?.TargetKeyId ?? '').includes(`"${id}"`),
      );
      for (const a of aliases) {
        const arn = s.keysByAlias.get(`${s.region}/${String(a.Properties?.AliasName)}`);
        if (arn) return arn;
      }
      return placeholder(`Fn::GetAtt ${id}.${attr}`, s);
    }
    case 'AWS::IAM::Role.Arn': {
      const role = name('RoleName');
      return role
        ? `arn:${s.partition}:iam::${s.account}:role/${role}`
        : placeholder(`Fn::GetAtt ${id}.${attr}`, s);
    }
    default:
      return placeholder(`Fn::GetAtt ${id}.${attr}`, s);
  }
}
