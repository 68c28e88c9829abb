/** Input that can never succeed as given (bad name, bad flag, missing argument): the CLI exits 2. */
export class ValidationError extends Error {
  override name = 'ValidationError';
}

/** The tenant or domain named does not exist (or was removed). */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** The change conflicts with what the registry holds (a domain owned by another tenant). */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** The domain does not point at the edge (or its DNS could not be read). */
export class DnsCheckError extends Error {
  override name = 'DnsCheckError';
}

/** The table has the change but the bus refused the event: repeating the command publishes it again. */
export class PublishError extends Error {
  override name = 'PublishError';
}
