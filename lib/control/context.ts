import type { Announcer } from '../core/bus/announcer.ts';
import type { EventPublisher } from '../core/bus/port.ts';
import type { Store } from '../core/store/store.ts';
import type { CertificateReader } from './certificates.ts';
import type { DnsCheck } from './dns/check.ts';

/** What every operation family works with; built once by ControlPlane. */
export interface ControlContext {
  readonly store: Store;
  readonly announcer: Announcer;
  readonly publisher: EventPublisher;
  readonly certificates: CertificateReader;
  /** Absent when no edge targets are configured: only `skipDnsCheck` adds a domain then. */
  readonly dnsCheck: DnsCheck | undefined;
  readonly renewBeforeDays: number;
  readonly now: () => number;
}
