import { join } from 'node:path';
import { SNSClient } from '@aws-sdk/client-sns';
import { TableCertificateReader } from '../control/certificates.ts';
import { ControlPlane } from '../control/control-plane.ts';
import { NodeDnsResolver } from '../control/dns/resolver.ts';
import { SnsPublisher } from '../control/sns-publisher.ts';
import { LocalKeyFileProvider } from '../core/store/local-keys.ts';
import { Store } from '../core/store/store.ts';
import { localDynamoClient } from '../local/dynalite.ts';

/** The tenants the rehearsal checks, named per run so that nothing cached elsewhere can answer. */
export interface RehearsalTenants {
  /** Reached at its custom domain and at `<platform>/<tenant>/`. */
  readonly shop: string;
  readonly customDomain: string;
  /** Reached at `<tenant>.<platform>`. */
  readonly blog: string;
}

/** The control plane's dummy access key: the stand-in records its calls as `control-plane`, not the task's. */
export const CONTROL_PLANE_ACCESS_KEY = 'REHEARSALCONTROLPLANE';

export interface ControlHandle {
  readonly control: ControlPlane;
  /** Certificates as the table holds them (what the task's redis-listener persisted). */
  readonly certificates: TableCertificateReader;
  close(): void;
}

/**
 * The control plane as a SaaS backend runs it: the table (dynalite) and the SNS topic (the
 * stand-in), so every write is in the table first and then an event on the bus.
 */
export async function openControlPlane(opts: {
  dir: string;
  dynamoEndpoint: string;
  tableName: string;
  topicArn: string;
  snsEndpoint: string;
}): Promise<ControlHandle> {
  const dynamo = localDynamoClient(opts.dynamoEndpoint);
  const sns = new SNSClient({
    endpoint: opts.snsEndpoint,
    region: opts.topicArn.split(':')[3] as string,
    credentials: { accessKeyId: CONTROL_PLANE_ACCESS_KEY, secretAccessKey: 'rehearsal' },
  });
  // Tenant and domain records carry no key material; certificates are the task's to write.
  const keys = await LocalKeyFileProvider.open(join(opts.dir, 'control-plane.key'));
  const certificates = new TableCertificateReader(dynamo, opts.tableName);
  const control = new ControlPlane({
    store: new Store({ client: dynamo, tableName: opts.tableName, keys }),
    bus: new SnsPublisher(sns, opts.topicArn),
    resolver: new NodeDnsResolver(),
    certificates,
  });
  return {
    control,
    certificates,
    close: () => {
      dynamo.destroy();
      sns.destroy();
    },
  };
}

/**
 * Two tenants on HTTP origins (`<originUrl>/<tenant>/`), one with a custom domain (DNS check
 * skipped: no public DNS here).
 */
export async function seedTenants(
  control: ControlPlane,
  t: RehearsalTenants,
  originUrl: string,
): Promise<void> {
  await control.tenants.add(t.shop, { type: 'http', url: `${originUrl}/${t.shop}` });
  await control.tenants.add(t.blog, { type: 'http', url: `${originUrl}/${t.blog}` });
  await control.domains.add(t.customDomain, t.shop, { skipDnsCheck: true, preverified: true });
}
