import { z } from 'zod';
import { createDocument } from 'zod-openapi';
import { domainNameSchema, tenantIdSchema } from '../../core/redis-format.ts';
import * as s from './schemas.ts';

const json = (schema: z.ZodType) => ({ content: { 'application/json': { schema } } });
const ok = (description: string, schema: z.ZodType) => ({ description, ...json(schema) });
const errors = {
  '400': { description: 'Invalid input', ...json(s.apiError) },
  '403': { description: 'Missing or invalid SigV4 signature', ...json(s.apiError) },
  '404': { description: 'No such tenant or domain', ...json(s.apiError) },
  '409': { description: 'The domain belongs to another tenant', ...json(s.apiError) },
  '502': { description: 'Written to the table, not published: repeat the request', ...json(s.apiError) },
};
const tenantPath = { path: z.object({ id: tenantIdSchema }) };
const domainPath = { path: z.object({ domain: domainNameSchema }) };

/** The OpenAPI 3.1 document of the control API, generated from the zod schemas it validates with. */
export function openApiDocument(): ReturnType<typeof createDocument> {
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Edge control API',
      version: '1.0.0',
      description:
        'Tenants, custom domains (status and the DNS records to create) and purges. Every request is signed with AWS Signature Version 4 (service execute-api).',
    },
    security: [{ sigv4: [] }],
    components: {
      securitySchemes: {
        sigv4: {
          type: 'apiKey',
          name: 'Authorization',
          in: 'header',
          'x-amazon-apigateway-authtype': 'awsSigv4',
        },
      },
    },
    paths: {
      '/tenants': {
        get: {
          operationId: 'listTenants',
          responses: { '200': ok('The tenants', z.object({ tenants: z.array(s.tenantEntry) })), ...errors },
        },
        post: {
          operationId: 'putTenant',
          requestBody: json(s.tenantInput),
          responses: {
            '200': ok(
              'Created, or its origin replaced',
              z.object({ tenant: s.tenantEntry, created: z.boolean() }),
            ),
            ...errors,
          },
        },
      },
      '/tenants/{id}': {
        get: {
          operationId: 'getTenant',
          requestParams: tenantPath,
          responses: { '200': ok('The tenant', s.tenantEntry.loose()), ...errors },
        },
        delete: {
          operationId: 'deleteTenant',
          requestParams: tenantPath,
          responses: {
            '200': ok(
              'Removed with its domains',
              z.object({ id: z.string(), version: z.number(), domains: z.array(z.string()) }),
            ),
            ...errors,
          },
        },
      },
      '/domains': {
        get: {
          operationId: 'listDomains',
          requestParams: { query: z.object({ tenant: tenantIdSchema.optional() }) },
          responses: { '200': ok('The domains', z.object({ domains: z.array(s.domainEntry) })), ...errors },
        },
        post: {
          operationId: 'addDomain',
          requestBody: json(s.domainInput),
          responses: { '200': ok('Registered; the records to create', s.domainAdded), ...errors },
        },
      },
      '/domains/{domain}': {
        get: {
          operationId: 'getDomain',
          requestParams: domainPath,
          responses: {
            '200': ok('Status brought up to date, certificate, records', s.domainDetails),
            ...errors,
          },
        },
        delete: {
          operationId: 'deleteDomain',
          requestParams: domainPath,
          responses: {
            '200': ok('Removed', z.object({ domain: z.string(), tenant: z.string(), version: z.number() })),
            ...errors,
          },
        },
      },
      '/domains/{domain}/verify': {
        post: {
          operationId: 'verifyDomain',
          requestParams: domainPath,
          responses: { '200': ok('The domain after looking for its proof', s.domainEntry), ...errors },
        },
      },
      '/purges': {
        post: {
          operationId: 'purge',
          requestBody: json(s.purgeInput),
          responses: {
            '200': ok(
              'Purged everywhere',
              z
                .object({ tenant: z.string(), scope: z.string(), field: z.string(), generation: z.number() })
                .loose(),
            ),
            ...errors,
          },
        },
      },
    },
  });
}
