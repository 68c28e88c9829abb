import { request } from 'node:http';
import type { ServiceHandler, ServiceRequest, StandInContext } from './context.ts';
import { AwsApiError, sendJsonError } from './http.ts';
import type { NewCallRecord } from './record.ts';

type AttributeMap = Record<string, Record<string, unknown>>;
type Input = Record<string, unknown>;

const TRANSACT_ACTIONS: Record<string, string> = {
  Get: 'GetItem',
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  ConditionCheck: 'ConditionCheckItem',
};

/**
 * DynamoDB is dynalite; this forwards every request to it unchanged and records the call
 * (table ARN in the signed region, `dynamodb:LeadingKeys` from the request's keys).
 */
export class DynamoDbRecordingProxy implements ServiceHandler {
  private readonly hashKeys = new Map<string, string | undefined>();

  constructor(
    private readonly ctx: StandInContext,
    private readonly dynaliteUrl: string | undefined,
  ) {}

  async handle(r: ServiceRequest): Promise<void> {
    const contentType = String(r.req.headers['content-type'] ?? 'application/x-amz-json-1.0');
    if (!this.dynaliteUrl) {
      sendJsonError(
        r.res,
        new AwsApiError('UnrecognizedClientException', 'no dynalite URL was given to the stand-in', 500),
        contentType,
      );
      return;
    }
    const target = String(r.req.headers['x-amz-target'] ?? '');
    const op = target.slice(target.indexOf('.') + 1);
    let input: Input = {};
    try {
      input = r.body.length ? (JSON.parse(r.body.toString('utf8')) as Input) : {};
    } catch {
      // dynalite answers the malformed body itself.
    }
    const upstream = await this.forward(r, r.body);
    const outcome = upstream.status === 200 ? 'ok' : errorCode(upstream.body);
    for (const rec of await this.records(op, input, r.region))
      this.ctx.recorder.write(rec, outcome, r.principal);
    r.res.writeHead(upstream.status, upstream.headers);
    r.res.end(upstream.body);
  }

  private forward(
    r: { req: ServiceRequest['req'] },
    body: Buffer,
  ): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> {
    const url = new URL(this.dynaliteUrl as string);
    const headers = { ...r.req.headers, host: url.host, 'content-length': String(body.length) };
    return new Promise((resolve, reject) => {
      const up = request(
        { hostname: url.hostname, port: url.port, path: r.req.url, method: r.req.method, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const out: Record<string, string | string[]> = {};
            for (const [k, v] of Object.entries(res.headers))
              if (v !== undefined && k !== 'transfer-encoding') out[k] = v;
            resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) });
          });
          res.on('error', reject);
        },
      );
      up.on('error', reject);
      up.end(body);
    });
  }

  private tableArn(region: string, table: string, index?: string): string {
    const arn = `arn:${this.ctx.partition}:dynamodb:${region}:${this.ctx.account}:table/${table}`;
    return index ? `${arn}/index/${index}` : arn;
  }

  private async records(op: string, input: Input, region: string): Promise<NewCallRecord[]> {
    const make = async (
      action: string,
      table: string,
      keys: AttributeMap[],
      index?: string,
    ): Promise<NewCallRecord> => {
      const hashKey = keys.length ? await this.hashKey(table) : undefined;
      const leading = hashKey
        ? [...new Set(keys.map((k) => scalar(k[hashKey])).filter((v): v is string => v !== undefined))]
        : [];
      return {
        service: 'dynamodb',
        action: `dynamodb:${action}`,
        resource: this.tableArn(region, table, index),
        region,
        context: leading.length ? { 'dynamodb:LeadingKeys': leading } : {},
      };
    };
    if (op === 'BatchGetItem' || op === 'BatchWriteItem') {
      const items = (input.RequestItems ?? {}) as Record<string, unknown>;
      const out: NewCallRecord[] = [];
      for (const [table, req] of Object.entries(items)) {
        const keys =
          op === 'BatchGetItem'
            ? (((req as Input).Keys ?? []) as AttributeMap[])
            : ((req as Input[]).map(
                (w) => (w.PutRequest as Input)?.Item ?? (w.DeleteRequest as Input)?.Key,
              ) as AttributeMap[]);
        out.push(await make(op, table, keys.filter(Boolean)));
      }
      return out;
    }
    if (op === 'TransactGetItems' || op === 'TransactWriteItems') {
      const out: NewCallRecord[] = [];
      for (const item of (input.TransactItems ?? []) as Input[]) {
        for (const [kind, action] of Object.entries(TRANSACT_ACTIONS)) {
          const part = item[kind] as Input | undefined;
          if (!part) continue;
          const key = (part.Key ?? part.Item) as AttributeMap | undefined;
          out.push(await make(action, String(part.TableName), key ? [key] : []));
        }
      }
      return out;
    }
    if (op === 'ListTables')
      return [{ service: 'dynamodb', action: 'dynamodb:ListTables', resource: '*', region, context: {} }];
    const table = typeof input.TableName === 'string' ? input.TableName : undefined;
    if (!table)
      return [{ service: 'dynamodb', action: `dynamodb:${op}`, resource: '*', region, context: {} }];
    const key = (input.Key ?? input.Item) as AttributeMap | undefined;
    return [
      await make(
        op,
        table,
        key ? [key] : [],
        typeof input.IndexName === 'string' ? input.IndexName : undefined,
      ),
    ];
  }

  /** The table's partition key name, from dynalite (not recorded: the caller did not ask for it). */
  private async hashKey(table: string): Promise<string | undefined> {
    if (this.hashKeys.has(table)) return this.hashKeys.get(table);
    const body = Buffer.from(JSON.stringify({ TableName: table }));
    const fake = {
      req: {
        url: '/',
        method: 'POST',
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': 'DynamoDB_20120810.DescribeTable',
          authorization:
            'AWS4-HMAC-SHA256 Credential=rehearsal/20200101/local/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
          'x-amz-date': '20200101T000000Z',
        },
      },
    } as unknown as { req: ServiceRequest['req'] };
    try {
      const res = await this.forward(fake, body);
      if (res.status !== 200) return undefined;
      const schema = (
        JSON.parse(res.body.toString('utf8')) as {
          Table?: { KeySchema?: { AttributeName: string; KeyType: string }[] };
        }
      ).Table?.KeySchema;
      const hash = schema?.find((k) => k.KeyType === 'HASH')?.AttributeName;
      this.hashKeys.set(table, hash);
      return hash;
    } catch {
      return undefined;
    }
  }
}

function scalar(v: Record<string, unknown> | undefined): string | undefined {
  if (!v) return undefined;
  const x = v.S ?? v.N ?? v.B;
  return typeof x === 'string' ? x : undefined;
}

function errorCode(body: Buffer): string {
  try {
    const t = (JSON.parse(body.toString('utf8')) as { __type?: string }).__type ?? 'error';
    return t.slice(t.indexOf('#') + 1);
  } catch {
    return 'error';
  }
}
