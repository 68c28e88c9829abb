import { execFile, execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../lib/local/ports.ts';
import { TestBed } from '../harness/testbed.ts';
import { controlStack } from './stack.ts';

const bed = new TestBed('control-cli');
const STREAM = 'cli:events';
const stack = controlStack(bed, { tableName: 'edge-cli', streams: [STREAM] });
const ENTRY = fileURLToPath(new URL('../../bin/edge.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** No resolver answers (a closed port): ownership proofs are not found, quickly. */
const NO_DNS = { EDGE_DNS_SERVERS: '127.0.0.1:9' };

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `node --import tsx bin/edge.ts …` (or another entry) with the stack in its environment. */
function edge(args: string[], env: NodeJS.ProcessEnv = {}, entry = ['--import', 'tsx', ENTRY]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...entry, ...args],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          EDGE_TABLE_NAME: stack.tableName,
          EDGE_DYNAMODB_ENDPOINT: stack.dynamoEndpoint,
          EDGE_BUS: 'redis',
          EDGE_BUS_REDIS_URL: `redis://127.0.0.1:${stack.redisPort}`,
          EDGE_BUS_STREAM: STREAM,
          EDGE_DNS_CNAME: 'edge.platform.example',
          ...env,
        },
      },
      (err, stdout, stderr) => {
        const code = err ? Number((err as NodeJS.ErrnoException & { code?: unknown }).code ?? 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('bin/edge.ts', () => {
  it('tenant add: exit 0, a human line, the item in the table and the event on the stream', async () => {
    const r = await edge([
      'tenant',
      'add',
      'acme',
      '--origin-s3',
      'sites.s3-website.eu-west-1.amazonaws.com',
      '--prefix',
      'acme/',
    ]);
    expect(r).toEqual({
      code: 0,
      stdout:
        'tenant acme created (version 1): origin s3-website sites.s3-website.eu-west-1.amazonaws.com prefix acme/\n',
      stderr: '',
    });
    expect(await stack.store.getTenant('acme')).toMatchObject({ version: 1 });
    expect(await stack.events(STREAM)).toMatchObject([{ type: 'tenant.upserted', payload: { id: 'acme' } }]);
  });

  it('domain add --skip-dns-check --preverified', async () => {
    const r = await edge([
      'domain',
      'add',
      'www.acme-shop.com',
      '--tenant',
      'acme',
      '--skip-dns-check',
      '--preverified',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'domain www.acme-shop.com added to tenant acme (version 1): verified; DNS check skipped',
        'records to create:',
        'PURPOSE  TYPE   NAME               VALUE',
        'routing  CNAME  www.acme-shop.com  edge.platform.example',
        '',
      ].join('\n'),
    );
    expect(await stack.store.getDomain('www.acme-shop.com')).toMatchObject({
      tenant: 'acme',
      status: 'verified',
    });
    expect((await stack.events(STREAM)).at(-1)).toMatchObject({
      type: 'domain.upserted',
      payload: { domain: 'www.acme-shop.com', tenant: 'acme' },
    });
  });

  it('purge --json prints what was purged and its generation', async () => {
    const r = await edge(['purge', '--tenant', 'acme', '--prefix', '/blog/', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toEqual({
      tenant: 'acme',
      scope: 'prefix',
      target: '/blog/',
      field: 'p:/blog/',
      generation: expect.any(Number),
    });
    expect(await stack.store.getPurges('acme')).toEqual({ 'p:/blog/': out.generation });
    expect((await stack.events(STREAM)).at(-1)).toMatchObject({
      type: 'cache.purge',
      version: out.generation,
      payload: { tenant: 'acme', scope: 'prefix', prefix: '/blog/', generation: out.generation },
    });
  });

  it('domain show --json and domain list', async () => {
    const show = await edge(['domain', 'show', 'www.acme-shop.com', '--json']);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({
      domain: 'www.acme-shop.com',
      tenant: 'acme',
      certificate: { state: 'none' },
      purges: { prefixes: 1, urls: 0 },
    });
    const list = await edge(['domain', 'list', '--tenant', 'acme']);
    expect(list.stdout).toBe('DOMAIN             TENANT  STATUS\nwww.acme-shop.com  acme    verified\n');
  });

  it('bad usage exits 2 with a precise message and writes nothing', async () => {
    const before = (await stack.events(STREAM)).length;
    const r = await edge([
      'purge',
      '--tenant',
      'acme',
      '--host',
      'www.acme-shop.com',
      '--url',
      'https://x.com/',
    ]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'edge: give at most one of --host, --prefix and --url (got --host, --url)\n(edge --help for usage)\n',
    );
    const json = await edge(['tenant', 'add', 'Acme', '--origin-http', 'http://o.example', '--json']);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stderr)).toEqual({
      error: {
        kind: 'usage',
        message: 'invalid tenant id "Acme": tenant id: lowercase letters, digits and dashes, at most 63',
      },
    });
    const noConfig = await edge(['tenant', 'list'], { EDGE_TABLE_NAME: '', EDGE_BUS: '' });
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toContain(
      'edge: invalid configuration: --table / EDGE_TABLE_NAME: required; --bus / EDGE_BUS: required, aws or redis',
    );
    expect((await stack.events(STREAM)).length).toBe(before);
  });

  it('a failed operation exits 1', async () => {
    const r = await edge(['domain', 'add', 'shop.acme-shop.com', '--tenant', 'initech', '--skip-dns-check']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('edge: tenant "initech" does not exist\n');
  });

  it('an unreachable bus exits 1 saying the table has the change and repeating publishes it', async () => {
    const nothing = await freePort();
    const r = await edge(['tenant', 'add', 'initech', '--origin-http', 'http://o.initech.example'], {
      EDGE_BUS_REDIS_URL: `redis://127.0.0.1:${nothing}`,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^edge: tenant\.upserted \(version 1\) is in the table but was not published: .*ECONNREFUSED.*; repeat the command to publish it\n$/,
    );
    expect(await stack.store.getTenant('initech')).toMatchObject({ version: 1 });
    const again = await edge(['tenant', 'add', 'initech', '--origin-http', 'http://o.initech.example']);
    expect(again.stdout).toBe('tenant initech updated (version 2): origin http http://o.initech.example\n');
  });

  it('--help exits 0 with the commands; an unknown option exits 2 naming it', async () => {
    const help = await edge(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: edge \[options\] \[command\]\n/);
    expect(help.stdout).toContain('exit status: 0 done, 1 the operation failed, 2 usage or validation error');
    const bad = await edge(['domain', 'list', '--force']);
    expect(bad).toEqual({
      code: 2,
      stdout: '',
      stderr: "edge: unknown option '--force'\n(edge --help for usage)\n",
    });
  });

  it('domain verify: a domain without its proof stays pending_verification', async () => {
    await edge(['domain', 'add', 'pending.acme-shop.com', '--tenant', 'acme', '--skip-dns-check'], NO_DNS);
    const r = await edge(['domain', 'verify', 'pending.acme-shop.com', '--json'], NO_DNS);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      domain: 'pending.acme-shop.com',
      status: 'pending_verification',
    });
  });

  it('domain add --wait: exit 1 when the time is up, with the records still missing', async () => {
    const r = await edge(
      [
        'domain',
        'add',
        'pending.acme-shop.com',
        '--tenant',
        'acme',
        '--skip-dns-check',
        '--wait',
        '--timeout',
        '1',
        '--interval',
        '1',
      ],
      NO_DNS,
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      'pending.acme-shop.com pending_verification: verification: waiting for the ownership record',
    );
    expect(r.stderr).toMatch(
      /^edge: domain pending\.acme-shop\.com is still pending_verification after 1 s\nrecords to create:\nPURPOSE +TYPE +NAME +VALUE\nownership +TXT +_edge-verify\.pending\.acme-shop\.com +edge-verify=\S+\n/,
    );
  });

  it('domain add --wait --json: a failed issuance exits 1 with the reason', async () => {
    await stack.issuance.failed('www.acme-shop.com', 'CAA forbids letsencrypt.org', Date.now() + 60_000, 1);
    const r = await edge(
      ['domain', 'add', 'www.acme-shop.com', '--tenant', 'acme', '--skip-dns-check', '--wait', '--json'],
      NO_DNS,
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(JSON.parse(r.stderr)).toMatchObject({
      error: {
        kind: 'failed',
        message: 'domain www.acme-shop.com failed: CAA forbids letsencrypt.org',
        domain: { status: 'failed', certificate: { state: 'failed' } },
      },
    });
  });

  it('tenant add --hsts-max-age: HSTS in the table, the event and tenant show; refused without its rule', async () => {
    const args = ['tenant', 'add', 'secure', '--origin-http', 'http://o.secure.example'];
    const r = await edge([
      ...args,
      '--hsts-max-age',
      '31536000',
      '--hsts-include-subdomains',
      '--hsts-preload',
    ]);
    expect(r).toEqual({
      code: 0,
      stdout:
        'tenant secure created (version 1): origin http http://o.secure.example; HSTS max-age=31536000; includeSubDomains; preload\n',
      stderr: '',
    });
    const hsts = { maxAgeSeconds: 31536000, includeSubDomains: true, preload: true };
    expect(await stack.store.getTenant('secure')).toMatchObject({ hsts, version: 1 });
    expect((await stack.events(STREAM)).at(-1)).toMatchObject({ type: 'tenant.upserted', payload: { hsts } });
    const shown = await edge(['tenant', 'show', 'secure', '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ hsts });
    const refused = await edge([
      ...args,
      '--hsts-max-age',
      '600',
      '--hsts-include-subdomains',
      '--hsts-preload',
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/preload needs includeSubDomains and maxAgeSeconds >= 31536000/);
    expect(await stack.store.getTenant('secure')).toMatchObject({ version: 1 });
  });

  it('the compiled entry (npm run build) answers like the source', async () => {
    // Inside the repository, so the compiled files find node_modules; its own package.json says ESM.
    const out = join(ROOT, 'node_modules/.cache', `edge-cli-test-${process.pid}`);
    bed.onStop(() => rmSync(out, { recursive: true, force: true }));
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.cli.json', '--outDir', out], { cwd: ROOT });
    writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
    const compiled = await edge(['domain', 'list', '--json'], {}, [join(out, 'bin/edge.js')]);
    expect(compiled.code).toBe(0);
    expect(compiled.stdout).toBe((await edge(['domain', 'list', '--json'])).stdout);
  }, 120_000);
});
