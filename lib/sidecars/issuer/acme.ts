import { X509Certificate } from 'node:crypto';
import { Agent } from 'node:https';
import { rootCertificates } from 'node:tls';
import * as acme from 'acme-client';
import axios, { type AxiosAdapter, AxiosError, type InternalAxiosRequestConfig } from 'axios';
import type { CertRecord } from '../../core/redis-format.ts';
import type { CaConfig } from './config.ts';
import { challengeRecordName, type DnsPort } from './dns/port.ts';
import { CaUnavailableError, RateLimitedError, ValidationError } from './errors.ts';
import { parseRetryAfter } from './http-get.ts';

/** Thrown by the transport; carries no axios `config`, so acme-client passes it through unretried. */
class TransportRateLimit extends Error {
  override name = 'TransportRateLimit';
  constructor(
    readonly retryAt: number,
    detail: string,
  ) {
    super(detail);
  }
}
class TransportFailure extends Error {
  override name = 'TransportFailure';
}
/** The CA no longer knows the account (it forgot it, e.g. Pebble restarted) or deactivated it. */
class TransportAccountGone extends Error {
  override name = 'TransportAccountGone';
}

/** An ACME problem document that says the account is unknown or no longer valid. */
function accountProblem(data: unknown): string | undefined {
  let doc = data;
  if (typeof doc === 'string' || Buffer.isBuffer(doc)) {
    try {
      doc = JSON.parse(doc.toString());
    } catch {
      return undefined;
    }
  }
  const { type, detail } = (doc ?? {}) as { type?: string; detail?: string };
  const text = detail ?? '';
  if (type === 'urn:ietf:params:acme:error:accountDoesNotExist') return text || type;
  if (
    type === 'urn:ietf:params:acme:error:unauthorized' &&
    /account/i.test(text) &&
    /deactivated|revoked|not valid|does not exist|not found|unknown/i.test(text)
  ) {
    return text;
  }
  return undefined;
}

type OrderCreateRequest = Parameters<acme.Client['createOrder']>[0];
type Challenge = Parameters<acme.Client['completeChallenge']>[0];

let transportConfigured = false;

/**
 * acme-client shares one axios instance per process. Its own retry loop would sleep through a
 * 429's Retry-After inside the order (possibly hours) and retries unreachable CAs; the issuer
 * decides those itself (pause the CA, try the next one), so they surface here as errors.
 * badNonce retries stay with acme-client. `trustPem` adds a CA for the ACME server's HTTPS (Pebble).
 */
export function configureAcmeTransport(opts: { trustPem?: string } = {}): void {
  const instance = acme.axios;
  if (opts.trustPem) {
    instance.defaults.httpsAgent = new Agent({ ca: [...rootCertificates, opts.trustPem], keepAlive: true });
  } else if (!instance.defaults.httpsAgent) {
    instance.defaults.httpsAgent = new Agent({ keepAlive: true });
  }
  if (transportConfigured) return;
  transportConfigured = true;
  // Server errors (5xx) are still retried, briefly.
  const settings = (instance.defaults as unknown as { acmeSettings: Record<string, number> }).acmeSettings;
  settings.retryMaxAttempts = 2;
  settings.retryDefaultDelay = 1;
  const http = axios.getAdapter('http') as AxiosAdapter;
  instance.defaults.adapter = async (config: InternalAxiosRequestConfig) => {
    try {
      return await http(config);
    } catch (err) {
      if (err instanceof AxiosError && err.response) {
        if (err.response.status === 429) {
          const data = err.response.data as { detail?: string } | undefined;
          const retryAt = parseRetryAfter(err.response.headers['retry-after']) ?? Date.now() + 3600_000;
          throw new TransportRateLimit(retryAt, data?.detail ?? `HTTP 429 from ${config.url}`);
        }
        const gone = err.response.status >= 400 ? accountProblem(err.response.data) : undefined;
        if (gone) throw new TransportAccountGone(gone);
        throw err;
      }
      throw new TransportFailure(`${config.method?.toUpperCase()} ${config.url}: ${(err as Error).message}`);
    }
  };
}

/** Where HTTP-01 answers are kept when the edge has no account thumbprint (stateful fallback). */
export interface Http01Store {
  set(domain: string, token: string, keyAuthorization: string): Promise<void>;
  remove(domain: string, token: string): Promise<void>;
}

export type KeyType = 'ecdsa-p256' | 'rsa-2048';

export interface OrderRequest {
  /** The first name is the common name. A `*.` name is validated by DNS-01, others by HTTP-01. */
  readonly names: readonly string[];
  readonly keyType: KeyType;
  /** ARI: the certificate id this order replaces. */
  readonly replaces?: string;
  /** Validate every name by DNS-01 (the wildcard's apex shares its order). */
  readonly dns01?: boolean;
  /** Delegated DNS-01: write every answer at this name (the `_acme-challenge` CNAME's target). */
  readonly dnsRecordName?: string;
}

export interface AcmeCaOptions {
  readonly accountKeyPem: string;
  /** Told when the CA forgot the account and it was registered again. */
  readonly onAccountReset?: (ca: string, reason: string) => void;
  readonly email?: string;
  readonly dns?: DnsPort;
  readonly http01: Http01Store;
  readonly poll: { minMs: number; maxMs: number; attempts: number };
}

/** One CA (one ACME directory) used with the deployment's account key. Counts the orders it places. */
export class AcmeCa {
  /** New orders sent to this CA since start (each one is a `newOrder` request). */
  orders = 0;
  /** Times the CA reported the account unknown or deactivated and it was registered again. */
  accountResets = 0;
  private client: acme.Client;
  private clientGeneration = 0;
  private account?: Promise<void>;

  constructor(
    readonly config: CaConfig,
    private readonly opts: AcmeCaOptions,
  ) {
    this.client = this.newClient();
  }

  private newClient(): acme.Client {
    return new acme.Client({
      directoryUrl: this.config.directoryUrl,
      accountKey: this.opts.accountKeyPem,
      externalAccountBinding: this.config.eab,
      backoffMin: this.opts.poll.minMs,
      backoffMax: this.opts.poll.maxMs,
      backoffAttempts: this.opts.poll.attempts,
    });
  }

  get name(): string {
    return this.config.name;
  }

  /** Finds the account for our key, creating it on first use (every task shares it). */
  private ensureAccount(): Promise<void> {
    this.account ??= (async () => {
      try {
        // An existing account answers 200; acme-client then fetches it with POST-as-GET.
        await this.client.createAccount({ onlyReturnExisting: true });
      } catch (err) {
        if (err instanceof TransportRateLimit || err instanceof TransportFailure) throw err;
        await this.client.createAccount({
          termsOfServiceAgreed: true,
          ...(this.opts.email ? { contact: [`mailto:${this.opts.email}`] } : {}),
        });
      }
    })().catch((err) => {
      this.account = undefined;
      throw err;
    });
    return this.account;
  }

  /**
   * Places one order and returns the certificate in lua-resty-auto-ssl's record format. When the CA
   * says it does not know the account (or deactivated it), the account is registered again with
   * the same key and the order retried once, inside this attempt: the domain is not charged a
   * backoff for the CA's loss.
   */
  async issue(req: OrderRequest): Promise<CertRecord> {
    try {
      return await this.withAccount(req);
    } catch (err) {
      if (err instanceof TransportRateLimit) throw new RateLimitedError(this.name, err.retryAt, err.message);
      if (err instanceof TransportFailure) throw new CaUnavailableError(this.name, err.message);
      if (err instanceof TransportAccountGone) {
        throw new CaUnavailableError(
          this.name,
          `the account is unknown even after registering again: ${err.message}`,
        );
      }
      throw err;
    }
  }

  private async withAccount(req: OrderRequest): Promise<CertRecord> {
    const generation = this.clientGeneration;
    try {
      return await this.run(req);
    } catch (err) {
      if (!(err instanceof TransportAccountGone)) throw err;
      // A concurrent order may have replaced the client already: then just retry with it.
      if (generation === this.clientGeneration) {
        this.clientGeneration += 1;
        this.accountResets += 1;
        this.client = this.newClient();
        this.account = undefined;
        this.opts.onAccountReset?.(this.name, err.message);
      }
      return await this.run(req);
    }
  }

  private async run(req: OrderRequest): Promise<CertRecord> {
    await this.ensureAccount();
    const key =
      req.keyType === 'rsa-2048'
        ? await acme.crypto.createPrivateRsaKey(2048)
        : await acme.crypto.createPrivateEcdsaKey('P-256');
    const [, csr] = await acme.crypto.createCsr({ commonName: req.names[0], altNames: [...req.names] }, key);
    this.orders++;
    const order = await this.client.createOrder({
      identifiers: req.names.map((value) => ({ type: 'dns', value })),
      ...(req.replaces ? { replaces: req.replaces } : {}),
    } as OrderCreateRequest);
    const authzs = (await this.client.getAuthorizations(order)).filter((a) => a.status !== 'valid');

    const dnsRecords = new Map<string, string[]>();
    const httpTokens: { domain: string; token: string }[] = [];
    const toComplete: { identifier: string; challenge: Challenge }[] = [];
    for (const authz of authzs) {
      const identifier = authz.identifier.value;
      const useDns = req.dns01 || authz.wildcard === true;
      const challenge = authz.challenges.find((c) => c.type === (useDns ? 'dns-01' : 'http-01'));
      if (!challenge) throw new ValidationError(identifier, `CA offers no ${useDns ? 'dns-01' : 'http-01'}`);
      const keyAuthorization = await this.client.getChallengeKeyAuthorization(challenge);
      if (useDns) {
        if (!this.opts.dns)
          throw new ValidationError(identifier, 'dns-01 needed but no DNS provider configured');
        const name = req.dnsRecordName ?? challengeRecordName(identifier);
        dnsRecords.set(name, [...(dnsRecords.get(name) ?? []), keyAuthorization]);
      } else {
        await this.opts.http01.set(identifier, challenge.token, keyAuthorization);
        httpTokens.push({ domain: identifier, token: challenge.token });
      }
      toComplete.push({ identifier, challenge });
    }

    try {
      for (const [name, values] of dnsRecords) await this.opts.dns?.set(name, values);
      for (const { challenge } of toComplete) await this.client.completeChallenge(challenge);
      await Promise.all(
        toComplete.map(async ({ identifier, challenge }) => {
          try {
            await this.client.waitForValidStatus(challenge);
          } catch (err) {
            if (err instanceof TransportRateLimit || err instanceof TransportFailure) throw err;
            throw new ValidationError(identifier, (err as Error).message);
          }
        }),
      );
    } finally {
      await Promise.allSettled([
        ...[...dnsRecords].map(([name, values]) => this.opts.dns?.remove(name, values)),
        ...httpTokens.map((t) => this.opts.http01.remove(t.domain, t.token)),
      ]);
    }

    const finalized = await this.client.finalizeOrder(order, csr);
    const fullchain = await this.client.getCertificate(finalized);
    const certPem = acme.crypto.splitPemChain(fullchain)[0];
    if (!certPem) throw new Error(`CA ${this.name} returned an empty certificate chain`);
    return {
      fullchain_pem: fullchain,
      privkey_pem: key.toString(),
      cert_pem: certPem,
      expiry: Math.floor(Date.parse(new X509Certificate(certPem).validTo) / 1000),
    };
  }
}
