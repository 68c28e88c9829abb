import { X509Certificate } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { IssuanceStore } from '../core/store/issuance.ts';
import { keys } from '../core/store/items.ts';
import { type CertificateStatus, readCertificateState } from '../sidecars/issuer/state.ts';

/** The public half of a stored certificate: what `domain show` needs, never the key. */
export interface CertificateSummary {
  /** Unix seconds. */
  readonly expiry: number;
  readonly certPem: string;
}

/** Where the control plane reads certificate and issuance state. */
export interface CertificateReader {
  certificate(domain: string): Promise<CertificateSummary | undefined>;
  issuance: IssuanceStore['get'];
}

/**
 * Reads the table directly: the certificate item with a projection that leaves the encrypted key
 * out (so showing a domain needs no KMS access), and the issuer's ISSUANCE item.
 */
export class TableCertificateReader implements CertificateReader {
  private readonly doc: DynamoDBDocumentClient;
  private readonly issuanceStore: IssuanceStore;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client);
    this.issuanceStore = new IssuanceStore(this.doc, tableName, 'control-plane');
  }

  async certificate(domain: string): Promise<CertificateSummary | undefined> {
    const out = await this.doc.send(
      new GetCommand({
        TableName: this.tableName,
        Key: keys.cert(domain),
        ConsistentRead: true,
        ProjectionExpression: 'cert_pem, expiry, deleted',
      }),
    );
    const item = out.Item;
    if (!item || item.deleted || typeof item.cert_pem !== 'string' || typeof item.expiry !== 'number') {
      return undefined;
    }
    return { expiry: item.expiry, certPem: item.cert_pem };
  }

  issuance = (domain: string) => this.issuanceStore.get(domain);
}

export interface CertificateView extends CertificateStatus {
  /** The issuing CA's distinguished name. */
  readonly issuer?: string;
  readonly serial?: string;
  readonly notBefore?: string;
  readonly notAfter?: string;
  readonly subjectAltNames?: readonly string[];
}

/** The issuer's view of the state (issued/expiring/expired/pending/failed), plus the certificate's details. */
export async function readCertificate(
  reader: CertificateReader,
  domain: string,
  opts: { renewBeforeDays?: number; now?: number } = {},
): Promise<CertificateView> {
  const cert = await reader.certificate(domain);
  const status = await readCertificateState(
    {
      // readCertificateState only reads the expiry; the key is never loaded.
      certs: {
        get: async () =>
          cert && { expiry: cert.expiry, cert_pem: cert.certPem, fullchain_pem: '', privkey_pem: '' },
      },
      issuance: { get: (d) => reader.issuance(d) },
    },
    domain,
    opts,
  );
  if (!cert) return status;
  try {
    const x509 = new X509Certificate(cert.certPem);
    return {
      ...status,
      issuer: x509.issuer.replace(/\n/g, ', '),
      serial: x509.serialNumber,
      notBefore: new Date(x509.validFrom).toISOString(),
      notAfter: new Date(x509.validTo).toISOString(),
      subjectAltNames: (x509.subjectAltName ?? '')
        .split(', ')
        .filter((n) => n.startsWith('DNS:'))
        .map((n) => n.slice(4)),
    };
  } catch {
    return status;
  }
}
