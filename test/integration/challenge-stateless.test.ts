import { beforeAll, expect, it } from 'vitest';
import { httpGet } from '../harness/clients.ts';
import { type EdgeStack, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

const bed = new TestBed('challenge');
const THUMBPRINT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
let stack: EdgeStack;

beforeAll(async () => {
  stack = await startEdgeStack(bed, { acme: { accountThumbprint: THUMBPRINT } });
});

it('answers HTTP-01 statelessly with the account thumbprint, for any host, without Redis', async () => {
  await stack.redisServer.stop();
  for (const host of ['www.anything.test', 'other.example.test']) {
    const res = await httpGet({ port: stack.http, host, path: '/.well-known/acme-challenge/abc_DEF-123' });
    expect(res.status).toBe(200);
    expect(res.body).toBe(`abc_DEF-123.${THUMBPRINT}`);
  }
});
