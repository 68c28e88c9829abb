import { onShutdown } from '../runtime/shutdown.ts';
import { startSidecar } from '../runtime/start.ts';
import { issuerConfigFromVars, issuerEnv } from './config.ts';
import { startIssuerService } from './service.ts';

/** Running orders get the shutdown deadline minus this; the rest closes clients. */
const CLOSE_MARGIN_MS = 5000;

/**
 * The issuer process: config once, the API with /healthz and /readyz, graceful stop.
 * `--print-thumbprint` prints the account key's JWK thumbprint and exits.
 */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  const { config: vars, log } = startSidecar(issuerEnv);
  const config = issuerConfigFromVars(vars, process.env.AWS_REGION);
  const service = await startIssuerService(config, log);
  if (argv.includes('--print-thumbprint')) {
    process.stdout.write(`${service.thumbprint}\n`);
    await service.stop(1000);
    return;
  }
  onShutdown({
    log,
    health: service.health,
    deadlineMs: vars.shutdownDeadlineMs,
    stop: () => service.stop(Math.max(1000, vars.shutdownDeadlineMs - CLOSE_MARGIN_MS)),
  });
}
