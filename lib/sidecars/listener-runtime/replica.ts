import type { ChainableCommander, Redis } from 'ioredis';
import type { RedisKeys } from '../../core/redis-format.ts';

/**
 * The task's Redis as a replica of the store. Next to the records the edge reads, one hash,
 * `<prefix>:@versions`, holds the newest version applied per entity ("<v>" or "<v>:del" for a
 * tombstone). Every write goes through one script that compares versions atomically:
 * - an older version changes nothing;
 * - at an equal version a removal wins over an upsert, and nothing else changes;
 * - for certificates the key's own `expiry` also counts, so a certificate the issuer just wrote
 *   here is never replaced by an older one arriving from elsewhere.
 * The redis-listener reads the same hash to tell replicated writes from new ones.
 */
const APPLY = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local v = tonumber(ARGV[2])
local op = ARGV[3]
if cur then
  local cv = tonumber(string.match(cur, '^(%d+)'))
  local cdel = string.sub(cur, -4) == ':del'
  if v < cv then return 0 end
  if v == cv and (cdel or op == 'set') then return 0 end
end
if ARGV[5] == '1' then
  local raw = redis.call('GET', KEYS[2])
  if raw then
    local ok, doc = pcall(cjson.decode, raw)
    local e = ok and type(doc) == 'table' and tonumber(doc.expiry)
    if e and ((op == 'set' and e >= v) or (op == 'del' and e > v)) then return 0 end
  end
end
if op == 'set' then redis.call('SET', KEYS[2], ARGV[4]) else redis.call('DEL', KEYS[2]) end
redis.call('HSET', KEYS[1], ARGV[1], op == 'del' and (ARGV[2] .. ':del') or ARGV[2])
return 1
`;

/** Raises an entity's known version (never lowers it); the redis-listener's note after persisting. */
const NOTE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local cv = cur and tonumber(string.match(cur, '^(%d+)')) or -1
if tonumber(ARGV[2]) > cv then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end
return 0
`;

/** Merges purge generations into the edge's hash (KEYS[1]); a field only moves forward. */
const MERGE_PURGES = `
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0') or 0
  if tonumber(ARGV[i + 1]) > cur then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
`;

type ReplicaCommands = {
  edgeApply(
    versions: string,
    key: string,
    entity: string,
    v: number,
    op: string,
    value: string,
    cert: string,
  ): Promise<number>;
  edgeNote(versions: string, entity: string, v: number): Promise<number>;
  edgeMergePurges(key: string, ...fieldsAndGens: (string | number)[]): Promise<number>;
};

export type Write =
  | {
      readonly op: 'set';
      readonly entity: string;
      readonly version: number;
      readonly key: string;
      readonly value: string;
    }
  | { readonly op: 'del'; readonly entity: string; readonly version: number; readonly key: string };

export class Replica {
  readonly versionsKey: string;
  private readonly r: Redis & ReplicaCommands;

  constructor(
    redis: Redis,
    readonly keys: RedisKeys,
  ) {
    this.versionsKey = `${keys.prefix}:@versions`;
    redis.defineCommand('edgeApply', { numberOfKeys: 2, lua: APPLY });
    redis.defineCommand('edgeNote', { numberOfKeys: 1, lua: NOTE });
    redis.defineCommand('edgeMergePurges', { numberOfKeys: 1, lua: MERGE_PURGES });
    this.r = redis as Redis & ReplicaCommands;
  }

  /** Applies one versioned write; true when it changed the replica. */
  async apply(w: Write): Promise<boolean> {
    return (await this.r.edgeApply(...this.args(w))) === 1;
  }

  /** Queues writes on a pipeline (bootstrap). */
  queue(pipeline: ChainableCommander, w: Write): void {
    (pipeline as unknown as ReplicaCommands).edgeApply(...this.args(w));
  }

  queuePurges(pipeline: ChainableCommander, tenant: string, generations: Record<string, number>): void {
    const flat = Object.entries(generations).flat();
    if (flat.length)
      (pipeline as unknown as ReplicaCommands).edgeMergePurges(this.keys.purge(tenant), ...flat);
  }

  /** The newest version applied for an entity, and whether it is a removal. */
  async known(entity: string): Promise<{ version: number; removed: boolean } | undefined> {
    const cur = await this.r.hget(this.versionsKey, entity);
    if (cur === null) return undefined;
    return { version: Number.parseInt(cur, 10), removed: cur.endsWith(':del') };
  }

  async note(entity: string, version: number): Promise<void> {
    await this.r.edgeNote(this.versionsKey, entity, version);
  }

  private args(w: Write): [string, string, string, number, string, string, string] {
    const cert = w.entity.startsWith('cert:') ? '1' : '0';
    return [this.versionsKey, w.key, w.entity, w.version, w.op, w.op === 'set' ? w.value : '', cert];
  }
}
