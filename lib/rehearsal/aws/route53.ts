import { randomBytes } from 'node:crypto';
import type { ServiceHandler, ServiceRequest, StandInContext } from './context.ts';
import { AwsApiError, requestId, sendXml, xmlEscape } from './http.ts';
import type { NewCallRecord } from './record.ts';

const NS = 'https://route53.amazonaws.com/doc/2013-04-01/';

interface Change {
  readonly action: string;
  readonly name: string;
  readonly type: string;
  readonly values: string[];
}

/**
 * Route53 over REST-XML, for DNS-01: TXT changes go to pebble-challtestsrv's management API (when
 * its URL is given), so Pebble's validation sees them. A change answers PENDING and GetChange
 * INSYNC, so callers take the same path as on AWS.
 */
export class Route53StandIn implements ServiceHandler {
  /** zone id → record key (`name type`) → values */
  private readonly zones = new Map<string, Map<string, string[]>>();

  constructor(
    private readonly ctx: StandInContext,
    private readonly challtestsrvUrl: string | undefined,
  ) {}

  async handle(r: ServiceRequest): Promise<void> {
    const path = new URL(r.req.url ?? '/', 'http://x').pathname;
    const records: NewCallRecord[] = [];
    try {
      const xml = await this.dispatch(r.req.method ?? 'GET', path, r, records);
      for (const rec of records) this.ctx.recorder.write(rec, 'ok', r.principal);
      sendXml(r.res, 200, xml);
    } catch (err) {
      const e = err instanceof AwsApiError ? err : new AwsApiError('InternalError', String(err), 500);
      for (const rec of records) this.ctx.recorder.write(rec, e.code, r.principal);
      sendXml(
        r.res,
        e.status,
        `<ErrorResponse xmlns="${NS}"><Error><Type>Sender</Type><Code>${xmlEscape(e.code)}</Code>` +
          `<Message>${xmlEscape(e.message)}</Message></Error><RequestId>${requestId()}</RequestId></ErrorResponse>`,
      );
    }
  }

  private async dispatch(
    method: string,
    path: string,
    r: ServiceRequest,
    records: NewCallRecord[],
  ): Promise<string> {
    const rrset = /^\/2013-04-01\/hostedzone\/([^/]+)\/rrset\/?$/.exec(path);
    if (method === 'POST' && rrset) {
      const zoneId = decodeURIComponent(rrset[1] as string);
      const changes = parseChanges(r.body.toString('utf8'));
      records.push({
        service: 'route53',
        action: 'route53:ChangeResourceRecordSets',
        resource: `arn:${this.ctx.partition}:route53:::hostedzone/${zoneId}`,
        region: r.region,
        context: {
          'route53:ChangeResourceRecordSetsActions': unique(changes.map((c) => c.action)),
          'route53:ChangeResourceRecordSetsNormalizedRecordNames': unique(
            changes.map((c) => normalizeName(c.name)),
          ),
          'route53:ChangeResourceRecordSetsRecordTypes': unique(changes.map((c) => c.type)),
        },
      });
      await this.apply(zoneId, changes);
      return `<ChangeResourceRecordSetsResponse xmlns="${NS}">${changeInfo(`C${randomBytes(8).toString('hex').toUpperCase()}`, 'PENDING')}</ChangeResourceRecordSetsResponse>`;
    }
    const change = /^\/2013-04-01\/change\/([^/]+)$/.exec(path);
    if (method === 'GET' && change) {
      const id = decodeURIComponent(change[1] as string);
      records.push({
        service: 'route53',
        action: 'route53:GetChange',
        resource: `arn:${this.ctx.partition}:route53:::change/${id}`,
        region: r.region,
        context: {},
      });
      return `<GetChangeResponse xmlns="${NS}">${changeInfo(id, 'INSYNC')}</GetChangeResponse>`;
    }
    throw new AwsApiError('InvalidInput', `the stand-in does not implement Route53 ${method} ${path}`);
  }

  private async apply(zoneId: string, changes: readonly Change[]): Promise<void> {
    let zone = this.zones.get(zoneId);
    if (!zone) {
      zone = new Map();
      this.zones.set(zoneId, zone);
    }
    // Validate the whole batch first: Route53 applies all changes or none.
    for (const c of changes) {
      const key = `${normalizeName(c.name)} ${c.type}`;
      if (c.action === 'DELETE' && !zone.has(key)) {
        throw new AwsApiError(
          'InvalidChangeBatch',
          `Tried to delete resource record set [name='${c.name}', type='${c.type}'] but it was not found`,
        );
      }
      if (c.action === 'CREATE' && zone.has(key)) {
        throw new AwsApiError(
          'InvalidChangeBatch',
          `Tried to create resource record set [name='${c.name}', type='${c.type}'] but it already exists`,
        );
      }
    }
    for (const c of changes) {
      const name = normalizeName(c.name);
      const key = `${name} ${c.type}`;
      if (c.action === 'DELETE') zone.delete(key);
      else zone.set(key, c.values);
      if (c.type !== 'TXT' || !this.challtestsrvUrl) continue;
      await this.challtestsrv('/clear-txt', { host: `${name}.` });
      if (c.action !== 'DELETE') {
        for (const value of c.values)
          await this.challtestsrv('/set-txt', { host: `${name}.`, value: unquote(value) });
      }
    }
  }

  private async challtestsrv(path: string, body: unknown): Promise<void> {
    const res = await fetch(`${this.challtestsrvUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new AwsApiError('InternalError', `challtestsrv ${path}: HTTP ${res.status}`, 500);
  }
}

function changeInfo(id: string, status: string): string {
  return `<ChangeInfo><Id>/change/${xmlEscape(id)}</Id><Status>${status}</Status><SubmittedAt>${new Date().toISOString()}</SubmittedAt></ChangeInfo>`;
}

function parseChanges(xml: string): Change[] {
  const out: Change[] = [];
  for (const block of xml.match(/<Change>[\s\S]*?<\/Change>/g) ?? []) {
    const tag = (name: string) =>
      unescapeXml(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(block)?.[1] ?? '');
    out.push({
      action: tag('Action'),
      name: tag('Name'),
      type: tag('Type'),
      values: [...block.matchAll(/<Value>([\s\S]*?)<\/Value>/g)].map((m) => unescapeXml(m[1] as string)),
    });
  }
  if (out.length === 0) throw new AwsApiError('InvalidInput', 'ChangeBatch has no changes');
  return out;
}

/** As IAM's `…NormalizedRecordNames`: lower case, no trailing dot. */
function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function unquote(value: string): string {
  return value.replace(/^"(.*)"$/, '$1');
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function unescapeXml(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}
