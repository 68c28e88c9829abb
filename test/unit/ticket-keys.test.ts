import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseEdgeConfig } from '../../lib/config/edge-config.ts';
import {
  deriveTicketKey,
  localTicketSecret,
  TICKET_KEY_BYTES,
  ticketEpoch,
  ticketKeyName,
  writeTicketKeys,
} from '../../lib/edge/ticket-keys.ts';

const root = mkdtempSync(join(tmpdir(), 'edge-ticket-keys-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const secret = 'a'.repeat(64);

describe('ticket key derivation', () => {
  it('gives every task the same 80-byte key for the same secret, region and epoch', () => {
    const key = deriveTicketKey(secret, 'eu-west-1', 493000);
    expect(key).toHaveLength(TICKET_KEY_BYTES);
    expect(deriveTicketKey(secret, 'eu-west-1', 493000).equals(key)).toBe(true);
    // Pinned: tasks of two releases share keys during a rolling deployment only while this holds.
    expect(key.toString('hex')).toBe(
      'd27cdc6c8a4e402991d14bc97b1caf993b4628b89abb35ead78fee8ac9a9429c048d2714d7aa246e7f18cd7e362de2e965ad2ada0f1b829e5adeec32c2390e9cec436dcf3a2e28424629f727f4cd71fe',
    );
  });

  it('gives another key for another epoch, region or secret, each with its own name', () => {
    const key = deriveTicketKey(secret, 'eu-west-1', 493000);
    const others = [
      deriveTicketKey(secret, 'eu-west-1', 493001),
      deriveTicketKey(secret, 'us-east-1', 493000),
      deriveTicketKey('b'.repeat(64), 'eu-west-1', 493000),
    ];
    for (const other of others) {
      expect(other.equals(key)).toBe(false);
      expect(ticketKeyName(other).equals(ticketKeyName(key))).toBe(false);
    }
  });

  it('refuses a short secret and a bad epoch, naming the value', () => {
    expect(() => deriveTicketKey('short', 'eu-west-1', 1)).toThrow(
      'session ticket secret: 5 characters, at least 32',
    );
    expect(() => deriveTicketKey(secret, 'eu-west-1', -1)).toThrow('session ticket epoch -1 is not valid');
  });

  it('counts epochs from the Unix epoch', () => {
    expect(ticketEpoch(3600_000 * 5 + 1, 3600)).toBe(5);
    expect(ticketEpoch(3600_000 * 5 - 1, 3600)).toBe(4);
  });
});

describe('the key files', () => {
  it('holds the window from the previous epoch to the horizon, private, with the names at the current epoch', async () => {
    const dir = join(root, 'tickets');
    const nowMs = 3600_000 * 100 + 5;
    const w = await writeTicketKeys({
      dir,
      secret,
      region: 'r',
      epochSeconds: 3600,
      horizonEpochs: 4,
      nowMs,
    });
    expect(w).toEqual({ dir, epoch: 100, last: 104 });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const keys = readdirSync(dir).filter((f) => /^\d+\.key$/.test(f));
    expect(keys.sort()).toEqual(['100.key', '101.key', '102.key', '103.key', '104.key', '99.key']);
    for (const f of keys) {
      expect(statSync(join(dir, f)).mode & 0o777, f).toBe(0o400);
      expect(readFileSync(join(dir, f)).equals(deriveTicketKey(secret, 'r', Number.parseInt(f, 10)))).toBe(
        true,
      );
    }
    expect(lstatSync(join(dir, 'current.key')).isSymbolicLink()).toBe(true);
    expect(['current.key', 'previous.key', 'next.key'].map((n) => readlinkSync(join(dir, n)))).toEqual([
      '100.key',
      '99.key',
      '101.key',
    ]);
    expect(readFileSync(join(dir, 'epoch'), 'utf8')).toBe('100\n');

    // A restart replaces the window: no key of the earlier run stays.
    const later = await writeTicketKeys({
      dir,
      secret,
      region: 'r',
      epochSeconds: 3600,
      horizonEpochs: 3,
      nowMs: nowMs + 3600_000 * 10,
    });
    expect(later.epoch).toBe(110);
    expect(
      readdirSync(dir)
        .filter((f) => /^\d+\.key$/.test(f))
        .sort(),
    ).toEqual(['109.key', '110.key', '111.key', '112.key', '113.key']);
  });

  it('generates a local secret once, then reads it back', async () => {
    const path = join(root, 'ticket-secret');
    const first = await localTicketSecret(path);
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await localTicketSecret(path)).toBe(first);
  });
});

describe('the ticket settings', () => {
  const paths = {
    runDir: '/r',
    luaDir: '/l',
    cacheDir: '/c',
    fallbackCert: '/f',
    fallbackKey: '/k',
    errorLog: '/e',
    accessLog: '/a',
  };
  it('keep keys for as long as a ticket lives: the epoch is at least the session timeout', () => {
    expect(() =>
      parseEdgeConfig({
        platformDomain: 'p.test',
        paths,
        tls: { sessionTimeoutSeconds: 7200, sessionTickets: { epochSeconds: 3600 } },
      }),
    ).toThrow(
      'tls.sessionTickets.epochSeconds: 3600 is below tls.sessionTimeoutSeconds 7200: tickets would outlive the keys that decrypt them',
    );
    const c = parseEdgeConfig({ platformDomain: 'p.test', paths });
    expect(c.tls.sessionTickets).toEqual({
      enabled: true,
      epochSeconds: 3600,
      horizonEpochs: 720,
      perHandshake: 1,
    });
    expect(c.tls.sessionTimeoutSeconds).toBe(3600);
  });
});
