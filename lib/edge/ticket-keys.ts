import { hkdfSync, randomBytes } from 'node:crypto';
import { chmod, chown, lchown, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EdgeConfig } from '../config/edge-config.ts';

/**
 * Session ticket keys shared by every task of a region without coordination: each task derives
 * the key of epoch N from the region's secret with HKDF-SHA256, so the same N gives the same key
 * everywhere. The `edge-config` container (or the local runner) writes the keys of a window of
 * epochs before nginx starts; lua/edge/ticket_keys.lua points nginx's three key names at the
 * epoch's keys and reloads nginx at each boundary. nginx never sees the secret itself.
 */

/** nginx's 80-byte key file: 16 bytes key name, 32 bytes HMAC secret, 32 bytes AES-256 key. */
export const TICKET_KEY_BYTES = 80;
/** The names nginx.conf lists, in its order: the first encrypts, all decrypt. */
export const TICKET_KEY_NAMES = ['current.key', 'previous.key', 'next.key'] as const;
/** Holds the epoch the names point at (not secret): the Lua compares it with the clock. */
export const TICKET_EPOCH_FILE = 'epoch';
/** Bytes of a locally generated secret (hex in the file); the region's secret is 64 characters. */
const LOCAL_SECRET_BYTES = 32;
const MIN_SECRET_LENGTH = 32;
/** Domain separation: a key from this derivation is good for nothing else. */
const SALT = Buffer.from('edge session ticket keys v1');

/** The directory of the key files: private to the edge's user. */
export function ticketKeyDir(config: EdgeConfig): string {
  return join(config.paths.runDir, 'tickets');
}

export function ticketEpoch(nowMs: number, epochSeconds: number): number {
  return Math.floor(nowMs / 1000 / epochSeconds);
}

/** The key of one epoch: the same bytes in every task holding the same secret and region. */
export function deriveTicketKey(secret: string, region: string, epoch: number): Buffer {
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new Error(
      `session ticket secret: ${secret.length} characters, at least ${MIN_SECRET_LENGTH} needed`,
    );
  }
  if (!Number.isSafeInteger(epoch) || epoch < 0)
    throw new Error(`session ticket epoch ${epoch} is not valid`);
  return Buffer.from(
    hkdfSync('sha256', Buffer.from(secret, 'utf8'), SALT, `${region}\0${epoch}`, TICKET_KEY_BYTES),
  );
}

/** The 16 bytes a ticket starts with, naming the key that encrypted it (no key material). */
export function ticketKeyName(key: Buffer): Buffer {
  return key.subarray(0, 16);
}

export interface TicketKeyWindow {
  readonly dir: string;
  /** The epoch the names point at. */
  readonly epoch: number;
  /** Epochs written: `epoch - 1` up to `last`. */
  readonly last: number;
}

export interface WriteTicketKeysOptions {
  readonly dir: string;
  readonly secret: string;
  readonly region: string;
  readonly epochSeconds: number;
  readonly horizonEpochs: number;
  readonly nowMs?: number;
  /** The edge's user: it owns the directory (the Lua relinks in it) and reads the keys. */
  readonly owner?: { uid: number; gid: number };
}

/**
 * Replaces the directory with the keys of epochs `N - 1 … N + horizon` (0400) and points the
 * three names at N's. Everything before is removed, so no key of an earlier run stays on disk.
 */
export async function writeTicketKeys(o: WriteTicketKeysOptions): Promise<TicketKeyWindow> {
  const epoch = ticketEpoch(o.nowMs ?? Date.now(), o.epochSeconds);
  await rm(o.dir, { recursive: true, force: true });
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  await chmod(o.dir, 0o700); // mkdir's mode is filtered by the umask
  const last = epoch + o.horizonEpochs;
  for (let e = epoch - 1; e <= last; e++) {
    await writeFile(join(o.dir, `${e}.key`), deriveTicketKey(o.secret, o.region, e), {
      mode: 0o400,
      flag: 'wx',
    });
  }
  const targets = [epoch, epoch - 1, epoch + 1];
  for (const [i, name] of TICKET_KEY_NAMES.entries()) await symlink(`${targets[i]}.key`, join(o.dir, name));
  await writeFile(join(o.dir, TICKET_EPOCH_FILE), `${epoch}\n`, { mode: 0o644 });
  if (o.owner) {
    for (const entry of await readdir(o.dir)) await lchown(join(o.dir, entry), o.owner.uid, o.owner.gid);
    await chown(o.dir, o.owner.uid, o.owner.gid);
  }
  return { dir: o.dir, epoch, last };
}

/** The window of `config` from the region's secret. */
export function writeConfiguredTicketKeys(
  config: EdgeConfig,
  secret: string,
  options: { nowMs?: number; owner?: { uid: number; gid: number } } = {},
): Promise<TicketKeyWindow> {
  const { epochSeconds, horizonEpochs } = config.tls.sessionTickets;
  return writeTicketKeys({
    dir: ticketKeyDir(config),
    secret,
    region: config.region,
    epochSeconds,
    horizonEpochs,
    ...options,
  });
}

/**
 * Local runs: the region secret from a file, generated once (0600) when missing, so restarts and
 * every local edge given the same file share tickets.
 */
export async function localTicketSecret(path: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(LOCAL_SECRET_BYTES).toString('hex');
  try {
    await writeFile(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    return secret;
  } catch (err) {
    // Another edge sharing the file wrote it first: use its secret.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return (await readFile(path, 'utf8')).trim();
    throw err;
  }
}
