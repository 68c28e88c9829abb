import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ManagedProcess } from './process.ts';

const DYNALITE_CLI = fileURLToPath(new URL('../../node_modules/dynalite/cli.js', import.meta.url));

export interface Dynalite {
  readonly process: ManagedProcess;
  readonly endpoint: string;
  /** A client for this dynalite (static dummy credentials, no AWS reached). */
  client(): DynamoDBClient;
}

export function localDynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
}

/** dynalite (DynamoDB's API on LevelDB) in its own process; in memory unless `path` is given. */
export async function startDynalite(opts: { port: number; dir: string; path?: string }): Promise<Dynalite> {
  const endpoint = `http://127.0.0.1:${opts.port}`;
  const args = [
    DYNALITE_CLI,
    '--port',
    String(opts.port),
    '--host',
    '127.0.0.1',
    '--createTableMs',
    '0',
    '--deleteTableMs',
    '0',
    '--updateTableMs',
    '0',
  ];
  if (opts.path) args.push('--path', opts.path);
  const proc = await ManagedProcess.start({
    name: `dynalite:${opts.port}`,
    command: process.execPath,
    args,
    logFile: join(opts.dir, `dynalite-${opts.port}.log`),
    ready: async () => {
      const c = localDynamoClient(endpoint);
      try {
        await c.send(new ListTablesCommand({}));
        return true;
      } finally {
        c.destroy();
      }
    },
  });
  return { process: proc, endpoint, client: () => localDynamoClient(endpoint) };
}
