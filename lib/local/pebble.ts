import { readFile, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { writeSelfSignedCertificate } from '../edge/self-signed.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';

export interface PebbleOptions {
  /** Scratch directory: config, the WFE's TLS certificate and the logs go here. */
  readonly dir: string;
  /** Port Pebble's VA connects to for HTTP-01: the edge's HTTP port, so validation hits the edge. */
  readonly httpPort: number;
  /** Port for TLS-ALPN-01 validation; unused by the issuer, any port nothing answers on. */
  readonly tlsPort?: number;
  /** External account binding: key id → base64url HMAC key. Makes EAB required when set. */
  readonly eabKeys?: Readonly<Record<string, string>>;
  /** Certificate lifetime in seconds (Pebble's default is about five years). */
  readonly certificateValiditySeconds?: number;
  /** More names for Pebble's own HTTPS certificate (e.g. `DNS:host.containers.internal` for a pod). */
  readonly wfeAltNames?: readonly string[];
  /**
   * The address challtestsrv answers every name with, so HTTP-01 validation connects there.
   * Default 127.0.0.1; local regions pass the first region's loopback address.
   */
  readonly answerAddress?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export interface LocalPebble {
  readonly pebble: ManagedProcess;
  readonly challtestsrv: ManagedProcess;
  readonly directoryUrl: string;
  /** Pebble's management interface: /roots/0, /intermediates/0. */
  readonly managementUrl: string;
  /** pebble-challtestsrv's management API: /set-txt, /clear-txt, /add-a. */
  readonly challtestsrvUrl: string;
  /** challtestsrv's DNS server (host:port), Pebble's resolver. */
  readonly dnsServer: string;
  /** PEM that Pebble's own HTTPS (directory and management) is served with; trust it as a CA. */
  readonly wfeCaPem: string;
  readonly logFile: string;
  /** The root Pebble issues under (it changes on every start). */
  root(): Promise<string>;
  /**
   * Kills Pebble (-9) and starts it again with the same command line, as a container restart
   * would: it forgets every account, order and root. Resolves with the new process.
   */
  restart(): Promise<ManagedProcess>;
  stop(): Promise<void>;
}

/** GET over HTTPS trusting only the given CA; resolves the body. */
export function httpsGetText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: new Agent({ ca }), timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 0) >= 400) reject(new Error(`GET ${url}: ${res.statusCode} ${body}`));
        else resolve(body);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

async function writeWfeCertificate(
  dir: string,
  extraNames: readonly string[] = [],
): Promise<{ cert: string; key: string }> {
  const cert = join(dir, 'pebble-wfe.crt');
  const key = join(dir, 'pebble-wfe.key');
  await writeSelfSignedCertificate({
    certPath: cert,
    keyPath: key,
    commonName: 'pebble local',
    altNames: ['IP:127.0.0.1', 'DNS:localhost', ...extraNames],
  });
  return { cert, key };
}

/**
 * Pebble (the ACME test server) with pebble-challtestsrv as its DNS on free loopback ports.
 * challtestsrv answers every name with 127.0.0.1, so HTTP-01 validation of a tenant name reaches
 * the edge's HTTP port on loopback; DNS-01 TXT records are set through its management API.
 * Validation sleep is off; nonce rejection stays on (clients must retry badNonce).
 */
export async function startPebble(opts: PebbleOptions): Promise<LocalPebble> {
  const [dnsPort, ctsMgmtPort, acmePort, mgmtPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const challtestsrv = await ManagedProcess.start({
    name: `pebble-challtestsrv:${ctsMgmtPort}`,
    command: 'pebble-challtestsrv',
    args: [
      '-defaultIPv4',
      opts.answerAddress ?? '127.0.0.1',
      '-defaultIPv6',
      '',
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-management',
      `127.0.0.1:${ctsMgmtPort}`,
    ],
    logFile: join(opts.dir, `challtestsrv-${ctsMgmtPort}.log`),
    ready: async () => {
      const res = await fetch(`http://127.0.0.1:${ctsMgmtPort}/clear-txt`, {
        method: 'POST',
        body: JSON.stringify({ host: 'ready.invalid.' }),
      });
      return res.ok;
    },
  });

  try {
    const tls = await writeWfeCertificate(opts.dir, opts.wfeAltNames);
    const wfeCaPem = await readFile(tls.cert, 'utf8');
    const configPath = join(opts.dir, `pebble-${acmePort}.json`);
    await writeFile(
      configPath,
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${acmePort}`,
          managementListenAddress: `127.0.0.1:${mgmtPort}`,
          certificate: tls.cert,
          privateKey: tls.key,
          httpPort: opts.httpPort,
          tlsPort: opts.tlsPort ?? (await freePort()),
          ocspResponderURL: '',
          externalAccountBindingRequired: opts.eabKeys !== undefined,
          externalAccountMACKeys: opts.eabKeys ?? {},
          ...(opts.certificateValiditySeconds
            ? { certificateValidityPeriod: opts.certificateValiditySeconds }
            : {}),
        },
      }),
    );
    const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    const managementUrl = `https://127.0.0.1:${mgmtPort}`;
    const logFile = join(opts.dir, `pebble-${acmePort}.log`);
    const pebble = await ManagedProcess.start({
      name: `pebble:${acmePort}`,
      command: 'pebble',
      args: ['-config', configPath, '-dnsserver', `127.0.0.1:${dnsPort}`],
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', ...opts.env },
      logFile,
      ready: async () => (await httpsGetText(directoryUrl, wfeCaPem)).includes('newOrder'),
    });
    let current = pebble;
    return {
      get pebble() {
        return current;
      },
      challtestsrv,
      directoryUrl,
      managementUrl,
      challtestsrvUrl: `http://127.0.0.1:${ctsMgmtPort}`,
      dnsServer: `127.0.0.1:${dnsPort}`,
      wfeCaPem,
      logFile,
      root: () => httpsGetText(`${managementUrl}/roots/0`, wfeCaPem),
      restart: async () => {
        await current.kill();
        current = await ManagedProcess.start(current.spec);
        return current;
      },
      stop: async () => {
        await current.stop();
        await challtestsrv.stop();
      },
    };
  } catch (err) {
    await challtestsrv.stop();
    throw err;
  }
}
