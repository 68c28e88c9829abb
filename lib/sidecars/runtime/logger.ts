import { type DestinationStream, type Logger, pino } from 'pino';

/**
 * The one redaction list of every sidecar: paths that may carry key material, tokens or
 * passwords, in log objects and in a logged config. pino replaces them wherever they appear.
 */
export const REDACT_PATHS = [
  // certificate and account keys
  'privkey_pem',
  '*.privkey_pem',
  'privateKey',
  '*.privateKey',
  'privateKeyPem',
  '*.privateKeyPem',
  'accountKeyPem',
  '*.accountKeyPem',
  'acmeAccountKey',
  '*.acmeAccountKey',
  'hmacKey',
  '*.hmacKey',
  '*.eab.hmacKey',
  'acmeEabHmacKey',
  '*.acmeEabHmacKey',
  'config.acme.cas[*].eab.hmacKey',
  // the region's session ticket secret (the keys derived from it are never logged)
  'ticketSecret',
  '*.ticketSecret',
  // bearer tokens
  'token',
  '*.token',
  'controlToken',
  '*.controlToken',
  'edgeControlToken',
  '*.edgeControlToken',
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  // passwords
  'password',
  '*.password',
  'redisPassword',
  '*.redisPassword',
  'config.redis.password',
];

export interface LoggerOptions {
  /** The program, e.g. "sqs-listener". */
  readonly service: string;
  readonly region: string;
  readonly level?: string;
}

/** pino JSON to stdout (or `destination`), bound to service and region; errors under `err`. */
export function createLogger(opts: LoggerOptions, destination?: DestinationStream): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: opts.service, region: opts.region },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    destination,
  );
}

export type { Logger };
