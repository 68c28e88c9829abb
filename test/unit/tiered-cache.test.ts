import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { httpGet } from '../harness/clients.ts';
import { startLuaNginx } from '../harness/lua-nginx.ts';
import { TestBed } from '../harness/testbed.ts';

// edge.tiered_cache inside a real nginx with two workers. The loader reads a fake backend kept in
// a shared dict, which the test drives: values, failures, a delay, and a count of loader calls.
const bed = new TestBed('tiered-cache');
let port: number;

const TTL_S = 1;
const NEG_TTL_S = 1;
const RESURRECT_S = 1;
/** The version-mode cache's timer interval: set/delete reach every worker within it. */
const INTERVAL_S = 0.2;

const MODULE = `
local tiered_cache = require "edge.tiered_cache"
local cjson = require "cjson.safe"
local backend = ngx.shared.tc_backend
local _M = {}

local function load(key)
    backend:incr("calls:" .. key, 1, 0)
    local delay = backend:get("delay")
    if delay then ngx.sleep(delay) end
    if backend:get("fail") then return nil, "backend down" end
    return backend:get("v:" .. key)
end

local function decode(raw, key)
    backend:incr("decodes:" .. key, 1, 0)
    if raw == "invalid" then return nil, "not a value" end
    return { raw = raw }
end

local function make(name, shm, shared, interval, ttl)
    return tiered_cache.new({
        name = name, shm = shm, negative_shm = "tc_negative", neg_prefix = name .. ":",
        lock_shm = "tc_locks", lru_size = 64, ttl_s = ttl or ${TTL_S}, neg_ttl_s = ${NEG_TTL_S},
        resurrect_ttl_s = ${RESURRECT_S}, lock_wait_s = 2, shared_invalidation = shared,
        invalidation_interval_s = interval,
        load = load, decode = decode,
        on_load_error = function(key, err) ngx.log(ngx.WARN, "load failed: ", key, ": ", err) end,
        on_invalid = function(key, err) ngx.log(ngx.WARN, "invalid: ", key, ": ", err) end,
    })
end

-- "versioned": explicit changes through a version counter read on a timer; a TTL long enough
-- that only the invalidation can explain a worker seeing a change.
local caches = {
    main = make("main", "tc_main", true),
    small = make("small", "tc_small", false),
    versioned = make("versioned", "tc_main", false, ${INTERVAL_S}, 3600),
}

function _M.serve()
    local a = ngx.var
    local cache = caches[a.arg_c or "main"]
    local op, k = a.arg_op, a.arg_k
    local out = { pid = ngx.worker.pid() }
    if op == "get" then
        local v, err, tier = cache:get(k)
        out.value, out.err, out.tier = v and v.raw, err, tier
    elseif op == "peek" then
        local v = cache:peek(k)
        out.value = v and v.raw
    elseif op == "reload" then
        local v, err, tier = cache:reload(k)
        out.value, out.err, out.tier = v and v.raw, err, tier
    elseif op == "set" then
        out.ok = cache:set(k, a.arg_v)
    elseif op == "delete" then
        local version = cache:delete(k)
        if a.arg_await then
            out.ok = cache:await_workers(version, tonumber(a.arg_await))
        end
    elseif op == "backend" then
        if a.arg_v then backend:set("v:" .. k, a.arg_v) else backend:delete("v:" .. k) end
    elseif op == "lose" then
        -- A delete whose log entry is gone (as if the dict evicted it).
        ngx.shared.tc_main:delete(k)
        ngx.shared.tc_main:incr("!v:versioned", 1, 0)
    elseif op == "start" then
        out.epoch = cache:start_epoch(5)
    elseif op == "push" then
        out.ok, out.err = cache:push(k, a.arg_v, tonumber(a.arg_e))
    elseif op == "expire" then
        cache:expire(k)
    elseif op == "end" then
        cache:end_live(tonumber(a.arg_e))
    elseif op == "live" then
        out.ok = cache:set_live(tonumber(a.arg_e), 5)
    elseif op == "fail" then
        backend:set("fail", a.arg_on == "1" or nil)
    elseif op == "delay" then
        backend:set("delay", tonumber(a.arg_s))
    elseif op == "calls" then
        out.calls = backend:get("calls:" .. k) or 0
        out.decodes = backend:get("decodes:" .. k) or 0
        out.shm = ngx.shared[a.arg_shm or "tc_main"]:get(k)
    end
    ngx.say(cjson.encode(out))
end

return _M
`;

interface Out {
  pid: number;
  epoch?: number;
  ok?: boolean;
  value?: string;
  err?: string;
  tier?: string;
  calls?: number;
  decodes?: number;
  shm?: string;
}

async function call(params: Record<string, string>): Promise<Out> {
  const res = await httpGet({ port, path: `/t?${new URLSearchParams(params)}` });
  expect(res.status).toBe(200);
  return JSON.parse(res.body) as Out;
}

const get = (k: string, c = 'main') => call({ op: 'get', k, c });
const backend = (k: string, v?: string) =>
  call(v === undefined ? { op: 'backend', k } : { op: 'backend', k, v });
const calls = async (k: string, shm = 'tc_main') => await call({ op: 'calls', k, shm });

beforeAll(async () => {
  await writeFile(join(bed.dir, 'tc_test.lua'), MODULE);
  port = await startLuaNginx(bed, {
    name: 'nginx-tiered-cache',
    workers: 2,
    workerConnections: 256,
    luaPaths: [`${bed.dir}/?.lua`],
    readyPath: '/t?op=calls&k=ready',
    http: (port) => `  lua_shared_dict tc_backend 1m;
  lua_shared_dict tc_main 1m;
  lua_shared_dict tc_small 64k;
  lua_shared_dict tc_negative 64k;
  lua_shared_dict tc_locks 1m;
  init_by_lua_block { require "tc_test" }
  init_worker_by_lua_block { require("edge.tiered_cache").init_worker() }
  server {
    listen 127.0.0.1:${port} reuseport;
    keepalive_timeout 0;
    location /t { content_by_lua_block { require("tc_test").serve() } }
  }`,
  });
});

/** Requests until both workers answered (reuseport spreads connections; bounded). */
async function everyWorker(fn: () => Promise<Out>, check: (o: Out) => void): Promise<void> {
  const pids = new Set<number>();
  for (let i = 0; i < 200 && pids.size < 2; i++) {
    const out = await fn();
    check(out);
    pids.add(out.pid);
  }
  expect(pids.size).toBe(2);
}

describe('edge.tiered_cache: worker LRU → shared dict → loader', () => {
  it('loads a key once, then answers from the worker LRU or the shared dict', async () => {
    await backend('a', 'A1');
    const first = await get('a');
    expect(first).toMatchObject({ value: 'A1', tier: 'loader' });
    await everyWorker(
      () => get('a'),
      (o) => {
        expect(o.value).toBe('A1');
        expect(['lru', 'shm']).toContain(o.tier);
      },
    );
    expect((await calls('a')).calls).toBe(1);
  });

  it('serves a value changed behind its back within the TTL, and parses it again only when it changed', async () => {
    await backend('b', 'B1');
    await everyWorker(
      () => get('b'),
      (o) => expect(o.value).toBe('B1'),
    );
    // Revalidated after the TTL: same raw value, no second decode in a worker that has it.
    await sleep(TTL_S * 1000 + 300);
    await everyWorker(
      () => get('b'),
      (o) => expect(o.value).toBe('B1'),
    );
    expect((await calls('b')).decodes).toBeLessThanOrEqual(2);
    await backend('b', 'B2');
    const changed = Date.now();
    await vi.waitFor(async () => expect((await get('b')).value).toBe('B2'), { timeout: 5000, interval: 50 });
    // The bound: TTL plus the second granularity of the shared dict's freshness (generous).
    expect(Date.now() - changed).toBeLessThan((TTL_S + 2) * 1000);
    await everyWorker(
      () => get('b'),
      (o) => expect(o.value).toBe('B2'),
    );
  });

  it('remembers an absent key in the negative dict for its TTL only', async () => {
    expect(await get('n')).toMatchObject({ tier: 'loader' });
    expect((await get('n')).value).toBeUndefined();
    const second = await get('n');
    expect(['negative', 'loader']).toContain(second.tier);
    await backend('n', 'N1');
    await vi.waitFor(async () => expect((await get('n')).value).toBe('N1'), { timeout: 5000, interval: 50 });
    // Absent answers never take room in the positive dict.
    expect((await calls('nothing-here')).shm).toBeUndefined();
  });

  it('runs one load per key at a time across workers', async () => {
    await backend('s', 'S1');
    await call({ op: 'delay', s: '0.3' });
    const outs = await Promise.all(Array.from({ length: 24 }, () => get('s')));
    await call({ op: 'delay', s: '0' });
    expect(outs.map((o) => o.value)).toEqual(Array(24).fill('S1'));
    expect((await calls('s')).calls).toBe(1);
  });

  it('serves the last known copy while the loader fails, trying it once per resurrect window', async () => {
    await backend('r', 'R1');
    expect((await get('r')).value).toBe('R1');
    await call({ op: 'fail', on: '1' });
    try {
      const before = (await calls('r')).calls ?? 0;
      await sleep(TTL_S * 1000 + 200);
      const tiers = new Set<string>();
      const until = Date.now() + 2500;
      while (Date.now() < until) {
        const o = await get('r');
        expect(o.value).toBe('R1');
        tiers.add(o.tier ?? '');
        await sleep(25);
      }
      expect(tiers.has('stale')).toBe(true);
      // ~2.5 s of requests on two workers: about one load per resurrect window, not one per request.
      expect(((await calls('r')).calls ?? 0) - before).toBeLessThanOrEqual(Math.ceil(2.5 / RESURRECT_S) + 2);
      // A key never seen has nothing to serve: the error, not a negative answer.
      const unknown = await get('never-seen');
      expect(unknown.value).toBeUndefined();
      expect(unknown.err).toBe('backend down');
    } finally {
      await call({ op: 'fail', on: '0' });
    }
    await backend('r', 'R2');
    await vi.waitFor(async () => expect((await get('r')).value).toBe('R2'), { timeout: 5000, interval: 50 });
  });

  it('set and delete reach every worker at once', async () => {
    await backend('d', 'D1');
    await everyWorker(
      () => get('d'),
      (o) => expect(o.value).toBe('D1'),
    );
    await backend('d', 'D2');
    await call({ op: 'delete', k: 'd' });
    await everyWorker(
      () => get('d'),
      (o) => expect(o.value).toBe('D2'),
    );

    await call({ op: 'set', k: 'd', v: 'D3' });
    const before = (await calls('d')).calls;
    await everyWorker(
      () => get('d'),
      (o) => expect(o.value).toBe('D3'),
    );
    expect((await calls('d')).calls).toBe(before);
  });

  it('version mode: set and delete reach every worker within the timer interval, LRU hits read nothing shared', async () => {
    const bound = { timeout: INTERVAL_S * 1000 + 1000, interval: 20 }; // the interval, plus scheduling slack
    await backend('v', 'V1');
    await everyWorker(
      () => get('v', 'versioned'),
      (o) => expect(o.value).toBe('V1'),
    );
    // Behind the cache's back: the LRU (TTL 1 h) keeps V1 everywhere.
    await backend('v', 'V2');
    await everyWorker(
      () => get('v', 'versioned'),
      (o) => expect(o).toMatchObject({ value: 'V1', tier: 'lru' }),
    );
    // An explicit delete in one worker: every worker drops its copy within the bound.
    await call({ op: 'delete', k: 'v', c: 'versioned' });
    await vi.waitFor(
      () =>
        everyWorker(
          () => get('v', 'versioned'),
          (o) => expect(o.value).toBe('V2'),
        ),
      bound,
    );
    await call({ op: 'set', k: 'v', v: 'V3', c: 'versioned' });
    await vi.waitFor(
      () =>
        everyWorker(
          () => get('v', 'versioned'),
          (o) => expect(o.value).toBe('V3'),
        ),
      bound,
    );
  });

  it('version mode: await_workers returns once every worker has applied the change', async () => {
    await backend('w', 'W1');
    await everyWorker(
      () => get('w', 'versioned'),
      (o) => expect(o.value).toBe('W1'),
    );
    await backend('w', 'W2');
    expect(await call({ op: 'delete', k: 'w', c: 'versioned', await: '5' })).toMatchObject({ ok: true });
    // No waiting: when delete answered, no worker had W1 any more.
    for (let i = 0; i < 20; i++) expect((await get('w', 'versioned')).value).toBe('W2');
  });

  it('version mode: a change whose log entry is gone empties every LRU instead', async () => {
    await backend('x', 'X1');
    await everyWorker(
      () => get('x', 'versioned'),
      (o) => expect(o.value).toBe('X1'),
    );
    await backend('x', 'X2');
    await call({ op: 'lose', k: 'x' });
    await vi.waitFor(
      () =>
        everyWorker(
          () => get('x', 'versioned'),
          (o) => expect(o.value).toBe('X2'),
        ),
      { timeout: 2 * INTERVAL_S * 1000 + 1000, interval: 20 }, // two ticks: logged late, or gone
    );
  });

  it('reload reads the loader past a remembered miss', async () => {
    await get('late');
    await backend('late', 'L1');
    expect(await call({ op: 'reload', k: 'late' })).toMatchObject({ value: 'L1', tier: 'loader' });
  });

  it('treats an invalid stored value as absent', async () => {
    await backend('bad', 'invalid');
    const o = await get('bad');
    expect(o.value).toBeUndefined();
    expect(o.err).toBeUndefined();
    expect((await calls('bad')).shm).toBeUndefined();
  });

  it('a flood of unknown keys cannot evict known values: they serve through a loader outage', async () => {
    const known = ['k1', 'k2', 'k3', 'k4', 'k5'];
    for (const k of known) {
      await backend(k, `${k}-value`);
      expect((await get(k, 'small')).value).toBe(`${k}-value`);
    }
    // Many times what the 64k negative dict holds.
    for (let i = 0; i < 40; i++) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => get(`flood-${i}-${j}`, 'small')));
    }
    for (const k of known) expect((await calls(k, 'tc_small')).shm).toBe(`${k}-value`);
    await call({ op: 'fail', on: '1' });
    try {
      await sleep(TTL_S * 1000 + 200);
      for (const k of known) {
        await everyWorker(
          () => get(k, 'small'),
          (o) => expect(o.value).toBe(`${k}-value`),
        );
      }
    } finally {
      await call({ op: 'fail', on: '0' });
    }
  });

  it('push: a pushed value stays fresh past its TTL while its watch is live, without the loader', async () => {
    const { epoch } = await call({ op: 'start' });
    expect(epoch).toBeGreaterThan(0);
    await backend('p', 'P-old');
    expect((await call({ op: 'push', k: 'p', v: 'P1', e: String(epoch) })).ok).toBe(true);
    expect(await get('p')).toMatchObject({ value: 'P1', tier: 'shm' });
    // Past the TTL (1 s): the worker LRU looks at the shared dict again, which is still fresh.
    await sleep(TTL_S * 1000 + 300);
    await everyWorker(
      () => get('p'),
      (o) => expect(o).toMatchObject({ value: 'P1' }),
    );
    expect((await calls('p')).calls).toBe(0);
    // A changed value reaches every worker at once (this cache marks changes in the shared dict).
    expect((await call({ op: 'push', k: 'p', v: 'P2', e: String(epoch) })).ok).toBe(true);
    await everyWorker(
      () => get('p'),
      (o) => expect(o.value).toBe('P2'),
    );
    expect((await calls('p')).calls).toBe(0);
  });

  it('push: once the watch ended, pushed values are due and read from the loader again', async () => {
    const { epoch } = await call({ op: 'start' });
    await backend('q', 'Q-loader');
    await call({ op: 'push', k: 'q', v: 'Q-pushed', e: String(epoch) });
    expect((await get('q')).value).toBe('Q-pushed');
    await call({ op: 'end', e: String(epoch) });
    await sleep(TTL_S * 1000 + 300);
    expect(await get('q')).toMatchObject({ value: 'Q-loader', tier: 'loader' });
    expect((await calls('q')).calls).toBe(1);
  });

  it("push: a newer watch's epoch makes the older one's values due, and the older one cannot renew", async () => {
    const first = (await call({ op: 'start' })).epoch as number;
    await backend('r', 'R-loader');
    await call({ op: 'push', k: 'r', v: 'R-first', e: String(first) });
    const second = (await call({ op: 'start' })).epoch as number;
    expect(second).toBeGreaterThan(first);
    expect((await call({ op: 'live', e: String(first) })).ok).toBe(false);
    expect((await call({ op: 'live', e: String(second) })).ok).toBe(true);
    await sleep(TTL_S * 1000 + 300);
    expect(await get('r')).toMatchObject({ value: 'R-loader', tier: 'loader' });
  });

  it('expire: a pushed value made due is read from the loader again, and kept to serve if the loader fails', async () => {
    const { epoch } = await call({ op: 'start' });
    await backend('x', 'X-loader');
    await call({ op: 'push', k: 'x', v: 'X-pushed', e: String(epoch) });
    expect((await get('x')).value).toBe('X-pushed');
    await call({ op: 'expire', k: 'x' });
    await call({ op: 'fail', on: '1' });
    try {
      await sleep(TTL_S * 1000 + 300);
      // The loader fails: the copy is still served, nothing was lost.
      expect(await get('x')).toMatchObject({ value: 'X-pushed', tier: 'stale' });
    } finally {
      await call({ op: 'fail', on: '0' });
    }
    await sleep(RESURRECT_S * 1000 + 300);
    expect(await get('x')).toMatchObject({ value: 'X-loader', tier: 'loader' });
  });

  it('push: a full dict refuses a pushed value and evicts nothing', async () => {
    const { epoch } = await call({ op: 'start' });
    const big = 'x'.repeat(4000);
    let refused = 0;
    for (let i = 0; i < 40 && refused === 0; i++) {
      const out = await call({ op: 'push', k: `full${i}`, v: `${i}${big}`, e: String(epoch), c: 'small' });
      if (!out.ok) {
        expect(out.err).toBe('no memory');
        refused = i;
      }
    }
    expect(refused).toBeGreaterThan(0);
    // Every value pushed before the refusal is still there.
    for (let i = 0; i < refused; i++) expect((await calls(`full${i}`, 'tc_small')).shm).toBe(`${i}${big}`);
  });

  it('logs no error', async () => {
    const log = await readFile(join(bed.dir, 'error.log'), 'utf8');
    expect(log.split('\n').filter((l) => /\[(error|crit|alert|emerg)\]/.test(l))).toEqual([]);
  });
});
