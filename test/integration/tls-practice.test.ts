import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { handshake, httpsGet } from '../harness/clients.ts';
import { type EdgeStack, errorLogProblems, PLATFORM, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

const bed = new TestBed('tls-practice');
let stack: EdgeStack;

beforeAll(async () => {
  stack = await startEdgeStack(bed);
  await stack.putCert(`*.${PLATFORM}`, await makeCertRecord([`*.${PLATFORM}`, PLATFORM]));
  const origin = `http://127.0.0.1:${stack.origin.port}`;
  await stack.redis.set(
    stack.keys.tenant('plain'),
    JSON.stringify({ id: 'plain', origin: { type: 'http', url: origin } }),
  );
  await stack.redis.set(
    stack.keys.tenant('strict'),
    JSON.stringify({
      id: 'strict',
      origin: { type: 'http', url: origin },
      hsts: { maxAgeSeconds: 63072000, includeSubDomains: true, preload: true },
    }),
  );
  await stack.redis.set(
    stack.keys.tenant('short'),
    JSON.stringify({
      id: 'short',
      origin: { type: 'http', url: origin },
      hsts: { maxAgeSeconds: 300, preload: true },
    }),
  );
  // An origin that sends its own HSTS: the tenant's setting decides, not the origin.
  stack.origin.set('/p.html', {
    body: 'p\n',
    headers: { 'strict-transport-security': 'max-age=99; includeSubDomains', 'cache-control': 'max-age=60' },
  });
});

async function groupAccepted(group: string): Promise<boolean> {
  try {
    const h = await handshake(stack.https, `plain.${PLATFORM}`, { ecdhCurve: group });
    h.socket.destroy();
    return true;
  } catch {
    return false;
  }
}

describe('TLS by current practice', () => {
  it.each(['ffdhe2048', 'ffdhe3072', 'X448', 'secp521r1'])('does not offer the %s group', async (group) => {
    expect(await groupAccepted(group)).toBe(false);
  });

  it.each(['X25519', 'prime256v1', 'secp384r1'])('accepts the %s group', async (group) => {
    expect(await groupAccepted(group)).toBe(true);
  });

  it('offers the hybrid post-quantum group exactly when its OpenSSL has it', async () => {
    const conf = readFileSync(stack.edge.confPath, 'utf8');
    if (stack.edge.config.tls.postQuantum) {
      expect(conf).toContain('ssl_ecdh_curve X25519MLKEM768:X25519:prime256v1:secp384r1;');
      expect(await groupAccepted('X25519MLKEM768')).toBe(true);
    } else {
      expect(conf).toContain('ssl_ecdh_curve X25519:prime256v1:secp384r1;');
    }
  });

  it("refuses TLS 1.1 and issues session tickets under the current epoch's region key", async () => {
    await expect(
      handshake(stack.https, `plain.${PLATFORM}`, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }),
    ).rejects.toThrow();
    const h = await handshake(stack.https, `plain.${PLATFORM}`, { maxVersion: 'TLSv1.2' });
    // A ticket starts with the name of the key that encrypted it: the first 16 bytes of current.key.
    const current = readFileSync(join(stack.edge.config.paths.runDir, 'tickets/current.key'));
    expect(h.socket.getTLSTicket()?.subarray(0, 16)).toEqual(current.subarray(0, 16));
    h.socket.destroy();
  });
});

describe('HSTS per tenant', () => {
  const sts = async (host: string, path = '/p.html') =>
    (await httpsGet({ port: stack.https, host, path })).headers['strict-transport-security'];

  it('sends none by default, whatever the origin sends', async () => {
    expect(await sts(`plain.${PLATFORM}`)).toBeUndefined();
    expect(await sts(`plain.${PLATFORM}`)).toBeUndefined();
  });

  it('sends the tenant setting, on cached and uncached answers alike', async () => {
    expect(await sts(`strict.${PLATFORM}`)).toBe('max-age=63072000; includeSubDomains; preload');
    expect(await sts(`strict.${PLATFORM}`)).toBe('max-age=63072000; includeSubDomains; preload');
    expect(await sts(`strict.${PLATFORM}`, '/missing')).toBe('max-age=63072000; includeSubDomains; preload');
  });

  it('drops preload without includeSubDomains and a year', async () => {
    expect(await sts(`short.${PLATFORM}`)).toBe('max-age=300');
  });

  it('never sends a tenant HSTS on the shared platform host of the directory form', async () => {
    expect(await sts(PLATFORM, '/strict/p.html')).toBeUndefined();
  });

  it('logged no errors', () => {
    expect(errorLogProblems(stack)).toEqual([]);
  });
});
