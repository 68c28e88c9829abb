import { generateKeyPairSync } from 'node:crypto';
import { ChangeResourceRecordSetsCommand, GetChangeCommand, Route53Client } from '@aws-sdk/client-route-53';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { jwkThumbprint, SecretsManagerAccountKey } from '../../lib/sidecars/issuer/account-key.ts';
import { challengeRecordName } from '../../lib/sidecars/issuer/dns/port.ts';
import { Route53Dns } from '../../lib/sidecars/issuer/dns/route53.ts';

const r53 = mockClient(Route53Client);
const sm = mockClient(SecretsManagerClient);

beforeEach(() => {
  r53.reset();
  sm.reset();
});

const batch = (action: string, values: string[]) => ({
  HostedZoneId: 'Z123',
  ChangeBatch: {
    Comment: `acme dns-01 ${action === 'UPSERT' ? 'challenge' : 'cleanup'}`,
    Changes: [
      {
        Action: action,
        ResourceRecordSet: {
          Name: '_acme-challenge.platform.example',
          Type: 'TXT',
          TTL: 60,
          ResourceRecords: values.map((v) => ({ Value: `"${v}"` })),
        },
      },
    ],
  },
});

describe('Route53 DNS-01 adapter', () => {
  it('upserts every value in one change, then polls GetChange until INSYNC', async () => {
    r53.on(ChangeResourceRecordSetsCommand).resolves({
      ChangeInfo: { Id: '/change/C1', Status: 'PENDING', SubmittedAt: new Date() },
    });
    r53
      .on(GetChangeCommand)
      .resolvesOnce({ ChangeInfo: { Id: '/change/C1', Status: 'PENDING', SubmittedAt: new Date() } })
      .resolves({ ChangeInfo: { Id: '/change/C1', Status: 'INSYNC', SubmittedAt: new Date() } });
    const dns = new Route53Dns({ client: new Route53Client({}), hostedZoneId: 'Z123', pollMs: 1 });
    await dns.set(challengeRecordName('*.platform.example'), ['a1', 'b2']);
    expect(r53.commandCalls(ChangeResourceRecordSetsCommand).map((c) => c.args[0].input)).toEqual([
      batch('UPSERT', ['a1', 'b2']),
    ]);
    expect(r53.commandCalls(GetChangeCommand).map((c) => c.args[0].input)).toEqual([
      { Id: '/change/C1' },
      { Id: '/change/C1' },
    ]);
  });

  it('deletes exactly the record it created on cleanup, and tolerates it being gone already', async () => {
    r53.on(ChangeResourceRecordSetsCommand).resolves({});
    const dns = new Route53Dns({ client: new Route53Client({}), hostedZoneId: 'Z123' });
    await dns.remove('_acme-challenge.platform.example', ['a1']);
    expect(r53.commandCalls(ChangeResourceRecordSetsCommand).map((c) => c.args[0].input)).toEqual([
      batch('DELETE', ['a1']),
    ]);
    r53.reset();
    const gone = Object.assign(new Error('not found'), { name: 'InvalidChangeBatch' });
    r53.on(ChangeResourceRecordSetsCommand).rejects(gone);
    await expect(dns.remove('_acme-challenge.platform.example', ['a1'])).resolves.toBeUndefined();
    expect(r53.commandCalls(GetChangeCommand)).toHaveLength(0);
  });

  it('gives up when the change never reaches INSYNC', async () => {
    r53.on(ChangeResourceRecordSetsCommand).resolves({
      ChangeInfo: { Id: '/change/C2', Status: 'PENDING', SubmittedAt: new Date() },
    });
    r53
      .on(GetChangeCommand)
      .resolves({ ChangeInfo: { Id: '/change/C2', Status: 'PENDING', SubmittedAt: new Date() } });
    const dns = new Route53Dns({
      client: new Route53Client({}),
      hostedZoneId: 'Z123',
      pollMs: 1,
      timeoutMs: 5,
    });
    await expect(dns.set('_acme-challenge.platform.example', ['x'])).rejects.toThrow(/not INSYNC in time/);
  });
});

describe('account key from Secrets Manager', () => {
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();

  it('reads the PEM from the secret, plain or as {privateKeyPem}', async () => {
    sm.on(GetSecretValueCommand, { SecretId: 'acme/account' }).resolves({ SecretString: pem });
    sm.on(GetSecretValueCommand, { SecretId: 'acme/json' }).resolves({
      SecretString: JSON.stringify({ privateKeyPem: pem }),
    });
    const client = new SecretsManagerClient({});
    expect(await new SecretsManagerAccountKey(client, 'acme/account').load()).toBe(pem);
    expect(await new SecretsManagerAccountKey(client, 'acme/json').load()).toBe(pem);
    expect(sm.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input)).toEqual([
      { SecretId: 'acme/account' },
      { SecretId: 'acme/json' },
    ]);
    expect(jwkThumbprint(pem)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('refuses a secret that holds no private key, naming the secret', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: 'hello' });
    await expect(
      new SecretsManagerAccountKey(new SecretsManagerClient({}), 'acme/bad').load(),
    ).rejects.toThrow('secret acme/bad does not hold a PEM private key');
  });
});
