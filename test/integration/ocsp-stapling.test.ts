import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../lib/local/ports.ts';
import { ManagedProcess } from '../../lib/local/process.ts';
import { type EdgeStack, errorLogProblems, metric, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

const run = promisify(execFile);
const bed = new TestBed('ocsp');
let stack: EdgeStack;
let responderLog: string;

/** A self-signed CA `<name>.pem`/`<name>.key` in the bed's directory. */
async function makeCa(name = 'ca'): Promise<void> {
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    join(bed.dir, `${name}.key`),
    '-out',
    join(bed.dir, `${name}.pem`),
    '-days',
    '2',
    '-subj',
    `/CN=Edge test ${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  ]);
}

/** A leaf for `name` signed by the CA, with `aia` as its authorityInfoAccess extension when given. */
async function makeLeaf(name: string, serial: string, aia?: string, extra: string[] = []) {
  const base = join(bed.dir, name);
  await run('openssl', [
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${base}.key`,
    '-out',
    `${base}.csr`,
    '-subj',
    `/CN=${name}`,
  ]);
  const ext = [`subjectAltName=DNS:${name}`, ...(aia ? [`authorityInfoAccess=${aia}`] : []), ...extra];
  writeFileSync(`${base}.ext`, `${ext.join('\n')}\n`);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    `${base}.csr`,
    '-CA',
    join(bed.dir, 'ca.pem'),
    '-CAkey',
    join(bed.dir, 'ca.key'),
    '-set_serial',
    `0x${serial}`,
    '-days',
    '1',
    '-extfile',
    `${base}.ext`,
    '-out',
    `${base}.pem`,
  ]);
  const cert = readFileSync(`${base}.pem`, 'utf8');
  return {
    record: {
      // As an issuer stores it: the leaf, then its issuer.
      fullchain_pem: cert + readFileSync(join(bed.dir, 'ca.pem'), 'utf8'),
      cert_pem: cert,
      privkey_pem: readFileSync(`${base}.key`, 'utf8'),
      expiry: Math.floor(Date.now() / 1000) + 86400,
    },
    certPath: `${base}.pem`,
  };
}

/** One handshake asking for a stapled OCSP response: the certificate's SAN and the staple, if any. */
function handshake(servername: string): Promise<{ san: string | undefined; staple: Buffer | null }> {
  return new Promise((resolve, reject) => {
    let staple: Buffer | null = null;
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: stack.https,
      servername,
      requestOCSP: true,
      rejectUnauthorized: false,
    });
    socket.on('OCSPResponse', (response: Buffer) => {
      staple = response;
    });
    socket.once('secureConnect', () => {
      const san = socket.getPeerCertificate().subjectaltname;
      socket.end();
      resolve({ san, staple });
    });
    socket.once('error', reject);
  });
}

/** What `openssl ocsp` makes of a stapled response for the certificate: e.g. "x.pem: good". */
async function checkResponse(staple: Buffer, certPath: string): Promise<string> {
  const file = join(bed.dir, 'staple.der');
  writeFileSync(file, staple);
  const ca = join(bed.dir, 'ca.pem');
  const { stdout } = await run('openssl', [
    'ocsp',
    '-respin',
    file,
    '-issuer',
    ca,
    '-cert',
    certPath,
    '-CAfile',
    ca,
  ]);
  return stdout;
}

/**
 * Handshakes with `name` until the edge logs why its OCSP fetch failed (the fetch runs in a timer
 * after the first handshake); every handshake meanwhile gets its certificate and no staple.
 */
async function fetchFailureLine(name: string): Promise<string | undefined> {
  for (let i = 0; i < 50; i++) {
    const res = await handshake(name);
    expect(res.san).toBe(`DNS:${name}`);
    expect(res.staple).toBeNull();
    const line = readFileSync(stack.edge.errorLog, 'utf8')
      .split('\n')
      .find((l) => l.includes('"event":"ocsp_fetch_failed"') && l.includes(name));
    if (line) return line;
    await sleep(100);
  }
  return undefined;
}

function responderRequests(log = responderLog): number {
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.includes('Received request')).length;
}

/** `openssl ocsp` answering from the bed's index, signing with `<signer>.pem`/`<signer>.key`. */
async function startResponder(port: number, signer: string, logFile: string): Promise<void> {
  const signerCert = join(bed.dir, `${signer}.pem`);
  bed.track(
    await ManagedProcess.start({
      name: `openssl ocsp (${signer})`,
      command: 'openssl',
      args: [
        'ocsp',
        '-index',
        join(bed.dir, 'index.txt'),
        '-port',
        String(port),
        '-rsigner',
        signerCert,
      ].concat(['-rkey', join(bed.dir, `${signer}.key`), '-CA', join(bed.dir, 'ca.pem'), '-ndays', '1']),
      logFile,
      // Not a connection probe: openssl ocsp waits forever on a connection that sent nothing.
      ready: async () => readFileSync(logFile, 'utf8').includes('waiting for OCSP client connections'),
    }),
  );
}

const STAPLED = 'stapled.ocsp.test';
const PLAIN = 'plain.ocsp.test';
const DOWN = 'down.ocsp.test';
const FORGED = 'forged.ocsp.test';
const DELEGATED = 'delegated.ocsp.test';
let delegatedCert: string;
let forgedLog: string;
let stapledCert: string;

beforeAll(async () => {
  stack = await startEdgeStack(bed, { tls: { ocsp: { fetchTimeoutMs: 1000, failureTtlSeconds: 60 } } });
  await makeCa();
  const responderPort = await freePort();
  const deadPort = await freePort();
  const stapled = await makeLeaf(STAPLED, '1001', `OCSP;URI:http://127.0.0.1:${responderPort}/`);
  // Like Let's Encrypt's since 2025: an AIA with the issuer's URL only.
  const plain = await makeLeaf(PLAIN, '1002', `caIssuers;URI:http://127.0.0.1:${responderPort}/ca.der`);
  const down = await makeLeaf(DOWN, '1003', `OCSP;URI:http://127.0.0.1:${deadPort}/ocsp`);
  stapledCert = stapled.certPath;
  // The responder's database (openssl ca's index format): every leaf valid.
  const expiry = new Date(Date.now() + 86400_000).toISOString().replace(/[-:T]/g, '').slice(2, 14);
  writeFileSync(
    join(bed.dir, 'index.txt'),
    ['1001', '1002', '1003', '1004', '1005']
      .map((s) => `V\t${expiry}Z\t\t${s}\tunknown\t/CN=leaf-${s}\n`)
      .join(''),
  );
  responderLog = join(bed.dir, 'ocsp-responder.log');
  await startResponder(responderPort, 'ca', responderLog);
  // A responder whose answers are signed by a key the certificate's issuer never delegated to.
  await makeCa('impostor');
  const impostorPort = await freePort();
  forgedLog = join(bed.dir, 'ocsp-impostor.log');
  await startResponder(impostorPort, 'impostor', forgedLog);
  const forged = await makeLeaf(FORGED, '1004', `OCSP;URI:http://127.0.0.1:${impostorPort}/`);
  await stack.putCert(FORGED, forged.record);
  // A responder the CA delegated to (RFC 6960 §4.2.2.2), as many CAs run them.
  await makeLeaf('responder', '2001', undefined, ['extendedKeyUsage=OCSPSigning']);
  const delegatedPort = await freePort();
  await startResponder(delegatedPort, 'responder', join(bed.dir, 'ocsp-delegated.log'));
  const delegated = await makeLeaf(DELEGATED, '1005', `OCSP;URI:http://127.0.0.1:${delegatedPort}/`);
  delegatedCert = delegated.certPath;
  await stack.putCert(DELEGATED, delegated.record);
  await stack.putCert(STAPLED, stapled.record);
  await stack.putCert(PLAIN, plain.record);
  await stack.putCert(DOWN, down.record);
});

describe('OCSP stapling', () => {
  it('staples a valid response for a certificate whose chain names a responder, fetched in the background', async () => {
    let staple: Buffer | null = null;
    for (let i = 0; i < 100 && !staple; i++) {
      const res = await handshake(STAPLED);
      expect(res.san).toBe(`DNS:${STAPLED}`);
      staple = res.staple;
      if (!staple) await sleep(100);
    }
    expect(staple).not.toBeNull();
    expect(await checkResponse(staple as Buffer, stapledCert)).toContain(`${stapledCert}: good`);
    // Cached: more handshakes staple without asking the responder again.
    // One fetch for all those handshakes, in both workers (the lock).
    // openssl ocsp writes its log line after it has answered: it may land just after the staple.
    for (let i = 0; i < 20 && responderRequests() === 0; i++) await sleep(100);
    const asked = responderRequests();
    expect(asked).toBe(1);
    for (let i = 0; i < 5; i++) expect((await handshake(STAPLED)).staple).not.toBeNull();
    expect(responderRequests()).toBe(asked);
  });

  it('staples a response signed by a responder the issuer delegated to', async () => {
    let staple: Buffer | null = null;
    for (let i = 0; i < 100 && !staple; i++) {
      staple = (await handshake(DELEGATED)).staple;
      if (!staple) await sleep(100);
    }
    expect(staple).not.toBeNull();
    expect(await checkResponse(staple as Buffer, delegatedCert)).toContain(`${delegatedCert}: good`);
  });

  it('fetches nothing and staples nothing for a certificate without an OCSP URL', async () => {
    const asked = responderRequests();
    for (let i = 0; i < 5; i++) {
      const res = await handshake(PLAIN);
      expect(res.san).toBe(`DNS:${PLAIN}`);
      expect(res.staple).toBeNull();
    }
    // Long enough for a background fetch to have reached the responder, had one started.
    await sleep(1000);
    expect(responderRequests()).toBe(asked);
    expect(readFileSync(stack.edge.errorLog, 'utf8')).not.toContain(PLAIN);
  });

  it('staples nothing its issuer did not sign for, and logs why', async () => {
    const line = await fetchFailureLine(FORGED);
    // openssl ocsp writes its log line after it has answered: it may land just after the edge's.
    for (let i = 0; i < 20 && responderRequests(forgedLog) === 0; i++) await sleep(100);
    expect(responderRequests(forgedLog)).toBe(1);
    expect(line).toMatch(/invalid response/);
    expect((await handshake(FORGED)).staple).toBeNull();
  });

  it('keeps handshaking without a staple while the responder is down, and logs why', async () => {
    const failures = await metric(stack, 'edge_errors_total{kind="ocsp"}');
    const line = await fetchFailureLine(DOWN);
    expect(line).toMatch(/failed to connect: connection refused/);
    expect(line).not.toMatch(/PRIVATE KEY/);
    // The failure is remembered: more handshakes start no fetch and log nothing more.
    for (let i = 0; i < 5; i++) expect((await handshake(DOWN)).staple).toBeNull();
    await sleep(300);
    const lines = readFileSync(stack.edge.errorLog, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"event":"ocsp_fetch_failed"') && l.includes(DOWN));
    expect(lines).toHaveLength(1);
    await sleep(300); // metrics are flushed on a timer
    expect(await metric(stack, 'edge_errors_total{kind="ocsp"}')).toBe(failures + 1);
    expect(errorLogProblems(stack)).toEqual([]);
  });
});
