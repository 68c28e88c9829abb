import { z } from 'zod';

/** Value schemas shared by the sidecars' environment contracts (variables are text). */

export const port = z.coerce.number().int().min(1).max(65535);
export const int = (min = 0) => z.coerce.number().int().min(min);
/** "true"/"false" (or "1"/"0"). */
export const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
export const region = z.string().regex(/^[a-z0-9-]{1,32}$/, 'a region name, e.g. eu-west-1');
export const logLevel = z.enum(['debug', 'info', 'warn', 'error']).default('info');
export const redisPrefix = z.string().regex(/^[a-z0-9_-]+$/i, 'letters, digits, - and _');
/** A JSON document, parsed (its shape is checked by the config it fills). */
export const json = z.string().transform((text, ctx) => {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not valid JSON (${(err as Error).message})` });
    return z.NEVER;
  }
});
