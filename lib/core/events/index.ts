export { decodeEvent, encodeEvent, entityOf, makeEvent } from './codec.ts';
export { MalformedEventError } from './errors.ts';
export * from './schema.ts';
