/** An event that can never be applied (bad JSON, invalid field): it goes to the DLQ. */
export class MalformedEventError extends Error {
  override name = 'MalformedEventError';
}

/**
 * A well-formed envelope whose type this reader does not know: a newer control plane sent it
 * (regions are upgraded one after another). Acknowledged and counted, never dead-lettered.
 */
export class UnknownEventTypeError extends Error {
  override name = 'UnknownEventTypeError';
  constructor(
    readonly type: string,
    readonly id: string | undefined,
  ) {
    super(`unknown event type "${type}"`);
  }
}
