import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join, normalize, sep } from 'node:path';
import type { ServiceHandler, ServiceRequest, StandInContext } from './context.ts';
import { AwsApiError, serveJsonCall } from './http.ts';
import type { NewCallRecord } from './record.ts';

const CONTENT_TYPE = 'application/x-amz-json-1.1';

/**
 * Secrets Manager over AWS JSON 1.1 (`secretsmanager.<Operation>`), read from files: the secret
 * named `edge/acme-account` is the file `<dir>/edge/acme-account`. A secret ARN names the same
 * file (its random six-character suffix is dropped when no file carries it).
 */
export class SecretsStandIn implements ServiceHandler {
  constructor(
    private readonly ctx: StandInContext,
    private readonly dir: string | undefined,
  ) {}

  handle(r: ServiceRequest): Promise<void> {
    return serveJsonCall(r, this.ctx, {
      contentType: CONTENT_TYPE,
      internalCode: 'InternalServiceError',
      dispatch: (op, input, records) => this.dispatch(op, input, r.region, records),
    });
  }

  private async dispatch(
    op: string,
    input: Record<string, unknown>,
    region: string,
    records: NewCallRecord[],
  ) {
    const secretId = String(input.SecretId ?? '');
    switch (op) {
      case 'GetSecretValue': {
        const found = await this.find(secretId, region);
        records.push(this.record('GetSecretValue', found.arn, region, secretId, input));
        if (!found.file)
          throw new AwsApiError(
            'ResourceNotFoundException',
            `Secrets Manager can't find the specified secret: ${secretId}`,
          );
        const text = await readFile(found.file, 'utf8');
        return {
          ARN: found.arn,
          Name: found.name,
          VersionId: createHash('sha256').update(text).digest('hex').slice(0, 32),
          SecretString: text,
          VersionStages: ['AWSCURRENT'],
          CreatedDate: Math.floor(Date.now() / 1000),
        };
      }
      case 'DescribeSecret': {
        const found = await this.find(secretId, region);
        records.push(this.record('DescribeSecret', found.arn, region, secretId, input));
        if (!found.file)
          throw new AwsApiError(
            'ResourceNotFoundException',
            `Secrets Manager can't find the specified secret: ${secretId}`,
          );
        return { ARN: found.arn, Name: found.name };
      }
      default:
        throw new AwsApiError(
          'InvalidRequestException',
          `the stand-in does not implement Secrets Manager ${op}`,
        );
    }
  }

  private record(
    action: string,
    arn: string,
    region: string,
    secretId: string,
    input: Record<string, unknown>,
  ): NewCallRecord {
    return {
      service: 'secretsmanager',
      action: `secretsmanager:${action}`,
      resource: arn,
      region,
      context: {
        'secretsmanager:SecretId': secretId,
        ...(input.VersionStage ? { 'secretsmanager:VersionStage': String(input.VersionStage) } : {}),
        ...(input.VersionId ? { 'secretsmanager:VersionId': String(input.VersionId) } : {}),
      },
    };
  }

  /** The secret's file and full ARN, from its name or (partial or full) ARN. */
  private async find(
    secretId: string,
    region: string,
  ): Promise<{ name: string; arn: string; file?: string }> {
    if (!secretId) throw new AwsApiError('InvalidParameterException', 'SecretId is required');
    const m = /^arn:[^:]+:secretsmanager:([^:]+):(\d{12}):secret:(.+)$/.exec(secretId);
    const candidates = m ? [m[3] as string, (m[3] as string).replace(/-[A-Za-z0-9]{6}$/, '')] : [secretId];
    for (const name of candidates) {
      const file = await this.file(name);
      if (!file) continue;
      const arn =
        m && /-[A-Za-z0-9]{6}$/.test(m[3] as string)
          ? secretId
          : `arn:${this.ctx.partition}:secretsmanager:${m?.[1] ?? region}:${this.ctx.account}:secret:${name}-${suffix(name)}`;
      return { name, arn, file };
    }
    const name = candidates.at(-1) as string;
    const arn = m
      ? secretId
      : `arn:${this.ctx.partition}:secretsmanager:${region}:${this.ctx.account}:secret:${name}-${suffix(name)}`;
    return { name, arn };
  }

  private async file(name: string): Promise<string | undefined> {
    if (!this.dir) return undefined;
    const path = normalize(join(this.dir, name));
    if (!path.startsWith(normalize(this.dir) + sep)) return undefined;
    try {
      return (await stat(path)).isFile() ? path : undefined;
    } catch {
      return undefined;
    }
  }
}

/** Secrets Manager appends six random characters to a secret's ARN; here they are stable per name. */
function suffix(name: string): string {
  const h = createHash('sha256')
    .update(name)
    .digest('base64')
    .replace(/[^A-Za-z0-9]/g, 'x');
  return h.slice(0, 6);
}
