export {
  type CertificateReader,
  type CertificateSummary,
  type CertificateView,
  TableCertificateReader,
} from './certificates.ts';
export { ControlPlane, type ControlPlaneOptions } from './control-plane.ts';
export { DnsCheck, type DnsCheckResult, type EdgeTargets } from './dns/check.ts';
export { type DnsResolver, NodeDnsResolver, type NodeDnsResolverOptions } from './dns/resolver.ts';
export type { DomainAdded, DomainDetails, DomainPurges, DomainRemoved } from './domains.ts';
export { ConflictError, DnsCheckError, NotFoundError, PublishError, ValidationError } from './errors.ts';
export type { Purged, PurgeTarget } from './purge.ts';
export type { DomainEntry, TenantEntry } from './registry.ts';
export { SnsPublisher } from './sns-publisher.ts';
export type { TenantAdded, TenantDetails, TenantRemoved, TenantSummary } from './tenants.ts';
