/**
 * npm run conformance: the public HTTP caching test suite (github.com/http-tests/cache-tests)
 * through the edge and through a plain nginx proxy_cache on this machine, side by side.
 * The suite is not part of this repository: CACHE_TESTS_DIR names a checkout (see
 * docs/cache-conformance.md). Exits 1 when a required test fails through the edge and passes
 * through plain nginx.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import Mustache from 'mustache';
import { RedisKeys } from '../../lib/core/redis-format.ts';
import { detectNginxRuntime } from '../../lib/edge/nginx-runtime.ts';
import { startEdge } from '../../lib/local/edge-server.ts';
import { freePort } from '../../lib/local/ports.ts';
import { ManagedProcess } from '../../lib/local/process.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';

const run = promisify(execFile);
const HERE = fileURLToPath(new URL('.', import.meta.url));
const PLATFORM = 'conformance.test';
const TENANT = 'suite';
// Request headers the suite's tests send and its server checks (tests/*.mjs request_headers).
const SUITE_HEADERS = [
  'Req-Num',
  'Test-ID',
  'Test-Name',
  'Cache-Control',
  'Pragma',
  'Foo',
  'Bar',
  'Baz',
  'Other',
  'Abc',
];

type Results = Record<string, unknown>;
interface SuiteTest {
  id: string;
  name?: string;
  kind?: string;
}
interface Suite {
  name: string;
  tests: SuiteTest[];
}
type Verdict = [string, string, string];

function fail(message: string): never {
  console.error(`conformance: ${message}`);
  process.exit(2);
}

function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((ok) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 1000 }, (res) => {
      res.resume();
      ok(res.statusCode ?? 0);
    });
    req.on('error', () => ok(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** The suite's command-line client against one base URL; its JSON results. */
async function runClient(suiteDir: string, base: string, testId: string): Promise<Results> {
  const { stdout } = await run(
    process.execPath,
    ['--no-warnings', '--import', pathToFileURL(join(HERE, 'dns-preload.mjs')).href, 'test-engine/cli.mjs'],
    {
      cwd: suiteDir,
      maxBuffer: 256 * 1024 * 1024,
      env: {
        ...process.env,
        npm_config_base: base,
        npm_config_id: testId,
        npm_package_config_id: testId,
        CONFORMANCE_PLATFORM: PLATFORM,
        // The edge answers with a local self-signed certificate.
        NODE_TLS_REJECT_UNAUTHORIZED: '0',
      },
    },
  );
  if (testId) {
    console.log(stdout);
    return {};
  }
  return JSON.parse(stdout) as Results;
}

async function main(): Promise<void> {
  const suiteDir = resolve(process.env.CACHE_TESTS_DIR ?? '');
  if (!process.env.CACHE_TESTS_DIR || !existsSync(join(suiteDir, 'tests/index.mjs'))) {
    fail(
      'set CACHE_TESTS_DIR to a checkout of https://github.com/http-tests/cache-tests (see docs/cache-conformance.md)',
    );
  }
  if (!existsSync(join(suiteDir, 'node_modules/undici'))) {
    console.error(
      'conformance: no node_modules in the suite (npm ci there): interim-response tests will not run',
    );
  }
  const only = process.env.CACHE_TESTS_ID ?? '';
  const dir = await mkdtemp(join(tmpdir(), 'edge-conformance-'));
  await chmod(dir, 0o755); // nginx's workers run as nobody when started as root
  const procs: ManagedProcess[] = [];
  let keep = false;
  try {
    // The suite's own origin server.
    const originPort = await freePort();
    procs.push(
      await ManagedProcess.start({
        name: 'cache-tests-server',
        command: process.execPath,
        args: ['test-engine/server/server.mjs'],
        cwd: suiteDir,
        env: {
          ...process.env,
          npm_config_protocol: 'http',
          npm_config_port: String(originPort),
          npm_config_pidfile: join(dir, 'cache-tests-server.pid'),
        },
        logFile: join(dir, 'cache-tests-server.log'),
        ready: async () => (await httpStatus(originPort, '/')) > 0,
      }),
    );

    // The edge, with one HTTP-origin tenant pointing at the suite's server.
    const redisPort = await freePort();
    procs.push(await startRedisServer({ port: redisPort, dir }));
    const [http, https, control] = [await freePort(), await freePort(), await freePort()];
    const edgeDir = join(dir, 'edge');
    await mkdir(edgeDir);
    const edge = await startEdge({
      dir: edgeDir,
      controlToken: randomBytes(24).toString('hex'),
      config: {
        platformDomain: PLATFORM,
        listen: { address: '127.0.0.1', httpPort: http, httpsPort: https, controlPort: control },
        redis: { port: redisPort },
        nginx: { workerProcesses: 1, errorLogLevel: 'warn' },
        // The suite's server is on loopback and reads its own request headers.
        origins: { allowNetworks: ['127.0.0.1/32'], forwardRequestHeaders: SUITE_HEADERS },
      },
    });
    procs.push(edge.process);
    const redis = new Redis({ port: redisPort, maxRetriesPerRequest: 1 });
    const keys = new RedisKeys(edge.config.redis.prefix);
    await redis.set(
      keys.tenant(TENANT),
      JSON.stringify({ id: TENANT, origin: { type: 'http', url: `http://127.0.0.1:${originPort}` } }),
    );
    redis.disconnect();

    // Plain nginx with proxy_cache, the same binary.
    const plainDir = join(dir, 'nginx');
    await mkdir(join(plainDir, 'tmp'), { recursive: true });
    const plainPort = await freePort();
    const template = await readFile(join(HERE, 'nginx-baseline.conf.mustache'), 'utf8');
    const plainConf = join(plainDir, 'nginx.conf');
    await writeFile(plainConf, Mustache.render(template, { dir: plainDir, port: plainPort, originPort }));
    procs.push(
      await ManagedProcess.start({
        name: 'nginx-plain',
        command: detectNginxRuntime().binary,
        args: ['-p', plainDir, '-c', plainConf],
        logFile: join(plainDir, 'stdout.log'),
        stopSignal: 'SIGQUIT',
        ready: async () => (await httpStatus(plainPort, '/')) > 0,
      }),
    );

    const edgeBase = `https://${TENANT}.${PLATFORM}:${https}`;
    const plainBase = `http://127.0.0.1:${plainPort}`;
    if (only) {
      console.log(`--- nginx (${plainBase})`);
      await runClient(suiteDir, plainBase, only);
      console.log(`--- edge (${edgeBase})`);
      await runClient(suiteDir, edgeBase, only);
      return;
    }
    console.error(`conformance: running the suite through nginx (${plainBase}) and the edge (${edgeBase})`);
    const [plain, edgeResults] = await Promise.all([
      runClient(suiteDir, plainBase, ''),
      runClient(suiteDir, edgeBase, ''),
    ]);
    const regressions = await report(suiteDir, plain, edgeResults);
    const out = process.env.CONFORMANCE_OUT;
    if (out) await writeFile(out, JSON.stringify({ nginx: plain, edge: edgeResults }, null, 2));
    const problems = (await readFile(edge.errorLog, 'utf8'))
      .split('\n')
      .filter((l) => /\[(crit|alert|emerg)\]/.test(l));
    if (problems.length) {
      keep = true;
      console.error(`conformance: the edge logged:\n${problems.slice(0, 20).join('\n')}`);
    }
    if (regressions > 0) {
      keep = true;
      process.exitCode = 1;
    }
  } catch (err) {
    keep = true;
    throw err;
  } finally {
    await Promise.all(procs.reverse().map((p) => p.stop().catch(() => {})));
    if (keep) console.error(`conformance: logs kept in ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}

/** Prints both columns and the required regressions; returns how many there are. */
async function report(suiteDir: string, plain: Results, edge: Results): Promise<number> {
  const suites = (await import(pathToFileURL(join(suiteDir, 'tests/index.mjs')).href)).default as Suite[];
  const lib = await import(pathToFileURL(join(suiteDir, 'test-engine/lib/results.mjs')).href);
  const types = lib.resultTypes as Record<string, Verdict>;
  const verdict = (id: string, results: Results): string => {
    const v = lib.determineTestResult(suites, id, results) as Verdict;
    return Object.keys(types).find((k) => types[k] === v) ?? 'unknown';
  };
  const counts = { nginx: {} as Record<string, number>, edge: {} as Record<string, number> };
  const differ: string[] = [];
  const regressions: string[] = [];
  const gains: string[] = [];
  for (const suite of suites) {
    for (const test of suite.tests) {
      if (!(test.id in plain) && !(test.id in edge)) continue;
      const a = verdict(test.id, plain);
      const b = verdict(test.id, edge);
      counts.nginx[a] = (counts.nginx[a] ?? 0) + 1;
      counts.edge[b] = (counts.edge[b] ?? 0) + 1;
      if (a === b) continue;
      const kind = test.kind ?? 'required';
      differ.push(`${test.id.padEnd(48)} ${kind.padEnd(9)} ${a.padEnd(16)} ${b}`);
      if (kind === 'required' && a === 'pass' && b !== 'pass') regressions.push(test.id);
      if (a !== 'pass' && a !== 'yes' && (b === 'pass' || b === 'yes')) gains.push(test.id);
    }
  }
  const summary = (c: Record<string, number>) =>
    Object.entries(c)
      .sort()
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  console.log(`nginx: ${summary(counts.nginx)}`);
  console.log(`edge:  ${summary(counts.edge)}`);
  console.log(`\n${'test'.padEnd(48)} ${'kind'.padEnd(9)} ${'nginx'.padEnd(16)} edge`);
  for (const line of differ) console.log(line);
  console.log(`\nedge passes, nginx does not (${gains.length}): ${gains.join(' ') || '-'}`);
  console.log(`required, nginx passes, edge fails (${regressions.length}): ${regressions.join(' ') || '-'}`);
  return regressions.length;
}

await main();
