import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Mustache from 'mustache';
import { detectNginxRuntime } from '../../lib/edge/nginx-runtime.ts';
import { type LocalEdge, startEdge } from '../../lib/local/edge-server.ts';
import { freePort } from '../../lib/local/ports.ts';
import { ManagedProcess } from '../../lib/local/process.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';

export const BASELINE_TEMPLATE = fileURLToPath(new URL('../baseline-nginx.conf.mustache', import.meta.url));

/** The directives the baseline takes over from the edge's rendered nginx.conf. */
const SHARED_DIRECTIVES = [
  'ssl_protocols',
  'ssl_ciphers',
  'ssl_prefer_server_ciphers',
  'ssl_session_cache',
  'ssl_session_timeout',
  'ssl_session_tickets',
  // The same key-exchange groups: OpenSSL 3.5's default list puts X25519MLKEM768 first.
  'ssl_ecdh_curve',
  'keepalive_timeout',
  'client_header_timeout',
  'large_client_header_buffers',
  'sendfile',
  'tcp_nopush',
  // Compression as the edge has it (the text figure): plain nginx gzips on every answer.
  'gzip',
  'gzip_comp_level',
  'gzip_min_length',
  'gzip_types',
  'gzip_vary',
];

function tcpReady(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The bytes every figure serves: 1 KB, the same on disk (baseline) and at the origin (edge). */
export const BODY = randomBytes(1024);
export const BODY_PATH = '/1k.bin';

/** The text fixture: 1 KB of HTML, which both servers compress for a client that takes gzip. */
const PARAGRAPH = '<p>The edge serves this page from its cache.</p>\n';
export const TEXT = Buffer.from(
  `<!doctype html><html><head><title>bench</title></head><body>\n${PARAGRAPH.repeat(19)}</body></html>\n`,
);
export const TEXT_PATH = '/1k.html';

/** The tenant's origin: a 1 KB response the edge may cache for an hour. */
export async function startOrigin(): Promise<{ server: Server; port: number; hits: () => number }> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits += 1;
    if (req.url === BODY_PATH) {
      res.writeHead(200, {
        'Content-Type': 'application/octet-stream',
        'Content-Length': BODY.length,
        'Cache-Control': 'public, max-age=3600',
      });
      res.end(BODY);
    } else if (req.url === TEXT_PATH) {
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Length': TEXT.length,
        'Cache-Control': 'public, max-age=3600',
      });
      res.end(TEXT);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
    }
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, port, hits: () => hits };
}

export async function startRedis(dir: string): Promise<{ proc: ManagedProcess; port: number }> {
  const port = await freePort();
  const proc = await startRedisServer({ port, dir });
  return { proc, port };
}

export interface BenchEdgeOptions {
  readonly dir: string;
  readonly platformDomain: string;
  readonly redisPort: number;
  readonly redisPrefix: string;
  readonly workers: number;
  readonly lruSize: number;
  /** tls.pushCertificates (settings.push). */
  readonly push: boolean;
}

/** The project's edge, with the parameters a production task would run with (access log on). */
export async function startBenchEdge(opts: BenchEdgeOptions): Promise<LocalEdge> {
  const [httpPort, httpsPort, controlPort] = [await freePort(), await freePort(), await freePort()];
  return startEdge({
    dir: opts.dir,
    controlToken: randomBytes(24).toString('hex'),
    config: {
      region: 'bench',
      platformDomain: opts.platformDomain,
      listen: { address: '127.0.0.1', httpPort, httpsPort, controlPort },
      redis: { port: opts.redisPort, prefix: opts.redisPrefix },
      nginx: { workerProcesses: opts.workers },
      // Room for every certificate a run fetches, so shared-dict evictions do not blur the cold figure.
      sharedDicts: { certs: '512m' },
      tls: { lruSize: opts.lruSize, shmTtlSeconds: 3600, missTtlSeconds: 10, pushCertificates: opts.push },
      // All load comes from one address here: the per-address limits would answer 429.
      limits: { connectionsPerIp: 0, requestsPerSecondPerIp: 0 },
    },
  });
}

export interface Baseline {
  readonly proc: ManagedProcess;
  readonly port: number;
  readonly confPath: string;
}

/** Plain nginx serving BODY from disk with one static certificate, with the edge's TLS settings. */
export async function startBaseline(opts: {
  readonly dir: string;
  readonly workers: number;
  readonly cert: string;
  readonly key: string;
  readonly edgeConfPath: string;
  readonly edgeHttpsPort: number;
  /** Take over the edge's ssl_session_ticket_key files as well (settings.baselineTicketKeys). */
  readonly ticketKeys?: boolean;
}): Promise<Baseline> {
  const edgeConf = await readFile(opts.edgeConfPath, 'utf8');
  const shared: string[] = [];
  for (const directive of SHARED_DIRECTIVES) {
    const line = edgeConf.match(new RegExp(`^\\s*(${directive}\\s[^;]*;)`, 'm'));
    if (!line?.[1]) throw new Error(`the edge's nginx.conf has no ${directive} directive to copy`);
    shared.push(line[1]);
  }
  if (opts.ticketKeys) {
    const keys = [...edgeConf.matchAll(/^\s*(ssl_session_ticket_key\s[^;]*;)/gm)].map((m) => m[1] as string);
    if (keys.length === 0) throw new Error("the edge's nginx.conf has no ssl_session_ticket_key to copy");
    shared.push(...keys);
  }
  const listen = edgeConf.match(new RegExp(`listen\\s+[\\d.]+:${opts.edgeHttpsPort}\\s+([^;]*);`));
  if (!listen?.[1]) throw new Error("could not find the edge's HTTPS listen directive");
  const listenFlags = listen[1].replace(/\s*proxy_protocol\b/, '');

  const docroot = join(opts.dir, 'www');
  await mkdir(join(opts.dir, 'tmp'), { recursive: true });
  await mkdir(docroot, { recursive: true });
  await writeFile(join(docroot, BODY_PATH.slice(1)), BODY);
  await writeFile(join(docroot, TEXT_PATH.slice(1)), TEXT);
  const port = await freePort();
  const template = await readFile(BASELINE_TEMPLATE, 'utf8');
  const conf = Mustache.render(template, {
    workers: opts.workers,
    dir: opts.dir,
    shared,
    address: '127.0.0.1',
    port,
    listenFlags,
    cert: opts.cert,
    key: opts.key,
    docroot,
  });
  const confPath = join(opts.dir, 'nginx.conf');
  await writeFile(confPath, conf);
  const runtime = detectNginxRuntime();
  const proc = await ManagedProcess.start({
    name: 'nginx:baseline',
    command: runtime.binary,
    args: ['-p', opts.dir, '-c', confPath],
    logFile: join(opts.dir, 'nginx.stdout.log'),
    stopSignal: 'SIGQUIT',
    ready: () => tcpReady(port),
  });
  return { proc, port, confPath };
}

/** The edge's Prometheus counters as a map from series to value. */
export async function scrapeMetrics(controlPort: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${controlPort}/metrics`);
  const text = await res.text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

export function metricDelta(
  before: Map<string, number>,
  after: Map<string, number>,
  prefix: string,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) {
    if (!k.startsWith(prefix)) continue;
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out[k.slice(prefix.length)] = d;
  }
  return out;
}
