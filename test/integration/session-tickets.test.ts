import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type SecureVersion } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import type { EdgeConfigInput } from '../../lib/config/edge-config.ts';
import {
  deriveTicketKey,
  localTicketSecret,
  ticketEpoch,
  ticketKeyName,
} from '../../lib/edge/ticket-keys.ts';
import { type LocalEdge, startEdge } from '../../lib/local/edge-server.ts';
import { freePort } from '../../lib/local/ports.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';
import { TestBed } from '../harness/testbed.ts';

/**
 * Several edges (real nginx, separate run directories) standing for the tasks of one region:
 * a ticket one of them issued resumes on another that derived its keys from the same region
 * secret, and on none with another secret; across an epoch boundary (short epochs here) the
 * previous epoch's tickets still resume while the new epoch's key encrypts.
 *
 * A worker takes the region's session ID context on its first full handshake (the certificate
 * phase, edge/ticket_keys.lua); until then it resumes no region ticket. The edges run one worker
 * each, so that "a full handshake on B first" is a full handshake on the worker that then sees
 * the ticket.
 */
const bed = new TestBed('session-tickets');
// Started as root, the edges run as nobody, master included (as in the task): the worker that
// rotates the keys may then signal its master. Nobody must be able to enter the bed.
chmodSync(bed.dir, 0o755);
const asTask = process.getuid?.() === 0 ? { user: { uid: 65534, gid: 65534 } } : {};
const SNI = 'returning.example';
const SHORT_EPOCH_S = 8;

let redisPort: number;
const regionSecret = join(bed.dir, 'region-secret');
const otherSecret = join(bed.dir, 'other-secret');

async function edge(name: string, secretFile: string, tls: EdgeConfigInput['tls'] = {}): Promise<LocalEdge> {
  const dir = join(bed.dir, name);
  mkdirSync(dir);
  const [http, https, control] = [await freePort(), await freePort(), await freePort()];
  const e = await startEdge({
    dir,
    controlToken: 't'.repeat(32),
    ticketSecretFile: secretFile,
    ...asTask,
    config: {
      platformDomain: 'platform.test',
      listen: { address: '127.0.0.1', httpPort: http, httpsPort: https, controlPort: control },
      redis: { port: redisPort },
      nginx: { workerProcesses: 1, errorLogLevel: 'info' },
      tls,
    },
  });
  bed.track(e.process);
  edges.push(e);
  return e;
}

interface Visit {
  reused: boolean;
  /** The session the edge gave (its latest ticket), to come back with. */
  session: Buffer;
  /** The key name the ticket starts with: which key encrypted it. */
  keyName: string;
}

/** One visit: a handshake (offering `session` if given), then the ticket the edge sent. */
function visit(e: LocalEdge, version: SecureVersion, session?: Buffer): Promise<Visit> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port: e.config.listen.httpsPort,
      servername: SNI,
      rejectUnauthorized: false,
      minVersion: version,
      maxVersion: version,
      ...(session ? { session } : {}),
    });
    const timer = setTimeout(
      () => socket.destroy(new Error(`no session ticket from ${e.config.region}`)),
      5000,
    );
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const done = (fresh: Buffer | undefined) => {
      clearTimeout(timer);
      const ticket = socket.getTLSTicket();
      const result = {
        reused: socket.isSessionReused(),
        session: fresh ?? (socket.getSession() as Buffer),
        keyName: ticket ? ticket.subarray(0, 16).toString('hex') : '(no ticket)',
      };
      socket.destroy();
      resolve(result);
    };
    if (version === 'TLSv1.3') {
      // TLS 1.3 tickets arrive after the handshake, with the first read.
      socket.once('session', done);
      socket.resume();
    } else {
      // TLS 1.2: the ticket is part of the handshake (none new when a current one resumed).
      socket.once('secureConnect', () => done(undefined));
    }
  });
}

/**
 * A returning visit to `e` with a ticket another edge issued: a full handshake on `e` first, so
 * that its worker has the region's context even if it was just reloaded (an epoch boundary).
 */
async function returnTo(e: LocalEdge, version: SecureVersion, session: Buffer): Promise<Visit> {
  expect((await visit(e, version)).reused).toBe(false);
  return visit(e, version, session);
}

function keyNameOf(secret: string, e: LocalEdge, epoch: number): string {
  return ticketKeyName(deriveTicketKey(secret, e.config.region, epoch)).toString('hex');
}

function problems(e: LocalEdge): string[] {
  return readFileSync(e.errorLog, 'utf8')
    .split('\n')
    .filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
}

let a: LocalEdge;
let b: LocalEdge;
let stranger: LocalEdge;
/** Every edge started, for the final check of their logs. */
const edges: LocalEdge[] = [];
let secret: string;

beforeAll(async () => {
  redisPort = await freePort();
  bed.track(await startRedisServer({ port: redisPort, dir: bed.dir }));
  secret = await localTicketSecret(regionSecret);
  a = await edge('a', regionSecret);
  b = await edge('b', regionSecret);
  stranger = await edge('stranger', otherSecret);
}, 60_000);

describe.each(['TLSv1.3', 'TLSv1.2'] as const)('session tickets across tasks of a region, %s', (version) => {
  it('a ticket from one task resumes on another task of the region', async () => {
    const first = await visit(a, version);
    expect(first.reused).toBe(false);
    const epoch = ticketEpoch(Date.now(), a.config.tls.sessionTickets.epochSeconds);
    // Encrypted with the current epoch's key (a boundary may pass in between: then the next's).
    expect([keyNameOf(secret, a, epoch), keyNameOf(secret, a, epoch + 1)]).toContain(first.keyName);
    const back = await returnTo(b, version, first.session);
    expect(back.reused).toBe(true);
    // And back again with the ticket the second task gave.
    expect((await returnTo(a, version, back.session)).reused).toBe(true);
  });

  it('a ticket from another secret does not resume: a full handshake, no error', async () => {
    const first = await visit(stranger, version);
    const back = await visit(a, version, first.session);
    expect(back.reused).toBe(false);
    expect((await returnTo(b, version, back.session)).reused).toBe(true);
  });

  it("a worker's first handshake is a full one even with a region ticket; then it resumes them", async () => {
    const fresh = await edge(`fresh-${version}`, regionSecret);
    // Its first connection ever: the worker still has nginx's own context.
    const first = await visit(fresh, version, (await visit(a, version)).session);
    expect(first.reused).toBe(false);
    // That full handshake gave the worker the region's context, and its own ticket too.
    expect((await visit(fresh, version, (await visit(a, version)).session)).reused).toBe(true);
    expect((await returnTo(a, version, first.session)).reused).toBe(true);
  }, 30_000);
});

/** TLS 1.3 tickets the edge sends after one full handshake (read until it closes the connection). */
function ticketsAfterFullHandshake(e: LocalEdge): Promise<number> {
  return new Promise((resolve, reject) => {
    let tickets = 0;
    const socket = connect({
      host: '127.0.0.1',
      port: e.config.listen.httpsPort,
      servername: SNI,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    const timer = setTimeout(() => socket.destroy(new Error('the edge did not close the connection')), 5000);
    socket.on('session', () => {
      tickets += 1;
    });
    socket.once('secureConnect', () => {
      socket.write(`GET / HTTP/1.1\r\nHost: ${SNI}\r\nConnection: close\r\n\r\n`);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(tickets);
    });
    socket.resume();
  });
}

describe('tickets per full handshake (TLS 1.3)', () => {
  it('one by default: each ticket costs an encryption in the ticket-key callback', async () => {
    expect(await ticketsAfterFullHandshake(a)).toBe(1);
  });

  it('as many as tls.sessionTickets.perHandshake says', async () => {
    const two = await edge('two-tickets', regionSecret, { sessionTickets: { perHandshake: 2 } });
    // The worker's first full handshake sets it on the SSL_CTX; later connections copy it.
    expect(await ticketsAfterFullHandshake(two)).toBe(2);
    expect(await ticketsAfterFullHandshake(two)).toBe(2);
  }, 30_000);
});

describe('key rotation at an epoch boundary', () => {
  let r1: LocalEdge;
  let r2: LocalEdge;
  const short = { sessionTimeoutSeconds: SHORT_EPOCH_S, sessionTickets: { epochSeconds: SHORT_EPOCH_S } };

  beforeAll(async () => {
    r1 = await edge('r1', regionSecret, short);
    r2 = await edge('r2', regionSecret, short);
  }, 60_000);

  /** Waits until the edge's new workers encrypt with `epoch`'s key (its reload is done). */
  async function encryptsWith(e: LocalEdge, epoch: number, version: SecureVersion): Promise<Visit> {
    const want = keyNameOf(secret, e, epoch);
    const deadline = Date.now() + 3 * SHORT_EPOCH_S * 1000;
    for (;;) {
      const v = await visit(e, version);
      if (v.keyName === want || Date.now() > deadline) return v;
      await sleep(100);
    }
  }

  it.each(['TLSv1.3', 'TLSv1.2'] as const)(
    '%s: a ticket of the previous epoch still resumes, and the new key encrypts',
    async (version) => {
      // A ticket from late in an epoch, so that it is still young after the boundary.
      const ms = SHORT_EPOCH_S * 1000;
      const untilLate = ms - (Date.now() % ms) - 2500;
      await sleep(untilLate > 0 ? untilLate : untilLate + ms);
      const old = await visit(r1, version);
      const epoch = ticketEpoch(Date.now(), SHORT_EPOCH_S);
      expect(old.keyName).toBe(keyNameOf(secret, r1, epoch));

      // The boundary: each edge relinks its keys and reloads itself.
      const fresh = await encryptsWith(r1, epoch + 1, version);
      expect(fresh.keyName).toBe(keyNameOf(secret, r1, epoch + 1));
      expect((await encryptsWith(r2, epoch + 1, version)).keyName).toBe(keyNameOf(secret, r2, epoch + 1));

      // The previous epoch's ticket resumes on the other task (whose new worker has just done full
      // handshakes above); it gets a ticket under the new key.
      // A worker of the old generation can still take a connection while the reload drains it
      // (it would renew under the key it loaded): offer the same ticket again until a new one answers.
      const want = keyNameOf(secret, r2, epoch + 1);
      let back = await visit(r2, version, old.session);
      for (let i = 0; i < 20 && back.reused && back.keyName !== want; i++) {
        await sleep(100);
        back = await visit(r2, version, old.session);
      }
      expect(back.reused).toBe(true);
      expect(back.keyName).toBe(want);
      expect((await visit(r1, version, fresh.session)).reused).toBe(true);
      expect(readFileSync(join(r1.config.paths.runDir, 'tickets/epoch'), 'utf8').trim()).toBe(
        String(epoch + 1),
      );
    },
    60_000,
  );

  it('removes the keys of epochs that no ticket can use any more', () => {
    const epoch = Number(readFileSync(join(r1.config.paths.runDir, 'tickets/epoch'), 'utf8'));
    expect(() => readFileSync(join(r1.config.paths.runDir, `tickets/${epoch - 2}.key`))).toThrow(/ENOENT/);
  });

  it('logged the rotations, no errors, and no key material', () => {
    for (const e of edges) expect(problems(e), e.config.paths.runDir).toEqual([]);
    const log = readFileSync(r1.errorLog, 'utf8');
    expect(log).toContain('"event":"ticket_keys_rotated"');
    const key = deriveTicketKey(secret, r1.config.region, ticketEpoch(Date.now(), SHORT_EPOCH_S));
    for (const encoding of ['hex', 'base64'] as const) expect(log).not.toContain(key.toString(encoding));
  });
});
