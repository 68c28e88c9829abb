import type { EventOf } from '../events/schema.ts';

/**
 * The edge's field name for a purge (lua/edge/purge.lua names them the same way): t, h:<host>,
 * p:<prefix>, u:<host><path>. Used to keep purge generations in the table for bootstrap.
 */
export function purgeField(p: EventOf<'cache.purge'>['payload']): string {
  switch (p.scope) {
    case 'tenant':
      return 't';
    case 'host':
      return `h:${normalizeHost(p.host)}`;
    case 'prefix':
      return `p:${p.prefix}`;
    case 'url': {
      const m = /^https?:\/\/([^/?#]+)(\/?[^#]*)$/.exec(p.url);
      const authority = m?.[1] ?? '';
      const path = m?.[2] || '/';
      return `u:${normalizeHost(authority.replace(/:\d+$/, ''))}${path}`;
    }
  }
}

function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}
