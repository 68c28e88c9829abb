import {
  ChangeResourceRecordSetsCommand,
  type ChangeResourceRecordSetsCommandInput,
  GetChangeCommand,
  type Route53Client,
} from '@aws-sdk/client-route-53';
import type { DnsPort } from './port.ts';

export interface Route53DnsOptions {
  readonly client: Route53Client;
  readonly hostedZoneId: string;
  /** TTL of the TXT record (default 60 s). */
  readonly ttlSeconds?: number;
  /** GetChange polling pace (default 2000 ms) and limit (default 180000 ms). */
  readonly pollMs?: number;
  readonly timeoutMs?: number;
}

/** DNS-01 through Route53: UPSERT the TXT record, wait until the change is INSYNC, DELETE after. */
export class Route53Dns implements DnsPort {
  readonly name = 'route53';
  constructor(private readonly opts: Route53DnsOptions) {}

  private input(action: 'UPSERT' | 'DELETE', recordName: string, values: readonly string[]) {
    const input: ChangeResourceRecordSetsCommandInput = {
      HostedZoneId: this.opts.hostedZoneId,
      ChangeBatch: {
        Comment: `acme dns-01 ${action === 'UPSERT' ? 'challenge' : 'cleanup'}`,
        Changes: [
          {
            Action: action,
            ResourceRecordSet: {
              Name: recordName,
              Type: 'TXT',
              TTL: this.opts.ttlSeconds ?? 60,
              ResourceRecords: values.map((v) => ({ Value: `"${v}"` })),
            },
          },
        ],
      },
    };
    return input;
  }

  async set(recordName: string, values: readonly string[]): Promise<void> {
    const out = await this.opts.client.send(
      new ChangeResourceRecordSetsCommand(this.input('UPSERT', recordName, values)),
    );
    const id = out.ChangeInfo?.Id;
    if (!id) throw new Error(`Route53 returned no change id for ${recordName}`);
    if (out.ChangeInfo?.Status === 'INSYNC') return;
    const deadline = Date.now() + (this.opts.timeoutMs ?? 180_000);
    for (;;) {
      await new Promise((r) => setTimeout(r, this.opts.pollMs ?? 2000));
      const change = await this.opts.client.send(new GetChangeCommand({ Id: id }));
      if (change.ChangeInfo?.Status === 'INSYNC') return;
      if (Date.now() > deadline) throw new Error(`Route53 change ${id} for ${recordName} not INSYNC in time`);
    }
  }

  async remove(recordName: string, values: readonly string[]): Promise<void> {
    try {
      await this.opts.client.send(
        new ChangeResourceRecordSetsCommand(this.input('DELETE', recordName, values)),
      );
    } catch (err) {
      // Already gone (a retried cleanup): nothing to do.
      if ((err as Error).name !== 'InvalidChangeBatch') throw err;
    }
  }
}
