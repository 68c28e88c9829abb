import { request } from 'node:http';
import { Redis } from 'ioredis';

/**
 * What a stuck convergence looks like from outside, for the report: the bus's consumer groups
 * (pending, lag), the newest dead letters, and each sqs-listener's event counters.
 */
export async function diagnose(
  busRedisPort: number,
  listeners: readonly { name: string; address: string; port: number }[],
): Promise<string[]> {
  const out: string[] = [];
  const redis = new Redis({ port: busRedisPort, maxRetriesPerRequest: 1, lazyConnect: true });
  redis.on('error', () => {});
  try {
    const groups = (await redis.xinfo('GROUPS', 'edge:events')) as unknown[][];
    for (const g of groups) {
      const f = (k: string) => g[g.indexOf(k) + 1];
      out.push(`bus group ${f('name')}: pending ${f('pending')}, lag ${f('lag')}`);
    }
    const dead = (await redis.xrevrange('edge:events:dead', '+', '-', 'COUNT', 5)) as [string, string[]][];
    for (const [, fields] of dead) out.push(`dead letter: ${fields.join(' ').slice(0, 300)}`);
  } catch (err) {
    out.push(`bus: ${(err as Error).message}`);
  } finally {
    redis.disconnect();
  }
  for (const l of listeners) {
    const text = await get(l.address, l.port, '/metrics').catch((err: Error) => err.message);
    const lines = text.split('\n').filter((x) => /^edge_listener_(events|dead|bootstrap|ready)/.test(x));
    out.push(`${l.name} sqs-listener: ${lines.join('; ').slice(0, 600)}`);
  }
  return out;
}

function get(host: string, port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, timeout: 2000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        text += c;
      });
      res.on('end', () => resolve(text));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
