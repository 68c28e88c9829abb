-- One tiered cache for everything the edge reads from Redis (certificates, routing records, purge
-- state), in the shape of Kong's mlcache: this worker's LRU of decoded values, then a shared dict
-- of the raw values every worker reads, then the loader (Redis).
--
-- * Positive TTL (ttl_s): a raw value is read again from the loader at most this long after it
--   was loaded, so whatever reaches Redis by any path (event, bootstrap, hand repair) is served
--   within ttl_s. Decoding is skipped when the raw value did not change (certificates are
--   expensive to parse).
-- * Negative TTL (neg_ttl_s): "absent" answers live in their own bounded dict (negative_shm),
--   never in the LRU or the positive dict, so a flood of unknown keys evicts only other negative
--   answers, never the known-good values that serve during an outage.
-- * Serve stale on error (resurrect_ttl_s): when the loader fails, the last known value is served
--   and counted fresh for resurrect_ttl_s before the loader is tried again. Positive entries in
--   the shared dict never expire by themselves (only the dict's own LRU evicts them when full), so
--   an outage of any length keeps serving known keys.
-- * One load per key at a time across workers: a shared-dict `add` lock (lua-resty-lock is not
--   packaged by Debian). A worker that finds the lock taken serves its stale copy at once, or,
--   with nothing to serve, waits up to lock_wait_s for the holder's answer.
-- * Explicit invalidation: delete(key) and set(key, raw) take effect in every worker at once for
--   caches made with shared_invalidation (one shared-dict read per LRU hit); within
--   invalidation_interval_s for caches made with it (nothing on an LRU hit: a version counter and
--   a log of changed keys in the shared dict, read by a timer in every worker); other caches
--   converge within ttl_s.
--
-- * Pushed values (push): a writer that watches the loader's store (edge.cert_push: Redis's
--   keyspace notifications) puts each value in the shared dict as it is written, tagged with the
--   number of its watch ("epoch"). A pushed value is fresh for as long as that watch is the live
--   one (set_live), with no TTL: every later write reaches the dict through the same watch. When
--   the watch breaks (or stops renewing its mark), every pushed value is treated as due and read
--   from the loader again, until a new watch has pushed it again.
--
-- Values in the shared dict are the loader's raw strings; the flags hold the second (ngx.time)
-- until which the value is fresh, or, for a pushed value, its watch's epoch (below EPOCH_LIMIT:
-- no second of this century is). Keys starting with "!" are the cache's own (host names, record
-- keys and tenant ids never start with it).
local lrucache = require "resty.lrucache"
local log = require "edge.log"

local now = ngx.now
local time = ngx.time
local sleep = ngx.sleep
local update_time = ngx.update_time
local min = math.min
local max = math.max
local error = error
local tostring = tostring
local setmetatable = setmetatable
local worker_id = ngx.worker.id
local worker_count = ngx.worker.count
local every = ngx.timer.every

local _M = {}
local mt = { __index = _M }

local MARK = "!f:" -- "!f:<key>" = ngx.now() when the key was last set or deleted explicitly
-- Version mode, per cache: "!v:<cache>" = the number of explicit changes so far; "!c:<cache>:<n>"
-- = the key of change n; "!w:<cache>:<worker id>" = the last version that worker applied.
-- A worker that falls more than LOG_SPAN changes behind (or finds a log entry gone) empties
-- its LRU instead of replaying the log.
local LOG_SPAN = 1000
-- Flags below this are a watch's epoch, not a time (2^30 s is January 2004).
local EPOCH_LIMIT = 2 ^ 30
-- A time long past: promote() with it keeps the value as a stale copy only.
local DUE = EPOCH_LIMIT

-- Caches in version mode, for init_worker to start their timers.
local versioned = {}

local function dict(name)
    local shm = ngx.shared[name]
    if not shm then
        error("edge: lua_shared_dict " .. tostring(name) .. " is not declared")
    end
    return shm
end

local function positive(opts, field)
    local v = opts[field]
    if type(v) ~= "number" or v <= 0 then
        error("edge: tiered cache " .. tostring(opts.name) .. ": " .. field .. " must be a positive number")
    end
    return v
end

-- Options (all required unless marked):
--   name             for logs
--   shm              positive shared dict (raw values)
--   negative_shm     shared dict for "absent" answers; neg_prefix keeps caches apart in it
--   lock_shm         shared dict for the load locks
--   lru_size         decoded values per worker
--   ttl_s, neg_ttl_s, resurrect_ttl_s, lock_wait_s
--   load(key)        -> raw string | nil (absent), or nil, err (the loader failed)
--   decode(raw, key) -> value, or nil, err (the stored value is invalid: treated as absent)
--   on_load_error(key, err)    optional: metrics and logs of the caller's kind
--   on_invalid(key, err)       optional
--   shared_invalidation        optional: every LRU hit checks a marker in the shared dict so
--                              set/delete reach every worker at once (one shared-dict read per hit)
--   invalidation_interval_s    optional, instead: set/delete reach every worker within this many
--                              seconds (a timer per worker; LRU hits read nothing shared); needs
--                              tiered_cache.init_worker() in init_worker_by_lua
function _M.new(opts)
    local lru, err = lrucache.new(opts.lru_size)
    if not lru then
        error("edge: failed to create the " .. tostring(opts.name) .. " LRU: " .. tostring(err))
    end
    if type(opts.load) ~= "function" or type(opts.decode) ~= "function" then
        error("edge: tiered cache " .. tostring(opts.name) .. " needs load and decode functions")
    end
    local self = {
        name = opts.name,
        lru = lru,
        shm = dict(opts.shm),
        negative = dict(opts.negative_shm),
        locks = dict(opts.lock_shm),
        neg_prefix = opts.neg_prefix or "",
        lock_prefix = "tc:" .. opts.name .. ":",
        ttl = positive(opts, "ttl_s"),
        neg_ttl = positive(opts, "neg_ttl_s"),
        resurrect_ttl = positive(opts, "resurrect_ttl_s"),
        lock_wait = positive(opts, "lock_wait_s"),
        load_fn = opts.load,
        decode = opts.decode,
        on_load_error = opts.on_load_error,
        on_invalid = opts.on_invalid,
        shared_invalidation = opts.shared_invalidation and true or false,
        live_key = "!live:" .. opts.name,
        epoch_key = "!epoch:" .. opts.name,
    }
    -- A lock outlives a hung loader by this much at most; the loader's own timeouts end it sooner.
    self.lock_ttl = self.lock_wait + 1
    if opts.invalidation_interval_s ~= nil then
        if self.shared_invalidation then
            error("edge: tiered cache " .. tostring(opts.name)
                .. ": shared_invalidation and invalidation_interval_s exclude each other")
        end
        self.interval = positive(opts, "invalidation_interval_s")
        self.version_key = "!v:" .. opts.name
        self.log_prefix = "!c:" .. opts.name .. ":"
        self.seen_prefix = "!w:" .. opts.name .. ":"
        -- Log entries outlive many intervals, so a worker that misses a few ticks can replay them.
        self.log_ttl = max(60, self.interval * 100)
        self.seen = 0
        versioned[#versioned + 1] = self
    end
    return setmetatable(self, mt)
end

-- Whether a shared-dict value with these flags is fresh: a time still ahead, or the epoch of the
-- live watch (one more shared-dict read, on the shared-dict tier only).
local function fresh(self, flags)
    if flags >= EPOCH_LIMIT then
        return flags > time()
    end
    return flags == self.shm:get(self.live_key)
end

-- How long this worker's LRU keeps a value before looking at the shared dict again.
local function lru_ttl(self, flags)
    if flags < EPOCH_LIMIT then
        return self.ttl
    end
    local ttl = flags - now()
    -- An entry already due keeps a tiny TTL: still there as the stale copy of the next lookup.
    return ttl > 0 and ttl or 0.001
end

-- True when the worker's entry predates an explicit set/delete in another worker (marker mode:
-- the only shared-dict read on an LRU hit; caches in version mode read nothing here).
local function invalidated(self, key, entry)
    if not self.shared_invalidation then
        return false
    end
    local marked = self.shm:get(MARK .. key)
    return marked ~= nil and marked >= entry.at
end

-- Decodes raw (reusing the previous decoded value when raw did not change) and keeps it in this
-- worker's LRU until `fresh_until` (a time, or a pushed value's epoch: then ttl_s). Returns the
-- value, or nil and the decoder's error.
local function promote(self, key, raw, fresh_until, previous)
    local value
    if previous and previous.raw == raw then
        value = previous.value
    else
        local err
        value, err = self.decode(raw, key)
        if value == nil then
            return nil, err or "invalid value"
        end
    end
    self.lru:set(key, { value = value, raw = raw, at = now() }, lru_ttl(self, fresh_until))
    return value
end

local function invalid(self, key, err)
    if self.on_invalid then
        self.on_invalid(key, err)
    else
        log.err("cache_invalid_value", { cache = self.name, key = key, err = err })
    end
    self.lru:delete(key)
    self.shm:delete(key)
    self.negative:set(self.neg_prefix .. key, true, self.neg_ttl)
end

local function store(self, key, raw, fresh_until)
    local ok, err = self.shm:set(key, raw, 0, fresh_until)
    if not ok then
        log.warn("cache_store_failed", { cache = self.name, key = key, err = err })
    end
end

-- Asks the loader and updates every tier. `last` is the raw value known before (stale), and
-- `previous` this worker's LRU entry, if any. Returns value, err, tier.
local function load(self, key, last, previous)
    local raw, err = self.load_fn(key)
    if err then
        if self.on_load_error then
            self.on_load_error(key, err)
        else
            log.warn("cache_load_failed", { cache = self.name, key = key, err = err })
        end
        if last == nil then
            return nil, err, "error"
        end
        -- Resurrect the last known copy: served, and the loader left alone, for resurrect_ttl_s.
        local fresh_until = time() + self.resurrect_ttl
        store(self, key, last, fresh_until)
        local value, derr = promote(self, key, last, fresh_until, previous)
        if value == nil then
            invalid(self, key, derr)
            return nil, err, "error"
        end
        return value, nil, "stale"
    end
    if raw == nil then
        self.lru:delete(key)
        self.shm:delete(key)
        self.negative:set(self.neg_prefix .. key, true, self.neg_ttl)
        return nil, nil, "loader"
    end
    local fresh_until = time() + self.ttl
    local value, derr = promote(self, key, raw, fresh_until, previous)
    if value == nil then
        invalid(self, key, derr)
        return nil, nil, "loader"
    end
    store(self, key, raw, fresh_until)
    self.negative:delete(self.neg_prefix .. key)
    return value, nil, "loader"
end

-- Another worker holds the load lock: wait for it to finish (or lock_wait_s), then read the
-- shared dicts again. Returns found, value, tier; found is false when nothing settled.
local function await(self, key, lock)
    update_time()
    local deadline = now() + self.lock_wait
    local step = 0.001
    while self.locks:get(lock) do
        local left = deadline - now()
        if left <= 0 then
            return false
        end
        sleep(min(step, left))
        step = min(step * 2, 0.05)
        update_time()
    end
    local raw, fresh_until = self.shm:get(key)
    if raw ~= nil and fresh(self, fresh_until) then
        local value, err = promote(self, key, raw, fresh_until, nil)
        if value == nil then
            invalid(self, key, err)
            return true, nil, "shm"
        end
        return true, value, "shm"
    end
    if self.negative:get(self.neg_prefix .. key) then
        return true, nil, "negative"
    end
    return false
end

-- Returns value, err, tier. value nil and err nil: the key is absent. err: the loader failed and
-- nothing is known. tier: "lru", "shm", "negative" (remembered absent), "loader", "stale" (a
-- known copy served because the loader failed or another worker is loading), "error".
-- Loads (and waits for other workers) only in phases that may yield.
function _M.get(self, key)
    local entry, stale = self.lru:get(key)
    if entry then
        if not invalidated(self, key, entry) then
            return entry.value, nil, "lru"
        end
        stale = entry
    end

    local raw, fresh_until = self.shm:get(key)
    if raw ~= nil then
        if fresh(self, fresh_until) then
            local value, err = promote(self, key, raw, fresh_until, stale)
            if value == nil then
                invalid(self, key, err)
                return nil, nil, "shm"
            end
            return value, nil, "shm"
        end
    elseif self.negative:get(self.neg_prefix .. key) then
        return nil, nil, "negative"
    end
    local last = raw
    if last == nil and stale then
        last = stale.raw
    end

    local lock = self.lock_prefix .. key
    local locked, lerr = self.locks:add(lock, true, self.lock_ttl)
    if not locked and lerr == "exists" then
        if last ~= nil then
            -- Someone is loading it now: the known copy, without waiting.
            if stale and stale.raw == last then
                return stale.value, nil, "stale"
            end
            local value = promote(self, key, last, DUE, stale)
            if value ~= nil then
                return value, nil, "stale"
            end
        end
        local found, value, tier = await(self, key, lock)
        if found then
            return value, nil, tier
        end
    elseif not locked then
        log.warn("cache_lock_failed", { cache = self.name, key = key, err = lerr })
    end
    local value, err, tier = load(self, key, last, stale)
    if locked then
        self.locks:delete(lock)
    end
    return value, err, tier
end

-- Reads the loader now, past every tier (and the negative answer), and updates them.
-- For a caller that knows the value just changed (the issuer's certificate landed).
function _M.reload(self, key)
    local entry, stale = self.lru:get(key)
    local last = self.shm:get(key)
    local previous = entry or stale
    if last == nil and previous then
        last = previous.raw
    end
    return load(self, key, last, previous)
end

-- This worker's decoded value without any I/O, also past its TTL (for phases that cannot
-- yield, such as header filters). nil when this worker has none.
function _M.peek(self, key)
    local entry, stale = self.lru:get(key)
    entry = entry or stale
    return entry and entry.value
end

-- Version mode: counts the change and logs its key, for the other workers' timers.
local function log_change(self, key)
    local shm = self.shm
    local v, err = shm:incr(self.version_key, 1, 0)
    if not v then
        log.warn("cache_mark_failed", { cache = self.name, key = key, err = err })
        return
    end
    local ok
    ok, err = shm:set(self.log_prefix .. v, key, self.log_ttl)
    if not ok then
        log.warn("cache_mark_failed", { cache = self.name, key = key, err = err })
    end
    return v
end

local function mark(self, key)
    if self.version_key then
        local v = log_change(self, key)
        -- This worker applies it now (its LRU entry is gone already), so waiting for every
        -- worker never waits for this one's timer.
        _M.apply_changes(self)
        return v
    end
    if self.shared_invalidation then
        -- The real time, not the cached one: an entry another worker read before this change
        -- always carries an earlier `at` than the marker.
        update_time()
        -- Outlives every LRU entry made before it (fresh for ttl_s, or resurrect_ttl_s).
        local ok, err = self.shm:set(MARK .. key, now(), max(self.ttl, self.resurrect_ttl) + 1)
        if not ok then
            log.warn("cache_mark_failed", { cache = self.name, key = key, err = err })
        end
    end
end

-- Publishes a raw value the caller just wrote to the loader's store (a purge applied here):
-- fresh for ttl_s in the shared dict; in every worker at once with shared_invalidation, within
-- invalidation_interval_s in version mode (then returns true and the change's version, see
-- await_workers).
function _M.set(self, key, raw)
    local fresh_until = time() + self.ttl
    local ok, err = self.shm:set(key, raw, 0, fresh_until)
    if not ok then
        return nil, "failed to store " .. self.name .. " value: " .. tostring(err)
    end
    self.negative:delete(self.neg_prefix .. key)
    self.lru:delete(key)
    return true, mark(self, key)
end

-- Watches (see "Pushed values" above). A watch starts with start_epoch() once it is subscribed,
-- calls set_live() well within live_ttl_s while it stays subscribed, and end_live() when its
-- subscription broke.

-- A new watch, just subscribed: starts the next epoch, which makes every value pushed before it
-- due (a watch never adopts another's epoch: a watch whose worker was killed cannot say until
-- when it saw every write). The watch then pushes every current value again (its sync).
-- Returns the epoch, or nil and an error.
function _M.start_epoch(self, live_ttl_s)
    local epoch, err = self.shm:incr(self.epoch_key, 1, 0)
    if not epoch then
        return nil, err
    end
    if epoch >= EPOCH_LIMIT then -- a billion watches: start over (no pushed value is that old)
        self.shm:set(self.epoch_key, 1)
        epoch = 1
    end
    local ok
    ok, err = self.shm:set(self.live_key, epoch, live_ttl_s)
    if not ok then
        return nil, err
    end
    return epoch
end

-- Keeps `epoch` live for live_ttl_s more, unless a newer watch started (then returns false: the
-- older watch has been replaced, as when a reload's new worker started its own).
function _M.set_live(self, epoch, live_ttl_s)
    local live = self.shm:get(self.live_key)
    if live ~= nil and live ~= epoch then
        return false
    end
    if live == nil and (self.shm:get(self.epoch_key) or 0) ~= epoch then
        return false
    end
    return self.shm:set(self.live_key, epoch, live_ttl_s)
end

-- The watch of `epoch` broke: its pushed values are due from now on (a newer watch's are not).
function _M.end_live(self, epoch)
    if self.shm:get(self.live_key) == epoch then
        self.shm:delete(self.live_key)
    end
end

-- Puts a value the watch of `epoch` saw written in the shared dict, fresh while that watch is live.
-- Never evicts anything (safe_set): a full dict refuses it, and the key stays with the loader.
-- A changed value reaches every worker's parsed copy as delete() does.
function _M.push(self, key, raw, epoch)
    local old = self.shm:get(key)
    local ok, err = self.shm:safe_set(key, raw, 0, epoch)
    if not ok then
        return nil, err
    end
    self.negative:delete(self.neg_prefix .. key)
    if old ~= nil and old ~= raw then
        self.lru:delete(key)
        mark(self, key)
    end
    return true
end

-- Makes a key's shared copy due, keeping it as the stale copy: each worker reads the loader once
-- its LRU entry is due too (within ttl_s), and serves this copy if the loader fails. For a writer
-- that knows the value may have changed but could not read it.
function _M.expire(self, key)
    local raw = self.shm:get(key)
    if raw ~= nil then
        self.shm:set(key, raw, 0, DUE)
    end
end

-- Forgets a key in every tier: the next lookup asks the loader. In every worker at once with
-- shared_invalidation, else within ttl_s.
-- In version mode, returns the change's version (see await_workers).
function _M.delete(self, key)
    self.lru:delete(key)
    self.shm:delete(key)
    self.negative:delete(self.neg_prefix .. key)
    return mark(self, key)
end

-- Version mode: drops from this worker's LRU every key changed since the last call.
function _M.apply_changes(self)
    local shm = self.shm
    local current = shm:get(self.version_key) or 0
    local seen = self.seen
    if current ~= seen then
        if current < seen or current - seen > LOG_SPAN then
            -- Behind by more than the log holds (or the dict was emptied): start over.
            self.lru:flush_all()
            seen = current
        else
            local lru, prefix = self.lru, self.log_prefix
            for v = seen + 1, current do
                local key = shm:get(prefix .. v)
                if key == nil then
                    if v == self.missing then
                        -- Gone since the last tick (evicted): empty the LRU rather than guess.
                        lru:flush_all()
                        seen = current
                        break
                    end
                    -- Counted but not logged yet (the writer is between incr and set): next tick.
                    self.missing = v
                    break
                end
                lru:delete(key)
                seen = v
            end
        end
        self.seen = seen
    end
    local ok, err = shm:set(self.seen_prefix .. worker_id(), seen, self.log_ttl)
    if not ok then
        log.warn("cache_mark_failed", { cache = self.name, err = err })
    end
end

-- Version mode: waits (yielding, up to timeout_s) until every worker has applied `version`.
-- Returns true, or false when some worker had not within the timeout.
function _M.await_workers(self, version, timeout_s)
    if not version then
        return true
    end
    local shm, prefix, n = self.shm, self.seen_prefix, worker_count()
    update_time()
    local deadline = now() + timeout_s
    while true do
        local all = true
        for id = 0, n - 1 do
            local seen = shm:get(prefix .. id)
            if not seen or seen < version then
                all = false
                break
            end
        end
        if all then
            return true
        end
        if now() >= deadline then
            return false
        end
        sleep(min(self.interval / 2, 0.05))
        update_time()
    end
end

local function tick(premature, self)
    if premature then
        return
    end
    self:apply_changes()
end

-- Starts the change-log timer of every cache in version mode (init_worker_by_lua).
function _M.init_worker()
    for _, cache in ipairs(versioned) do
        -- This worker starts with an empty LRU: every change so far is applied already.
        cache.seen = cache.shm:get(cache.version_key) or 0
        cache:apply_changes()
        local ok, err = every(cache.interval, tick, cache)
        if not ok then
            log.err("cache_timer_failed", { cache = cache.name, err = err })
        end
    end
end

return _M
