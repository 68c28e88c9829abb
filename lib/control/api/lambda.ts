import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SNSClient } from '@aws-sdk/client-sns';
import type { DataKeyProvider } from '../../core/store/data-keys.ts';
import { Store } from '../../core/store/store.ts';
import { TableCertificateReader } from '../certificates.ts';
import { loadCliConfig } from '../cli/config.ts';
import { ControlPlane } from '../control-plane.ts';
import { NodeDnsResolver } from '../dns/resolver.ts';
import { SnsPublisher } from '../sns-publisher.ts';
import { handleApi } from './handler.ts';

/**
 * The control API on AWS: API Gateway (HTTP API, IAM authorization: the caller's SigV4 was
 * checked before this runs) in front of this Lambda, which runs the same handler as the local
 * server; and the deployment's one periodic ownership re-check, invoked by an EventBridge
 * schedule. Reads the CLI's settings (EDGE_TABLE_NAME, EDGE_BUS=aws, EDGE_SNS_TOPIC_ARN,
 * EDGE_DNS_CNAME, EDGE_DNS01_CHALLENGE_ZONE ...), validated once per container.
 */

/** The parts of an API Gateway HTTP API (payload format 2.0) event the handler reads. */
export interface HttpApiEvent {
  readonly version: '2.0';
  readonly rawPath: string;
  readonly rawQueryString?: string;
  readonly body?: string;
  readonly isBase64Encoded?: boolean;
  readonly requestContext: { readonly http: { readonly method: string } };
}

/** An EventBridge scheduled event (the re-check). */
export interface ScheduledEvent {
  readonly source: 'aws.events' | 'aws.scheduler';
  readonly 'detail-type': string;
}

export interface HttpApiResult {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface SweepResult {
  readonly checked: number;
  readonly attention: number;
  readonly errors: number;
}

/** No API operation opens a private key: a provider that says so if one ever tried. */
const NO_KEYS: DataKeyProvider = {
  kind: 'kms',
  generate: () => Promise.reject(new Error('the control API never seals a private key')),
  unwrap: () => Promise.reject(new Error('the control API never opens a private key')),
};

let control: ControlPlane | undefined;

function controlPlane(): ControlPlane {
  if (control) return control;
  const c = loadCliConfig({}, process.env);
  if (c.bus !== 'aws') throw new Error(`the control API Lambda publishes with SNS: EDGE_BUS is "${c.bus}"`);
  const dynamo = new DynamoDBClient(c.region ? { region: c.region } : {});
  const topicArn = c.snsTopicArn as string;
  control = new ControlPlane({
    store: new Store({ client: dynamo, tableName: c.tableName, keys: NO_KEYS }),
    bus: new SnsPublisher(new SNSClient({ region: topicArn.split(':')[3] }), topicArn),
    resolver: new NodeDnsResolver({ servers: c.dnsServers }),
    certificates: new TableCertificateReader(dynamo, c.tableName),
    edge:
      c.edgeCname || c.edgeAddresses.length ? { cname: c.edgeCname, addresses: c.edgeAddresses } : undefined,
    challengeZone: c.challengeZone,
  });
  return control;
}

/** Adapts an HTTP API event to the handler's request and its answer back. */
export async function handleHttpEvent(cp: ControlPlane, event: HttpApiEvent): Promise<HttpApiResult> {
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(event.rawQueryString ?? '')) {
    const prev = query[k];
    query[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
  }
  const body =
    event.body && event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  const res = await handleApi(cp, {
    method: event.requestContext.http.method,
    path: event.rawPath,
    query,
    body: body ?? '',
  });
  return {
    statusCode: res.status,
    headers: { 'content-type': 'application/json' },
    body: `${JSON.stringify(res.body)}\n`,
  };
}

/**
 * The deployment's one re-check: every domain refreshed; moved_away and failed ones logged as
 * `domain needs attention` (the alarm's pattern), never suspended.
 */
export async function sweep(cp: ControlPlane): Promise<SweepResult> {
  const { checked, attention, errors } = await cp.domains.sweep();
  for (const d of attention) {
    console.warn(
      JSON.stringify({
        msg: 'domain needs attention',
        domain: d.domain,
        tenant: d.tenant,
        status: d.status,
        reason: d.reason,
      }),
    );
  }
  for (const e of errors) console.warn(JSON.stringify({ msg: 'domain re-check failed', error: e }));
  console.info(JSON.stringify({ msg: 'domain re-check done', checked, attention: attention.length }));
  return { checked, attention: attention.length, errors: errors.length };
}

export async function handler(event: HttpApiEvent | ScheduledEvent): Promise<HttpApiResult | SweepResult> {
  if ('source' in event && (event.source === 'aws.events' || event.source === 'aws.scheduler')) {
    return sweep(controlPlane());
  }
  return handleHttpEvent(controlPlane(), event as HttpApiEvent);
}
