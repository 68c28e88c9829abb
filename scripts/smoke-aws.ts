// npm run smoke:aws — deploys the example to a sandbox AWS account, checks the real endpoints,
// and destroys everything again (also on failure). Never run in CI. See docs/smoke-aws.md.
//
//   EDGE_SMOKE_ACCOUNT=123456789012        the sandbox account; must match the credentials
//   EDGE_SMOKE_CONFIRM=deploy-and-destroy  explicit consent to create and delete resources there
//   EDGE_SMOKE_CONFIG=path.json            a deployment config for that account (its hosted zone)
//   EDGE_SMOKE_ORIGIN=https://…            optional: the tenant's origin (default https://example.com)
//   EDGE_SMOKE_CUSTOM_DOMAIN=www.…         optional: a name already CNAMEd to edge.<platform domain>
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { deploymentNames, parseDeploymentConfig } from '../lib/config/deployment-config.ts';

const STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';
const env = process.env;

function refuse(why: string): never {
  process.stderr.write(`smoke:aws refuses to run: ${why}\n`);
  process.exit(2);
}
if (!env.EDGE_SMOKE_ACCOUNT) refuse('EDGE_SMOKE_ACCOUNT is not set');
if (env.EDGE_SMOKE_CONFIRM !== 'deploy-and-destroy')
  refuse('EDGE_SMOKE_CONFIRM=deploy-and-destroy is not set');
if (!env.EDGE_SMOKE_CONFIG) refuse('EDGE_SMOKE_CONFIG (a deployment config for the sandbox) is not set');

function run(cmd: string, args: string[], extraEnv: Record<string, string> = {}): string {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')} exited ${r.status}`);
  return r.stdout;
}

const caller = JSON.parse(run('aws', ['sts', 'get-caller-identity', '--output', 'json'])) as {
  Account: string;
};
if (caller.Account !== env.EDGE_SMOKE_ACCOUNT) {
  refuse(
    `the credentials are for account ${caller.Account}, not EDGE_SMOKE_ACCOUNT ${env.EDGE_SMOKE_ACCOUNT}`,
  );
}

// A fresh deployment name per run: retained resources (table, keys) of an earlier run never collide.
const input = JSON.parse(readFileSync(env.EDGE_SMOKE_CONFIG, 'utf8')) as Record<string, unknown>;
const config = parseDeploymentConfig({
  ...input,
  name: `smoke-${randomBytes(3).toString('hex')}`,
  acme: { ...(input.acme as object), directories: [{ name: 'le-staging', directoryUrl: STAGING }] },
});
if (config.account !== caller.Account) refuse(`EDGE_SMOKE_CONFIG is for account ${config.account}`);
const names = deploymentNames(config);
const configPath = join(mkdtempSync(join(tmpdir(), 'edge-smoke-')), 'deployment.json');
writeFileSync(configPath, JSON.stringify(config));
const cdk = (...args: string[]) => run('npx', ['cdk', ...args, '-c', `config=${configPath}`]);
const cli = (...args: string[]) =>
  run('npx', ['tsx', 'bin/edge.ts', ...args], {
    EDGE_TABLE_NAME: names.table,
    EDGE_REGION: config.homeRegion,
    EDGE_BUS: 'aws',
    EDGE_SNS_TOPIC_ARN: `arn:aws:sns:${config.homeRegion}:${config.account}:${names.topic}`,
  });

interface Got {
  status: number;
  body: string;
  issuer: string;
  headers: Record<string, unknown>;
}
/** One HTTPS GET to the public name (staging certificates are not trusted: the issuer is checked instead). */
function get(host: string, path = '/'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host, path, servername: host, rejectUnauthorized: false, timeout: 15000 },
      (res) => {
        const cert = (res.socket as TLSSocket).getPeerCertificate();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body,
            issuer: String(cert.issuer?.O ?? cert.issuer?.CN ?? ''),
            headers: res.headers,
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
async function until<T>(what: () => Promise<T>, ok: (t: T) => boolean, minutes: number): Promise<T> {
  const deadline = Date.now() + minutes * 60_000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const t = await what();
      if (ok(t)) return t;
      last = t;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 10_000));
  }
  throw new Error(`gave up after ${minutes} min; last: ${JSON.stringify(last).slice(0, 160)}`);
}

const results: [string, string, string][] = [];
async function check(name: string, fn: () => Promise<string | undefined>) {
  const t0 = Date.now();
  try {
    const note = await fn();
    results.push(
      note === undefined
        ? ['SKIP', name, 'not configured']
        : ['PASS', name, `${note} (${Math.round((Date.now() - t0) / 1000)}s)`],
    );
  } catch (err) {
    results.push(['FAIL', name, (err as Error).message]);
  }
}

const tenant = `smoke${randomBytes(2).toString('hex')}`;
const staging = (g: Got) => /staging|\(STAGING\)|Fake LE/i.test(g.issuer);
try {
  await check('bootstrap', async () => {
    for (const r of config.regions) run('npx', ['cdk', 'bootstrap', `aws://${config.account}/${r.region}`]);
    return config.regions.map((r) => r.region).join(',');
  });
  await check('deploy', async () => {
    cdk('deploy', '--all', '--require-approval', 'never');
    return `${config.regions.length + 1} stacks`;
  });
  if (results.some(([s]) => s === 'FAIL')) throw new Error('deploy failed');
  for (const r of config.regions) {
    await check(`canary ${r.region}`, async () => {
      const g = await until(
        () => get(names.healthCheckHostname(r.region)),
        (x) => x.status === 200,
        20,
      );
      return g.body.trim();
    });
  }
  await check('tenant add', async () => {
    cli('tenant', 'add', tenant, '--origin-http', env.EDGE_SMOKE_ORIGIN ?? 'https://example.com');
    return tenant;
  });
  await check('subdomain form', async () => {
    const g = await until(
      () => get(`${tenant}.${config.platformDomain}`),
      (x) => x.status === 200,
      5,
    );
    if (!staging(g)) throw new Error(`certificate issued by "${g.issuer}", not the staging CA`);
    return `200, issuer ${g.issuer}`;
  });
  await check('directory form', async () => {
    const g = await until(
      () => get(config.platformDomain, `/${tenant}/`),
      (x) => x.status === 200,
      5,
    );
    return `200, cache ${String(g.headers['cache-status'] ?? '-')}`;
  });
  await check('custom domain, first-handshake issuance', async () => {
    const domain = env.EDGE_SMOKE_CUSTOM_DOMAIN;
    if (!domain) return undefined;
    cli('domain', 'add', domain, '--tenant', tenant);
    const g = await until(
      () => get(domain),
      (x) => x.status === 200 && staging(x),
      10,
    );
    return `200, issuer ${g.issuer}`;
  });
  await check('purge', async () => {
    cli('purge', '--tenant', tenant);
    const g = await get(`${tenant}.${config.platformDomain}`);
    return `${g.status}, cache after purge ${String(g.headers['cache-status'] ?? '-')}`;
  });
  results.push([
    'SKIP',
    '/readyz through the NLB',
    'the control listener is loopback-only; the canaries stand in',
  ]);
} catch {
  // Already recorded as a FAIL line; teardown follows.
} finally {
  await check('destroy', async () => {
    cdk('destroy', '--all', '--force');
    return `retained: table ${names.table} (deletion protection), KMS keys ${names.privateKeyAlias} and ${names.topicKeyAlias} in every region`;
  });
  const failed = results.filter(([s]) => s === 'FAIL').length;
  const lines = [
    `smoke:aws ${new Date().toISOString()} account=${config.account} name=${config.name} regions=${config.regions.map((r) => r.region).join(',')}`,
    ...results.map(([s, n, note]) => `${s.padEnd(4)} ${n.padEnd(40)} ${note}`),
    `RESULT ${results.filter(([s]) => s === 'PASS').length} passed, ${failed} failed, ${results.filter(([s]) => s === 'SKIP').length} skipped`,
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
  process.exitCode = failed ? 1 : 0;
}
