import type { Announcer } from '../core/bus/announcer.ts';
import type { EventPublisher } from '../core/bus/port.ts';
import type { Store } from '../core/store/store.ts';
import type { CertificateReader } from './certificates.ts';
import type { DnsCheck, EdgeTargets } from './dns/check.ts';
import type { DnsResolver } from './dns/resolver.ts';
import type { TokenFetcher } from './ownership.ts';

/** What every operation family works with; built once by ControlPlane. */
export interface ControlContext {
  readonly store: Store;
  readonly announcer: Announcer;
  readonly publisher: EventPublisher;
  readonly certificates: CertificateReader;
  /** Absent when no edge targets are configured: only `skipDnsCheck` adds a domain then. */
  readonly dnsCheck: DnsCheck | undefined;
  readonly resolver: DnsResolver;
  readonly edge: EdgeTargets | undefined;
  /** Fetches the HTTP ownership token. */
  readonly fetchToken: TokenFetcher;
  /** CAA identities of the CAs in use (`letsencrypt.org`); empty skips the CAA check. */
  readonly caaIdentities: readonly string[];
  readonly renewBeforeDays: number;
  /** The issuers' delegated DNS-01 zone (EDGE_DNS01_CHALLENGE_ZONE); unset: no challenge record. */
  readonly challengeZone: string | undefined;
  readonly now: () => number;
}
