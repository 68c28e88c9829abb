#!/usr/bin/env -S node --import tsx
// Three local regions on loopback (127.0.0.2/.3/.4), one command: `npx tsx bin/local-regions.ts [dir]`.
// Each region runs its issuer against one shared Pebble (`--no-issuance` leaves them out).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_REGIONS, LocalRegions } from '../lib/local/regions.ts';

const args = process.argv.slice(2);
const dir = args.find((a) => !a.startsWith('--')) ?? mkdtempSync(join(tmpdir(), 'edge-regions-'));
const regions = await LocalRegions.start({
  dir,
  regions: DEFAULT_REGIONS,
  issuance: !args.includes('--no-issuance'),
});
const pebbleRoot = join(dir, 'pebble-root.pem');
if (regions.pebble) writeFileSync(pebbleRoot, await regions.pebble.root());
const p = regions.ports;
const tokenFile = join(dir, 'control-token');
writeFileSync(tokenFile, `${regions.controlToken}\n`, { mode: 0o600 });
console.log(
  JSON.stringify(
    {
      dir,
      dynamodb: regions.dynalite.endpoint,
      bus: `redis://127.0.0.1:${regions.busRedisPort}`,
      table: regions.tableName,
      keyFile: regions.keyFile,
      controlTokenFile: tokenFile,
      ...(regions.pebble ? { acmeDirectory: regions.pebble.directoryUrl, pebbleRoot } : {}),
      regions: regions.regions.map((r) => ({
        name: r.spec.name,
        https: `https://${r.spec.address}:${p.https}`,
        http: `http://${r.spec.address}:${p.http}`,
        control: `http://${r.spec.address}:${p.control}`,
        redis: `redis://${r.spec.address}:${p.redis}`,
        ...(r.issuer ? { issuer: r.issuer.url } : {}),
      })),
    },
    null,
    2,
  ),
);
let stopping = false;
const stop = async () => {
  if (stopping) process.exit(1);
  stopping = true;
  await regions.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
