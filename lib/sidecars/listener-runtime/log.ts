import { type Logger, pino } from 'pino';

/** pino JSON to stdout, bound to service and region; secrets never printed. */
export function createLogger(service: string, region: string, level = 'info'): Logger {
  return pino({
    level,
    base: { service, region },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'token',
        'authorization',
        'privkey_pem',
        '*.token',
        '*.controlToken',
        '*.authorization',
        '*.headers.authorization',
        '*.privkey_pem',
        '*.password',
        'config.edgeControlToken',
      ],
      censor: '[redacted]',
    },
  });
}

export type { Logger };
