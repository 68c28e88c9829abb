import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEdge } from '../../lib/local/edge-server.ts';

const root = mkdtempSync(join(tmpdir(), 'edge-run-dir-')); // mode 0700: others cannot enter
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('a run directory nginx workers cannot enter', () => {
  // Only a root master switches its workers to an unprivileged user: run as another user, the
  // workers are that user and can enter the directory, so there is nothing to refuse. CI runs as
  // root (apt-get), where this runs.
  it.skipIf(process.getuid?.() !== 0)('refuses to start and says why', async () => {
    const dir = join(root, 'run');
    mkdirSync(dir);
    await expect(
      startEdge({ dir, controlToken: 't'.repeat(32), config: { platformDomain: 'platform.test' } }),
    ).rejects.toThrow(`cannot enter ${root} (mode 0700)`);
  });
});
