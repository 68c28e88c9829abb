/**
 * Full-TLS-handshake load generator, run as its own process so its CPU is not the bench's.
 *
 * Keeps `concurrency` connections in flight; each one is a brand-new TLS session (no `session`
 * is ever passed, so nothing is resumed), sends SNI `<prefix><index><suffix>`, and is closed as
 * soon as the handshake completes. Names are taken in order from [from, to):
 *   --mode cycle  round-robin over the range until --duration-ms has passed (warm figures);
 *   --mode once   each name at most once, stopping at the end of the range or the duration
 *                 (cold figures: the server has never seen any of them).
 *   --mode resume like cycle, but each name's session is passed back in on its next connection
 *                 (resumed-handshake figures: a returning visitor). With --other-port, a name's
 *                 visits alternate between the two servers, so every session offered comes from
 *                 the other one (a returning visitor the load balancer sends to another task).
 * Prints one JSON line: { completed, errors, resumed, elapsedMs, rate, firstErrors, group }; group
 * is the key exchange of the first handshake (X25519, X25519MLKEM768, ...).
 */

import { connect, createSecureContext, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    'other-port': { type: 'string' },
    prefix: { type: 'string', default: 'n' },
    suffix: { type: 'string', default: '.certs.example' },
    from: { type: 'string', default: '0' },
    to: { type: 'string' },
    mode: { type: 'string', default: 'cycle' },
    concurrency: { type: 'string', default: '32' },
    'duration-ms': { type: 'string', default: '5000' },
    'min-version': { type: 'string', default: 'TLSv1.2' },
    /** Key-exchange groups offered (OpenSSL list); default: Node's (X25519MLKEM768 first on 3.5). */
    groups: { type: 'string' },
  },
});

function int(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`);
  return n;
}

const port = int('port', values.port);
const otherPort = values['other-port'] === undefined ? undefined : int('other-port', values['other-port']);
const from = int('from', values.from);
const to = int('to', values.to);
const concurrency = Math.max(1, int('concurrency', values.concurrency));
const durationMs = int('duration-ms', values['duration-ms']);
const mode = values.mode;
if (mode !== 'cycle' && mode !== 'once' && mode !== 'resume')
  throw new Error('--mode must be cycle, once or resume');
if (otherPort !== undefined && mode !== 'resume') throw new Error('--other-port needs --mode resume');
/** --other-port: how many connections each name has made, odd ones going to the other server. */
const visits = new Map<string, number>();
/** --mode resume: the latest session the server gave for each name. */
const sessions = new Map<string, Buffer>();
if (to <= from) throw new Error('--to must be greater than --from');
const minVersion = values['min-version'] === 'TLSv1.3' ? 'TLSv1.3' : 'TLSv1.2';

// One context for every connection: building an SSL_CTX per connect would cost the client more
// than the handshake itself. Sessions are never passed back in, so each handshake is a full one.
const secureContext = createSecureContext({
  minVersion,
  ...(values.groups ? { ecdhCurve: values.groups } : {}),
});

let next = from;
let completed = 0;
let errors = 0;
/** Handshakes that resumed a session: must stay 0, or the figure is not about full handshakes. */
let resumed = 0;
let inFlight = 0;
let stopping = false;
const firstErrors: string[] = [];
let group: string | undefined;
const started = process.hrtime.bigint();
let lastCompletion = started;

function nextName(): string | undefined {
  if (next >= to) {
    if (mode === 'once') return undefined;
    next = from;
  }
  const name = `${values.prefix}${next}${values.suffix}`;
  next += 1;
  return name;
}

function finish(): void {
  const elapsedMs = Number(lastCompletion - started) / 1e6;
  const out = {
    completed,
    errors,
    resumed,
    elapsedMs: Math.round(elapsedMs),
    rate: elapsedMs > 0 ? (completed * 1000) / elapsedMs : 0,
    firstErrors,
    group,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

function launch(): void {
  if (stopping) {
    if (inFlight === 0) finish();
    return;
  }
  const servername = nextName();
  if (servername === undefined) {
    stopping = true;
    if (inFlight === 0) finish();
    return;
  }
  inFlight += 1;
  let done = false;
  const visit = visits.get(servername) ?? 0;
  if (otherPort !== undefined) visits.set(servername, visit + 1);
  const socket: TLSSocket = connect({
    host: values.host,
    port: otherPort !== undefined && visit % 2 === 1 ? otherPort : port,
    servername,
    rejectUnauthorized: false,
    secureContext,
    ...(mode === 'resume' && sessions.has(servername) ? { session: sessions.get(servername) } : {}),
  });
  if (mode === 'resume') {
    // TLS 1.3 tickets arrive after the handshake; a stateful ticket (a server's session cache) is
    // good once and a stateless one is renewed when its key is no longer the current one: the
    // connection closes when the new one has arrived (or after a short wait).
    socket.on('session', (session: Buffer) => {
      sessions.set(servername, session);
      if (done) socket.end();
    });
  }
  const settle = (ok: boolean, why?: string): void => {
    if (done) return;
    done = true;
    if (ok) {
      completed += 1;
      lastCompletion = process.hrtime.bigint();
    } else if (!stopping) {
      errors += 1;
      if (why && firstErrors.length < 5) firstErrors.push(why);
    }
  };
  socket.setNoDelay(true);
  socket.once('secureConnect', () => {
    if (socket.isSessionReused()) resumed += 1;
    if (group === undefined) {
      const info = socket.getEphemeralKeyInfo() as { name?: string; type?: string } | null;
      // TLS 1.3 hybrid groups have no classical name here: OpenSSL reports them by type only.
      group = info?.name ?? info?.type ?? 'unknown';
    }
    settle(true);
    if (mode !== 'resume') socket.end();
    else setTimeout(() => socket.end(), 200).unref();
  });
  socket.once('error', (err) => settle(false, `${servername}: ${err.message}`));
  socket.once('close', () => {
    settle(false, `${servername}: closed before the handshake completed`);
    inFlight -= 1;
    launch();
  });
}

if (durationMs > 0) {
  setTimeout(() => {
    // Handshakes still in flight at the deadline are not counted.
    stopping = true;
    lastCompletion = process.hrtime.bigint();
    finish();
  }, durationMs).unref();
}
for (let i = 0; i < concurrency; i++) launch();
