import type { ConfigOf, DeepReadonly, EnvContract, EnvVars } from '../../config/env-contract.ts';
import { createLogger, type Logger } from './logger.ts';

/**
 * A sidecar's first step: its config from the environment (validated once, deeply frozen; a
 * problem names the variable) and its logger bound to service and region. EDGE_* variables the
 * program does not read are logged: they are most likely misnamed.
 */
export function startSidecar<V extends EnvVars>(
  contract: EnvContract<V>,
  env: NodeJS.ProcessEnv = process.env,
): { config: DeepReadonly<ConfigOf<V>>; log: Logger } {
  const config = contract.parse(env);
  const { region, logLevel } = config as { region?: string; logLevel?: string };
  const log = createLogger({ service: contract.program, region: region ?? 'local', level: logLevel });
  const unread = contract.unread(env);
  if (unread.length) log.warn({ unread }, 'EDGE_* variables this program does not read');
  return { config, log };
}

/** An entry point's last line: a start failure is one JSON line on stderr and exit 1. */
export function runMain(service: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const e = err as Error | undefined;
    process.stderr.write(
      `${JSON.stringify({
        level: 'fatal',
        time: new Date().toISOString(),
        service,
        msg: 'failed to start',
        err: { type: e?.name, message: e?.message ?? String(err), stack: e?.stack },
      })}\n`,
    );
    process.exit(1);
  });
}
