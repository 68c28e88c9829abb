#!/usr/bin/env -S node --import tsx
/**
 * The issuer sidecar: ACME client of the native TLS engine. Config comes from the environment
 * (see lib/sidecars/issuer/config.ts), validated once; logs are pino JSON with key material redacted.
 * SIGTERM: fail readiness, let running orders finish, close clients, all under a deadline;
 * a second signal exits at once. `--print-thumbprint` prints the account key's JWK thumbprint.
 */
import { readFileSync } from 'node:fs';
import { issuerConfigFromEnv, parseIssuerConfig } from '../lib/sidecars/issuer/config.ts';
import { createLogger } from '../lib/sidecars/issuer/logger.ts';
import { startIssuerService } from '../lib/sidecars/issuer/service.ts';

async function main(): Promise<void> {
  const env = process.env;
  const input = issuerConfigFromEnv(env);
  if (env.ISSUER_ACME_TRUST_FILE) input.acme.trustPem = readFileSync(env.ISSUER_ACME_TRUST_FILE, 'utf8');
  const config = parseIssuerConfig(input);
  const log = createLogger({ region: config.region, level: env.LOG_LEVEL });
  const service = await startIssuerService(config, log);
  if (process.argv.includes('--print-thumbprint')) {
    process.stdout.write(`${service.thumbprint}\n`);
    await service.stop(1000);
    return;
  }

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping');
    const hard = setTimeout(() => process.exit(1), 30_000);
    hard.unref();
    service.stop(25_000).then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`issuer: ${(err as Error).message}\n`);
  process.exit(1);
});
