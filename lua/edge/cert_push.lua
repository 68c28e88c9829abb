-- Puts certificates into the edge's shared dict as they are written to Redis, so that the first
-- handshake of a name in a worker reads the shared dict instead of Redis (a Redis GET from the
-- certificate phase costs ~200 µs of CPU; a shared-dict read ~1 µs). The Redis format is
-- unchanged; the shared dict holds the record in edge.tls's derived form (no JSON to decode in a
-- handshake).
--
-- One watch per nginx instance, in worker 0: a subscription to Redis's keyspace notifications for
-- `<prefix>:*:latest` (the task's Redis runs with notify-keyspace-events K$gx,
-- lib/core/redis-server-flags.ts). Each subscription
--   1. subscribes, then starts a new epoch of the certificate cache (edge.tiered_cache): what
--      earlier watches pushed is due from then on and is read from Redis again when used;
--   2. syncs: SCANs the certificate keys and pushes every value (MGET in batches);
--   3. follows: for each notification, GETs the key and pushes the value, or forgets the name when
--      the key is gone. Notifications that arrive during the sync wait in the socket and are
--      applied after it, so a value the sync read before a write is replaced by the write's.
-- A broken subscription ends the epoch and the watch starts over after a pause. The worker's
-- exit (reload, stop) ends the watch within READ_TIMEOUT_S; the next generation's worker 0 starts
-- its own. What the watch misses is still served: the lookup reads Redis as before.
local redis = require "edge.redis"
local keys = require "edge.keys"
local names = require "edge.names"
local log = require "edge.log"
local metrics = require "edge.metrics"

local sub = string.sub
local gsub = string.gsub
local tostring = tostring
local unpack = unpack or table.unpack -- luacheck: ignore 143
local now = ngx.now
local update_time = ngx.update_time
local sleep = ngx.sleep
local exiting = ngx.worker.exiting
local worker_id = ngx.worker.id
local timer_at = ngx.timer.at
local null = ngx.null

local _M = {}

-- A read waits this long for a notification before the watch renews its epoch and looks at
-- ngx.worker.exiting(): the bound on how long a reload's old worker keeps running for it.
local READ_TIMEOUT_S = 1
-- The epoch stays live this long after its last renewal (a watch killed with its worker stops
-- renewing: its pushed values are then due within this).
local LIVE_TTL_S = 5
-- Keys per SCAN step and per MGET during the sync.
local SYNC_BATCH = 500
-- Pause before subscribing again after a failure, doubled up to the maximum.
local RETRY_MIN_S, RETRY_MAX_S = 0.5, 10

-- Notifications that change no value (a TTL set or removed).
local NO_VALUE_CHANGE = { expire = true, persist = true }

local SUFFIX = ":latest"
local prefix = keys.cert("")
prefix = sub(prefix, 1, #prefix - #SUFFIX) -- "<prefix>:"
local CHANNEL_PREFIX = "__keyspace@0__:"

-- A glob pattern that matches the prefix literally.
local function glob_escape(s)
    return (gsub(s, "[%*%?%[%]\\]", "\\%0"))
end
local KEY_PATTERN = glob_escape(prefix) .. "*" .. SUFFIX

-- The host name of a certificate key, or nil for another key the pattern matched.
local function name_of(key)
    if #key <= #prefix + #SUFFIX or sub(key, 1, #prefix) ~= prefix or sub(key, -#SUFFIX) ~= SUFFIX then
        return nil
    end
    local name = sub(key, #prefix + 1, -#SUFFIX - 1)
    -- Wildcards ("*.example.com") are stored under their own name; the rest must be a host name.
    local host = sub(name, 1, 2) == "*." and sub(name, 3) or name
    if names.normalize_host(host) ~= host then
        return nil
    end
    return name
end

-- What the dict refused for lack of room since the last log line (one per minute at most).
local full_count, full_logged_at = 0, 0

-- The record's form in the cache (edge.tls.derive), set by init_worker.
local derive

local function push(certs, name, raw, epoch)
    local ok, err = certs:push(name, derive(raw), epoch)
    if ok then
        metrics.cert_push("pushed")
        return true
    end
    if err == "no memory" then
        metrics.cert_push("full")
        full_count = full_count + 1
        local t = now()
        if t - full_logged_at >= 60 then
            -- The dict is full: the certificate is read from Redis on use, nothing was evicted.
            log.warn("cert_push_dict_full", { domain = name, count = full_count })
            full_count, full_logged_at = 0, t
        end
        return false
    end
    metrics.cert_push("failed")
    log.warn("cert_push_failed", { domain = name, err = err })
    return false
end

-- Pushes every certificate in Redis. Returns the number pushed, or nil and an error.
local function sync(certs, epoch)
    local red, err = redis.connect()
    if not red then
        return nil, err
    end
    local cursor, pushed = "0", 0
    repeat
        local res
        res, err = red:scan(cursor, "MATCH", KEY_PATTERN, "COUNT", SYNC_BATCH)
        if not res then
            redis.release(red, true)
            return nil, "redis SCAN failed: " .. tostring(err)
        end
        cursor = res[1]
        local found, batch_names, batch_keys = res[2], {}, {}
        for i = 1, #found do
            local name = name_of(found[i])
            if name then
                batch_names[#batch_names + 1] = name
                batch_keys[#batch_keys + 1] = found[i]
            end
        end
        if #batch_keys > 0 then
            local values
            values, err = red:mget(unpack(batch_keys))
            if not values then
                redis.release(red, true)
                return nil, "redis MGET failed: " .. tostring(err)
            end
            for i = 1, #batch_names do
                local raw = values[i]
                if raw ~= null and push(certs, batch_names[i], raw, epoch) then
                    pushed = pushed + 1
                end
            end
        end
        if exiting() or not certs:set_live(epoch, LIVE_TTL_S) then
            break
        end
    until cursor == "0"
    redis.release(red, false)
    return pushed
end

-- Applies one notification: the key's current value, or its absence.
local function follow(certs, channel, event, epoch)
    local name = name_of(sub(channel, #CHANNEL_PREFIX + 1))
    if not name or NO_VALUE_CHANGE[event] then
        return
    end
    local raw, err = redis.get(keys.cert(name))
    if err then
        -- The new value is unknown: the copy here becomes due, kept to serve if Redis fails.
        metrics.cert_push("failed")
        log.warn("cert_push_failed", { domain = name, err = err })
        certs:expire(name)
        return
    end
    if raw == nil then
        metrics.cert_push("forgotten")
        certs:delete(name)
        return
    end
    push(certs, name, raw, epoch)
end

-- One subscription, until it breaks, is replaced, or the worker exits. Returns an error or nil,
-- and whether it got as far as following notifications.
local function watch(certs)
    local red, err = redis.connect()
    if not red then
        return err, false
    end
    local ok
    ok, err = red:psubscribe(CHANNEL_PREFIX .. KEY_PATTERN)
    if not ok then
        redis.release(red, true)
        return "redis PSUBSCRIBE failed: " .. tostring(err), false
    end
    red:set_timeout(READ_TIMEOUT_S * 1000)
    local epoch
    epoch, err = certs:start_epoch(LIVE_TTL_S)
    if not epoch then
        red:close()
        return "failed to start an epoch: " .. tostring(err), false
    end
    update_time()
    local started = now()
    local pushed
    pushed, err = sync(certs, epoch)
    if not pushed then
        certs:end_live(epoch)
        red:close()
        return err, false
    end
    update_time()
    log.info("cert_push_synced", { epoch = epoch, pushed = pushed, ms = math.floor((now() - started) * 1000) })

    local renewed = now()
    while not exiting() do
        local res
        res, err = red:read_reply()
        if res then
            -- { "pmessage", pattern, channel, event }
            if res[1] == "pmessage" then
                follow(certs, res[3], res[4], epoch)
            end
        elseif err ~= "timeout" then
            certs:end_live(epoch)
            red:close()
            return "redis subscription broke: " .. tostring(err), true
        end
        update_time()
        if now() - renewed >= READ_TIMEOUT_S then
            if not certs:set_live(epoch, LIVE_TTL_S) then
                break -- a newer watch started (a reload's new worker): it has taken over
            end
            renewed = now()
        end
    end
    red:close()
    return nil, true
end

local function run(premature, certs)
    if premature then
        return
    end
    local pause = RETRY_MIN_S
    while not exiting() do
        local err, followed = watch(certs)
        if exiting() then
            return
        end
        if followed then
            pause = RETRY_MIN_S
        end
        if err then
            metrics.error("cert_push")
            log.warn("cert_push_interrupted", { err = err, retry_s = pause })
        else
            return -- replaced by a newer watch
        end
        sleep(pause)
        pause = math.min(pause * 2, RETRY_MAX_S)
    end
end

-- Starts the watch in worker 0 (init_worker_by_lua). `certs`: the certificate tiered cache;
-- `derive_fn`: turns a record as stored in Redis into the form the cache holds.
function _M.init_worker(certs, derive_fn)
    if worker_id() ~= 0 then
        return
    end
    derive = derive_fn
    local ok, err = timer_at(0, run, certs)
    if not ok then
        log.err("cert_push_timer_failed", { err = tostring(err) })
    end
end

return _M
