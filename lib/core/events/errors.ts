/** An event that can never be applied (bad JSON, unknown type, invalid field): it goes to the DLQ. */
export class MalformedEventError extends Error {
  override name = 'MalformedEventError';
}
