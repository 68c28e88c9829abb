import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import type { ServiceHandler, StandInContext } from './context.ts';
import { DynamoDbRecordingProxy } from './dynamodb-proxy.ts';
import {
  AwsApiError,
  accessKeyId,
  readBody,
  requestId,
  sendJsonError,
  sendXml,
  signingScope,
} from './http.ts';
import { KmsStandIn } from './kms.ts';
import { CallRecorder } from './record.ts';
import { Route53StandIn } from './route53.ts';
import { SecretsStandIn } from './secrets.ts';
import { SnsStandIn } from './sns.ts';
import { SqsStandIn } from './sqs.ts';

export interface AwsStandInOptions {
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Address to bind; default 127.0.0.1 (a pod reaching the host needs a host address or 0.0.0.0). */
  readonly host?: string;
  /** Host name clients use to reach the stand-in (endpoints and queue URLs); default the bind host, or 127.0.0.1 for 0.0.0.0. */
  readonly publicHost?: string;
  readonly accountId: string;
  /** For requests that carry no SigV4 region. */
  readonly region: string;
  /** Default `aws`. */
  readonly partition?: string;
  /** Secrets Manager: each secret is a file here, named by the secret's name. */
  readonly secretsDir?: string;
  /** pebble-challtestsrv's management API; Route53 TXT changes are forwarded there. */
  readonly challtestsrvUrl?: string;
  /** dynalite; DynamoDB calls are proxied there. */
  readonly dynaliteUrl?: string;
  /** JSON lines, one per AWS call (created or truncated at start). */
  readonly recordFile: string;
  /** Queues CloudFormation would have created (the regional dead-letter queue). */
  readonly queues?: readonly {
    readonly region?: string;
    readonly name: string;
    readonly attributes?: Record<string, string>;
  }[];
  /** KMS-encrypted topics: topic ARN → key id, alias or ARN (publishing needs the key). */
  readonly topicKeys?: Readonly<Record<string, string>>;
  /** KMS aliases CloudFormation created: alias name or ARN → key id or ARN. */
  readonly kmsAliases?: Readonly<Record<string, string>>;
  /** KMS aliases name multi-region keys (shared material in every region); default false. */
  readonly multiRegionKeys?: boolean;
  /**
   * Callers by the access key id they sign with → the principal recorded for their calls (`task`
   * is the one the permission check evaluates against the task role). Default: every caller is
   * `task`; with a map, a key it does not name is recorded as `access-key:<id>`, an unsigned call
   * as `anonymous`.
   */
  readonly principals?: Readonly<Record<string, string>>;
  /** One JSON object per request; default a JSON line on stdout. */
  readonly log?: (line: Record<string, unknown>) => void;
}

/** An injected fault: calls to these services (by this principal) fail as AWS fails under stress. */
export interface FaultRule {
  readonly services: readonly ('sns' | 'sqs' | 'kms' | 'dynamodb' | 'secretsmanager' | 'route53')[];
  /** `unavailable`: 503 ServiceUnavailable; `throttle`: 400 ThrottlingException (KMS's, DynamoDB's). */
  readonly kind: 'unavailable' | 'throttle';
  /** Share of matching calls that fail (0..1); default 1. */
  readonly fraction?: number;
  /** Only calls by this principal; default every caller. */
  readonly principal?: string;
}

export interface AwsStandIn {
  /** Makes calls fail until cleared (`undefined`); calls that fail are not recorded (AWS never served them). */
  setFault(rule: FaultRule | undefined): void;
  /** Calls failed by injected faults so far, by service. */
  readonly faulted: Readonly<Record<string, number>>;
  /** `AWS_ENDPOINT_URL_<SERVICE>` → URL, to put in the sidecars' environment as is. */
  readonly endpoints: Readonly<Record<string, string>>;
  readonly url: string;
  readonly port: number;
  readonly recordFile: string;
  /** The URL of a queue of this stand-in (what the task's dead-letter queue URL must be). */
  queueUrl(region: string, name: string): string;
  stop(): Promise<void>;
}

/** The environment variable suffixes the AWS SDK v3 reads (`AWS_ENDPOINT_URL_` + service id in upper snake case). */
export const ENDPOINT_VARIABLES = [
  'AWS_ENDPOINT_URL_SNS',
  'AWS_ENDPOINT_URL_SQS',
  'AWS_ENDPOINT_URL_KMS',
  'AWS_ENDPOINT_URL_SECRETS_MANAGER',
  'AWS_ENDPOINT_URL_ROUTE_53',
  'AWS_ENDPOINT_URL_DYNAMODB',
] as const;

/**
 * One HTTP server for every AWS API the sidecars call. All endpoints are the same URL: the
 * service is told apart by what the SDK sends (`X-Amz-Target`, a query-protocol form, a REST path).
 */
export async function startAwsStandIn(opts: AwsStandInOptions): Promise<AwsStandIn> {
  if (!/^\d{12}$/.test(opts.accountId))
    throw new Error(`accountId must be 12 digits, got "${opts.accountId}"`);
  const host = opts.host ?? '127.0.0.1';
  const publicHost = opts.publicHost ?? (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);
  mkdirSync(dirname(opts.recordFile), { recursive: true });
  writeFileSync(opts.recordFile, '');
  const log = opts.log ?? ((line) => process.stdout.write(`${JSON.stringify(line)}\n`));
  const stopping = new AbortController();

  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${publicHost.includes(':') ? `[${publicHost}]` : publicHost}:${port}`;

  const ctx: StandInContext = {
    account: opts.accountId,
    defaultRegion: opts.region,
    partition: opts.partition ?? 'aws',
    publicUrl: url,
    recorder: new CallRecorder(opts.recordFile),
    stopping: stopping.signal,
  };
  const sqs = new SqsStandIn(ctx);
  const kms = new KmsStandIn(ctx, { multiRegion: opts.multiRegionKeys, aliases: opts.kmsAliases });
  const handlers: Record<string, ServiceHandler> = {
    sqs,
    kms,
    sns: new SnsStandIn(ctx, sqs, kms, { topicKeys: opts.topicKeys }),
    secretsmanager: new SecretsStandIn(ctx, opts.secretsDir),
    route53: new Route53StandIn(ctx, opts.challtestsrvUrl),
    dynamodb: new DynamoDbRecordingProxy(ctx, opts.dynaliteUrl),
  };
  for (const q of opts.queues ?? []) sqs.ensureQueue(q.region ?? opts.region, q.name, q.attributes);

  let fault: FaultRule | undefined;
  const faulted: Record<string, number> = {};

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const started = Date.now();
    void (async () => {
      const body = await readBody(req);
      const service = serviceOf(req, body);
      const region = signingScope(req).region ?? opts.region;
      const principal = principalOf(req, opts.principals);
      const handler = service ? handlers[service] : undefined;
      if (
        service &&
        fault?.services.includes(service as FaultRule['services'][number]) &&
        (fault.principal === undefined || fault.principal === principal) &&
        Math.random() < (fault.fraction ?? 1)
      ) {
        faulted[service] = (faulted[service] ?? 0) + 1;
        sendFault(res, service, fault.kind);
      } else if (!handler) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end(`the AWS stand-in cannot tell which service ${req.method} ${req.url} is for\n`);
      } else {
        await handler.handle({ req, res, body, region, principal });
      }
      log({
        time: new Date().toISOString(),
        service: service ?? 'unknown',
        operation: operationOf(req, body),
        region,
        principal,
        status: res.statusCode,
        ms: Date.now() - started,
      });
    })().catch((err: unknown) => {
      log({ time: new Date().toISOString(), level: 'error', err: String(err), url: req.url });
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });

  const endpoints = Object.fromEntries(ENDPOINT_VARIABLES.map((v) => [v, url]));
  return {
    setFault: (rule) => {
      fault = rule;
    },
    faulted,
    endpoints,
    url,
    port,
    recordFile: opts.recordFile,
    queueUrl: (region, name) => sqs.queueUrl(region, name),
    stop: async () => {
      stopping.abort();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** The error each protocol's SDK parses as retryable: throttling, or the service unavailable. */
function sendFault(res: ServerResponse, service: string, kind: FaultRule['kind']): void {
  const code = kind === 'throttle' ? 'ThrottlingException' : 'ServiceUnavailable';
  const status = kind === 'throttle' ? 400 : 503;
  const message = `rehearsal fault: ${service} ${kind}`;
  if (service === 'sns' || service === 'route53') {
    sendXml(
      res,
      status,
      `<ErrorResponse><Error><Type>Receiver</Type><Code>${code === 'ThrottlingException' ? 'Throttling' : code}</Code>` +
        `<Message>${message}</Message></Error><RequestId>${requestId()}</RequestId></ErrorResponse>`,
    );
    return;
  }
  const contentType =
    service === 'kms' || service === 'secretsmanager'
      ? 'application/x-amz-json-1.1'
      : 'application/x-amz-json-1.0';
  if (service === 'sqs') res.setHeader('x-amzn-query-error', `${code};Receiver`);
  sendJsonError(res, new AwsApiError(code, message, status), contentType);
}

function principalOf(req: IncomingMessage, principals?: Readonly<Record<string, string>>): string {
  if (!principals) return 'task';
  const key = accessKeyId(req);
  if (!key) return 'anonymous';
  return principals[key] ?? `access-key:${key}`;
}

function serviceOf(req: IncomingMessage, body: Buffer): string | undefined {
  const target = String(req.headers['x-amz-target'] ?? '');
  if (target.startsWith('AmazonSQS.')) return 'sqs';
  if (target.startsWith('TrentService.')) return 'kms';
  if (target.startsWith('secretsmanager.')) return 'secretsmanager';
  if (target.startsWith('DynamoDB_')) return 'dynamodb';
  if ((req.url ?? '').startsWith('/2013-04-01/')) return 'route53';
  const scope = signingScope(req).service;
  if (
    scope === 'sns' ||
    (String(req.headers['content-type']).includes('x-www-form-urlencoded') && body.includes('Action='))
  ) {
    return 'sns';
  }
  return undefined;
}

function operationOf(req: IncomingMessage, body: Buffer): string {
  const target = String(req.headers['x-amz-target'] ?? '');
  if (target) return target.slice(target.indexOf('.') + 1);
  const action = /(?:^|&)Action=([A-Za-z]+)/.exec(body.toString('utf8'))?.[1];
  return action ?? `${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`;
}
