/**
 * Where DNS-01 answers go. `set` publishes every value for one name at once (a wildcard order and
 * its apex share `_acme-challenge.<platform>`) and resolves once the record is served;
 * `remove` takes the same values away.
 */
export interface DnsPort {
  readonly name: string;
  set(recordName: string, values: readonly string[]): Promise<void>;
  remove(recordName: string, values: readonly string[]): Promise<void>;
}

/** `_acme-challenge.<name>` for an identifier (a wildcard validates at its base name). */
export function challengeRecordName(identifier: string): string {
  return `_acme-challenge.${identifier.replace(/^\*\./, '')}`;
}
