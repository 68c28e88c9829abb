import { type DestinationStream, type Logger, pino } from 'pino';

/** Paths that may carry key material; pino replaces them wherever they appear. */
export const REDACT_PATHS = [
  'privkey_pem',
  '*.privkey_pem',
  'privateKey',
  '*.privateKey',
  'accountKeyPem',
  '*.accountKeyPem',
  'hmacKey',
  '*.hmacKey',
  '*.eab.hmacKey',
  'password',
  '*.password',
  'config.acme.cas[*].eab.hmacKey',
  'config.redis.password',
];

export function createLogger(
  opts: { region: string; level?: string },
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: 'issuer', region: opts.region },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    destination,
  );
}
