import type { z } from 'zod';
import type { ControlPlane } from '../control-plane.ts';
import { ConflictError, NotFoundError, PublishError, ValidationError } from '../errors.ts';
import { openApiDocument } from './openapi.ts';
import * as s from './schemas.ts';

export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string | string[]>>;
  readonly body: string;
}

export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
}

function parseBody<S extends z.ZodType>(schema: S, body: string): z.output<S> {
  let doc: unknown;
  try {
    doc = JSON.parse(body || '{}');
  } catch {
    throw new ValidationError('the body is not JSON');
  }
  const r = schema.safeParse(doc);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new ValidationError(`invalid ${issue?.path.join('.') || 'body'}: ${issue?.message}`);
}

const KINDS: [new (...a: never[]) => Error, number, string][] = [
  [ValidationError, 400, 'usage'],
  [NotFoundError, 404, 'not_found'],
  [ConflictError, 409, 'conflict'],
  [PublishError, 502, 'publish'],
];

/**
 * The control API over one ControlPlane, the same operations as the CLI: the local server and
 * the Lambda both call this after authentication. Never throws.
 */
export async function handleApi(cp: ControlPlane, req: ApiRequest): Promise<ApiResponse> {
  try {
    return { status: 200, body: await route(cp, req) };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    const [, status, kind] = KINDS.find(([cls]) => e instanceof cls) ?? [Error, 500, 'error'];
    return { status, body: { error: { kind, message: e.message } } };
  }
}

let openApi: unknown;

async function route(cp: ControlPlane, req: ApiRequest): Promise<unknown> {
  const parts = req.path.split('/').filter(Boolean).map(decodeURIComponent);
  const m = req.method.toUpperCase();
  const [group, name, action] = parts;
  if (m === 'GET' && req.path === '/openapi.json') {
    openApi ??= openApiDocument();
    return openApi;
  }
  if (group === 'tenants' && parts.length === 1) {
    if (m === 'GET') return { tenants: await cp.tenants.list() };
    if (m === 'POST') {
      const b = parseBody(s.tenantInput, req.body);
      return cp.tenants.add(b.id, b.origin, b.hsts ? { hsts: b.hsts } : {});
    }
  }
  if (group === 'tenants' && parts.length === 2 && name) {
    if (m === 'GET') return cp.tenants.show(name);
    if (m === 'DELETE') return cp.tenants.remove(name);
  }
  if (group === 'domains' && parts.length === 1) {
    if (m === 'GET') {
      const tenant = req.query.tenant;
      return { domains: await cp.domains.list({ tenant: Array.isArray(tenant) ? tenant[0] : tenant }) };
    }
    if (m === 'POST') {
      const b = parseBody(s.domainInput, req.body);
      // Never `preverified`: only an operator may vouch for an owner.
      return cp.domains.add(b.domain, b.tenant);
    }
  }
  if (group === 'domains' && parts.length === 2 && name) {
    if (m === 'GET') return cp.domains.show(name);
    if (m === 'DELETE') return cp.domains.remove(name);
  }
  if (group === 'domains' && parts.length === 3 && name && action === 'verify' && m === 'POST') {
    return cp.domains.verify(name);
  }
  if (group === 'purges' && parts.length === 1 && m === 'POST') {
    const { tenant, ...target } = parseBody(s.purgeInput, req.body);
    return cp.purge(tenant, target);
  }
  throw new NotFoundError(`no route ${m} ${req.path}`);
}
