import { makeEvent } from '../core/events/codec.ts';
import type { EventOf } from '../core/events/schema.ts';
import { purgeField } from '../core/store/purge-fields.ts';
import type { ControlContext } from './context.ts';
import type { Tenants } from './tenants.ts';
import * as valid from './validation.ts';

export type { PurgeTarget } from './validation.ts';

export interface Purged {
  readonly tenant: string;
  readonly scope: 'tenant' | 'host' | 'prefix' | 'url';
  /** The host, prefix or URL purged; absent for the whole tenant. */
  readonly target?: string;
  /** The edge's name for what was purged (t, h:<host>, p:<prefix>, u:<host><path>). */
  readonly field: string;
  /** Milliseconds since the epoch; also the event's version. */
  readonly generation: number;
}

/** Attempts at a generation the table accepts when other purges of the same field race this one. */
const MAX_ATTEMPTS = 5;

/** purge: records a new generation in the table, then publishes cache.purge with it. */
export class Purges {
  private last = 0;

  constructor(
    private readonly ctx: ControlContext,
    private readonly tenants: Tenants,
  ) {}

  async purge(tenant: string, target: valid.PurgeTarget): Promise<Purged> {
    const request = valid.purgeRequest(tenant, target);
    await this.tenants.require(request.tenant);
    const field = purgeField({ ...request, generation: 1 } as EventOf<'cache.purge'>['payload']);
    const generation = await this.record(request.tenant, field);
    const payload = { ...request, generation } as EventOf<'cache.purge'>['payload'];
    await this.ctx.publisher.publish(makeEvent('cache.purge', generation, payload));
    const targetValue =
      request.scope === 'host'
        ? request.host
        : request.scope === 'prefix'
          ? request.prefix
          : request.scope === 'url'
            ? request.url
            : undefined;
    return { tenant: request.tenant, scope: request.scope, target: targetValue, field, generation };
  }

  /**
   * The generation is the clock in ms, but always above this process's last one and above what the
   * table holds for the field: another operator's purge in the same millisecond still gets its own.
   */
  private async record(tenant: string, field: string): Promise<number> {
    let floor = this.last;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const generation = Math.max(this.ctx.now(), floor + 1);
      if ((await this.ctx.store.recordPurge(tenant, field, generation)) === 'written') {
        this.last = generation;
        return generation;
      }
      floor = Math.max(generation, (await this.ctx.store.getPurges(tenant))[field] ?? 0);
    }
    throw new Error(`could not record a purge generation for ${tenant} ${field}: the table kept a newer one`);
  }
}
