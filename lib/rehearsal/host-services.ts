import { mkdirSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { ensureTable } from '../core/table.ts';
import { type Dynalite, startDynalite } from '../local/dynalite.ts';
import { type LocalPebble, startPebble } from '../local/pebble.ts';
import { freePort } from '../local/ports.ts';
import { startStaticOrigin } from '../local/static-origin.ts';
import { type AwsStandIn, startAwsStandIn } from './aws/server.ts';
import { type Forwarder, forwardTcp } from './tcp-forward.ts';

/** The name podman gives the host inside every container (/etc/hosts): the pod network's gateway. */
export const HOST_NAME_IN_POD = 'host.containers.internal';

export interface HostServicesOptions {
  readonly dir: string;
  /** The pod network's gateway address on the host: what the pod reaches the host at. */
  readonly gateway: string;
  readonly account: string;
  readonly region: string;
  readonly tableName: string;
  /** Queues CloudFormation creates for the stack (the dead-letter queue). */
  readonly queues: readonly { region: string; name: string }[];
  readonly topicKeys: Readonly<Record<string, string>>;
  readonly multiRegionKeys: boolean;
  /** Secrets Manager's content: secret name → value. */
  readonly secrets: ReadonlyMap<string, string>;
  readonly originRoot: string;
  /** Access key id → principal, for the stand-in's record (`task` is evaluated against the task role). */
  readonly principals: Readonly<Record<string, string>>;
}

export interface HostServices {
  readonly dynalite: Dynalite;
  readonly aws: AwsStandIn;
  /** The stand-in as the host reaches it (the control plane's side). */
  readonly awsUrlOnHost: string;
  readonly pebble: LocalPebble;
  /** Pebble's ACME directory as the pod reaches it. */
  readonly pebbleDirectoryInPod: string;
  /** Pebble's own HTTPS certificate (the issuer trusts it through NODE_EXTRA_CA_CERTS). */
  readonly pebbleTrustFile: string;
  /** The origin as the pod reaches it. */
  readonly originUrlInPod: string;
  /** Loopback ports of the NLB stand-in (set once the pod has an address). */
  readonly nlb: { readonly httpPort: number; readonly httpsPort: number };
  readonly recordFile: string;
  /** Points the NLB stand-in at the task (PROXY protocol v2, as the target groups send it). */
  attachTask(
    taskAddress: string,
    ports: { http: number; https: number; proxyProtocol: boolean },
  ): Promise<void>;
  /** Registers these task addresses with the NLB stand-in instead (new connections only). */
  retarget(taskAddresses: readonly string[]): void;
  stop(): Promise<void>;
}

/**
 * What runs on the host for the rehearsal: dynalite, the AWS stand-in (bound on the pod gateway),
 * Pebble with pebble-challtestsrv, a static origin, and the NLB: loopback listeners that forward
 * to the task with PROXY protocol v2. Pebble validates HTTP-01 at `<domain>:<httpPort>`;
 * challtestsrv answers every name with 127.0.0.1, so validation reaches the NLB stand-in.
 */
export async function startHostServices(o: HostServicesOptions): Promise<HostServices> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    mkdirSync(o.dir, { recursive: true });
    const dynalite = await startDynalite({ port: await freePort(), dir: o.dir });
    stops.push(() => dynalite.process.stop());
    const client = dynalite.client();
    await ensureTable(client, o.tableName);
    client.destroy();

    const nlbHttpPort = await freePort();
    const nlbHttpsPort = await freePort();
    const pebble = await startPebble({
      dir: o.dir,
      httpPort: nlbHttpPort,
      wfeAltNames: [`DNS:${HOST_NAME_IN_POD}`, `IP:${o.gateway}`],
    });
    stops.push(() => pebble.stop());
    const pebbleTrustFile = join(o.dir, 'pebble-wfe-trust.pem');
    writeFileSync(pebbleTrustFile, pebble.wfeCaPem);
    const acme = new URL(pebble.directoryUrl);
    const acmeGate = await forwardTcp({
      host: o.gateway,
      port: 0,
      target: { host: acme.hostname, port: Number(acme.port) },
    });
    stops.push(() => acmeGate.close());

    const secretsDir = join(o.dir, 'secrets-manager');
    for (const [name, value] of o.secrets) {
      const file = join(secretsDir, name);
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, value, { mode: 0o600 });
    }
    const recordFile = join(o.dir, 'aws-calls.jsonl');
    const awsLog = join(o.dir, 'aws-stand-in.log');
    const aws = await startAwsStandIn({
      host: o.gateway,
      publicHost: HOST_NAME_IN_POD,
      accountId: o.account,
      region: o.region,
      secretsDir,
      challtestsrvUrl: pebble.challtestsrvUrl,
      dynaliteUrl: dynalite.endpoint,
      recordFile,
      queues: o.queues,
      topicKeys: o.topicKeys,
      multiRegionKeys: o.multiRegionKeys,
      principals: o.principals,
      log: (line) => writeFileSync(awsLog, `${JSON.stringify(line)}\n`, { flag: 'a' }),
    });
    stops.push(() => aws.stop());

    const originPort = await freePort();
    const origin: Server = await startStaticOrigin(o.originRoot, originPort, 'max-age=300');
    stops.push(() => new Promise<void>((r) => origin.close(() => r())));
    const originGate = await forwardTcp({
      host: o.gateway,
      port: 0,
      target: { host: '127.0.0.1', port: originPort },
    });
    stops.push(() => originGate.close());

    const nlb: { forwarder: Forwarder; port: number }[] = [];
    return {
      dynalite,
      aws,
      awsUrlOnHost: `http://${o.gateway}:${aws.port}`,
      pebble,
      pebbleDirectoryInPod: `https://${HOST_NAME_IN_POD}:${acmeGate.port}${acme.pathname}`,
      pebbleTrustFile,
      originUrlInPod: `http://${o.gateway}:${originGate.port}`,
      nlb: { httpPort: nlbHttpPort, httpsPort: nlbHttpsPort },
      recordFile,
      attachTask: async (address, ports) => {
        for (const [listen, port] of [
          [nlbHttpPort, ports.http],
          [nlbHttpsPort, ports.https],
        ] as const) {
          const f = await forwardTcp({
            host: '127.0.0.1',
            port: listen,
            target: { host: address, port },
            proxyProtocol: ports.proxyProtocol,
          });
          nlb.push({ forwarder: f, port });
          stops.push(() => f.close());
        }
      },
      retarget: (addresses) => {
        for (const { forwarder, port } of nlb)
          forwarder.setTargets(addresses.map((host) => ({ host, port })));
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
