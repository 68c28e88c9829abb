#!/usr/bin/env -S node --import tsx
import { startApiServer } from '../lib/control/api/server.ts';
import { loadCliConfig } from '../lib/control/cli/config.ts';
import { wire } from '../lib/control/cli/wiring.ts';
import { createLogger } from '../lib/sidecars/runtime/logger.ts';

// The control API on loopback: the CLI's settings (EDGE_TABLE_NAME, EDGE_BUS...) plus
// EDGE_API_PORT, EDGE_API_ACCESS_KEY_ID / EDGE_API_SECRET_ACCESS_KEY (the local key pair clients
// sign with), EDGE_API_REGION (default EDGE_REGION, else us-east-1), EDGE_API_RECHECK_SECONDS
// (default 300; 0 off: the deployment's one re-check scheduler runs here).
const env = process.env;
const region = env.EDGE_API_REGION ?? env.EDGE_REGION ?? 'us-east-1';
const log = createLogger({ service: 'control-api', region, level: env.EDGE_LOG_LEVEL });
const accessKeyId = env.EDGE_API_ACCESS_KEY_ID;
const secretAccessKey = env.EDGE_API_SECRET_ACCESS_KEY;
if (!accessKeyId || !secretAccessKey) {
  console.error('control-api: EDGE_API_ACCESS_KEY_ID and EDGE_API_SECRET_ACCESS_KEY are required');
  process.exit(2);
}
const port = Number(env.EDGE_API_PORT ?? 8787);
const recheckSeconds = Number(env.EDGE_API_RECHECK_SECONDS ?? 300);
if (!Number.isInteger(port) || port < 0 || port > 65535 || !(recheckSeconds >= 0)) {
  console.error(`control-api: invalid EDGE_API_PORT "${env.EDGE_API_PORT}" or EDGE_API_RECHECK_SECONDS`);
  process.exit(2);
}
const wired = wire(loadCliConfig({}, env));
const api = await startApiServer({
  control: wired.control,
  credentials: [{ accessKeyId, secretAccessKey }],
  region,
  port,
  recheckSeconds,
  log,
});
log.info({ url: api.url }, 'control API listening');
console.log(`control API on ${api.url} (OpenAPI at ${api.url}/openapi.json)`);
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    api
      .close()
      .then(() => wired.close())
      .finally(() => process.exit(0));
  });
}
