import { join } from 'node:path';
import { Redis } from 'ioredis';
import { TASK_REDIS_FLAGS } from '../core/redis-server-flags.ts';
import { ManagedProcess } from './process.ts';

export interface RedisServerOptions {
  readonly port: number;
  readonly host?: string;
  readonly dir: string;
}

/** redis-server as the task runs it: loopback only, keyspace notifications on, no persistence. */
export async function startRedisServer(opts: RedisServerOptions): Promise<ManagedProcess> {
  const host = opts.host ?? '127.0.0.1';
  return ManagedProcess.start({
    name: `redis:${opts.port}`,
    command: 'redis-server',
    args: ['--port', String(opts.port), '--bind', host, ...TASK_REDIS_FLAGS, '--dir', opts.dir],
    logFile: join(opts.dir, `redis-${opts.port}.log`),
    ready: async (pid) => {
      const client = new Redis({
        host,
        port: opts.port,
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        // Ours, not another redis-server that holds the port (ours would then exit on bind).
        const info = await client.info('server');
        return new RegExp(`^process_id:${pid}\\r?$`, 'm').test(info);
      } finally {
        client.disconnect();
      }
    },
  });
}
