import { createHash } from 'node:crypto';

/** One CloudFormation resource as the template holds it. */
export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}

export interface StackScope {
  readonly stackName: string;
  readonly region: string;
  readonly account: string;
  readonly resources: Readonly<Record<string, TemplateResource>>;
}

export class IntrinsicError extends Error {
  override name = 'IntrinsicError';
}

const PARTITION = 'aws';
const URL_SUFFIX = 'amazonaws.com';

/** A stable stand-in for a value CloudFormation generates at deploy time. */
function generated(logicalId: string, length = 8): string {
  return createHash('sha256').update(logicalId).digest('hex').slice(0, length);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * What `Ref` returns for the resource types a task definition refers to, as CloudFormation would
 * return it after deploy (names and ids it generates are replaced by stable stand-ins).
 */
function ref(id: string, s: StackScope): string {
  switch (id) {
    case 'AWS::Partition':
      return PARTITION;
    case 'AWS::URLSuffix':
      return URL_SUFFIX;
    case 'AWS::Region':
      return s.region;
    case 'AWS::AccountId':
      return s.account;
    case 'AWS::StackName':
      return s.stackName;
  }
  const r = s.resources[id];
  if (!r) throw new IntrinsicError(`Ref ${id}: no such resource or pseudo parameter in ${s.stackName}`);
  const p = r.Properties ?? {};
  switch (r.Type) {
    case 'AWS::SQS::Queue':
      return `https://sqs.${s.region}.${URL_SUFFIX}/${s.account}/${queueName(id, s)}`;
    case 'AWS::SecretsManager::Secret':
      return secretArn(id, s);
    case 'AWS::KMS::Key':
    case 'AWS::KMS::ReplicaKey':
      return keyId(id, r);
    case 'AWS::KMS::Alias':
      return str(p.AliasName) ?? `alias/${id}`;
    case 'AWS::IAM::Role':
      return str(p.RoleName) ?? `${s.stackName}-${id}-${generated(id).toUpperCase()}`;
    case 'AWS::Logs::LogGroup':
      return str(p.LogGroupName) ?? `${s.stackName}-${id}-${generated(id)}`;
    case 'AWS::SNS::Topic':
      return `arn:${PARTITION}:sns:${s.region}:${s.account}:${str(p.TopicName) ?? `${s.stackName}-${id}`}`;
    case 'AWS::DynamoDB::Table':
    case 'AWS::DynamoDB::GlobalTable':
      return str(p.TableName) ?? `${s.stackName}-${id}`;
    case 'AWS::SSM::Parameter':
      return str(p.Name) ?? `${s.stackName}-${id}`;
    default:
      throw new IntrinsicError(`Ref ${id}: resources of type ${r.Type} are not modelled by the rehearsal`);
  }
}

function queueName(id: string, s: StackScope): string {
  const p = s.resources[id]?.Properties ?? {};
  return str(p.QueueName) ?? `${s.stackName}-${id}-${generated(id)}`;
}

function secretArn(id: string, s: StackScope): string {
  const p = s.resources[id]?.Properties ?? {};
  const name = str(p.Name) ?? `${id}-${generated(id, 12)}`;
  // Secrets Manager appends six random characters to the name in the ARN.
  return `arn:${PARTITION}:secretsmanager:${s.region}:${s.account}:secret:${name}-${generated(`${id}/suffix`, 6)}`;
}

function keyId(id: string, r: TemplateResource): string {
  const h = createHash('sha256').update(id).digest('hex');
  const uuid = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
  const multiRegion = r.Type === 'AWS::KMS::ReplicaKey' || r.Properties?.MultiRegion === true;
  return multiRegion ? `mrk-${h.slice(0, 32)}` : uuid;
}

function getAtt(id: string, attr: string, s: StackScope): string {
  const r = s.resources[id];
  if (!r) throw new IntrinsicError(`Fn::GetAtt ${id}.${attr}: no such resource in ${s.stackName}`);
  const key = `${r.Type}.${attr}`;
  switch (key) {
    case 'AWS::SQS::Queue.Arn':
      return `arn:${PARTITION}:sqs:${s.region}:${s.account}:${queueName(id, s)}`;
    case 'AWS::SQS::Queue.QueueName':
      return queueName(id, s);
    case 'AWS::SQS::Queue.QueueUrl':
      return ref(id, s);
    case 'AWS::IAM::Role.Arn':
      return `arn:${PARTITION}:iam::${s.account}:role/${ref(id, s)}`;
    case 'AWS::KMS::Key.Arn':
    case 'AWS::KMS::ReplicaKey.Arn':
      return `arn:${PARTITION}:kms:${s.region}:${s.account}:key/${keyId(id, r)}`;
    case 'AWS::KMS::Key.KeyId':
    case 'AWS::KMS::ReplicaKey.KeyId':
      return keyId(id, r);
    case 'AWS::SecretsManager::Secret.Id':
      return secretArn(id, s);
    case 'AWS::Logs::LogGroup.Arn':
      return `arn:${PARTITION}:logs:${s.region}:${s.account}:log-group:${ref(id, s)}:*`;
    case 'AWS::DynamoDB::Table.Arn':
    case 'AWS::DynamoDB::GlobalTable.Arn':
      return `arn:${PARTITION}:dynamodb:${s.region}:${s.account}:table/${ref(id, s)}`;
    default:
      throw new IntrinsicError(`Fn::GetAtt ${id}.${attr}: ${key} is not modelled by the rehearsal`);
  }
}

/**
 * How one reader of a template answers the leaves of CloudFormation's intrinsic functions. The
 * runner resolves to what the deployed resources would carry and refuses what it does not model;
 * the permission check resolves what it can and keeps a placeholder for the rest.
 */
export interface IntrinsicReader {
  ref(logicalId: string): unknown;
  getAtt(logicalId: string, attribute: string): unknown;
  /** A function not modelled here, or an `Fn::Select` over something that is not a list. */
  unmodelled(fn: string, arg: unknown): unknown;
  /** A resolved value used as text (in `Fn::Sub` and `Fn::Split`). */
  text(value: unknown): string;
}

/** Walks a template value and resolves every intrinsic function in it with the reader's answers. */
export function resolveIntrinsics(v: unknown, r: IntrinsicReader): unknown {
  if (Array.isArray(v)) return v.map((x) => resolveIntrinsics(x, r));
  if (v === null || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1) {
    const [k] = keys as [string];
    const arg = o[k];
    switch (k) {
      case 'Ref':
        return r.ref(String(arg));
      case 'Fn::GetAtt': {
        const [id, attr] = Array.isArray(arg) ? (arg as string[]) : String(arg).split('.');
        return r.getAtt(String(id), String(attr));
      }
      case 'Fn::Join': {
        const [sep, parts] = arg as [string, unknown[]];
        return (resolveIntrinsics(parts, r) as unknown[]).map((p) => String(p)).join(sep);
      }
      case 'Fn::Sub': {
        const [template, vars] =
          typeof arg === 'string' ? [arg, {}] : (arg as [string, Record<string, unknown>]);
        return template.replace(/\$\{([^}!][^}]*)\}/g, (_, name: string) => {
          if (name in vars) return r.text(resolveIntrinsics(vars[name], r));
          const dot = name.indexOf('.');
          const value =
            dot > 0 && !name.startsWith('AWS::')
              ? r.getAtt(name.slice(0, dot), name.slice(dot + 1))
              : r.ref(name);
          return r.text(value);
        });
      }
      case 'Fn::Select': {
        const [index, list] = arg as [unknown, unknown];
        const items = resolveIntrinsics(list, r);
        return Array.isArray(items) ? items[Number(resolveIntrinsics(index, r))] : r.unmodelled(k, arg);
      }
      case 'Fn::Split': {
        const [sep, value] = arg as [string, unknown];
        return r.text(resolveIntrinsics(value, r)).split(sep);
      }
    }
    if (k.startsWith('Fn::')) return r.unmodelled(k, arg);
  }
  return Object.fromEntries(keys.map((k) => [k, resolveIntrinsics(o[k], r)]));
}

/** The runner's reader: what the deployed resources would carry; anything else is refused. */
function stackReader(s: StackScope): IntrinsicReader {
  return {
    ref: (id) => ref(id, s),
    getAtt: (id, attr) => getAtt(id, attr, s),
    unmodelled: (fn, arg) => {
      throw new IntrinsicError(`${fn} is not modelled by the rehearsal: ${JSON.stringify({ [fn]: arg })}`);
    },
    text: (value) => {
      if (typeof value !== 'string' && typeof value !== 'number') {
        throw new IntrinsicError(`expected a string, got ${JSON.stringify(value)}`);
      }
      return String(value);
    },
  };
}

/** Resolves a value of the template to what the deployed resource would carry. */
export function resolveValue(v: unknown, s: StackScope): unknown {
  return resolveIntrinsics(v, stackReader(s));
}

export function resolveString(v: unknown, s: StackScope): string {
  const reader = stackReader(s);
  return reader.text(resolveIntrinsics(v, reader));
}

/** `Ref` / `Fn::GetAtt` as this module resolves them, for other readers of the same template. */
export function referenceResolver(
  s: StackScope,
): (logicalId: string, attribute?: string) => string | undefined {
  return (logicalId, attribute) => {
    try {
      return attribute ? getAtt(logicalId, attribute, s) : ref(logicalId, s);
    } catch {
      return undefined;
    }
  };
}
