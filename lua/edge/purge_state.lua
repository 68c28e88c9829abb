-- Purge generations. Every purge is a generation number (milliseconds, strictly increasing per
-- field) stored in a Redis hash per tenant: "t" for the whole tenant, "h:<host>", "p:<path prefix>",
-- "u:<host><uri>". A request's cache key carries the newest generation that applies to it, so a
-- purge of any scope changes the key of exactly the URLs it covers: O(1), no file walking.
-- The hash goes through the edge's tiered cache (edge.tiered_cache): each worker's decoded copy,
-- the edge_purge shared dict, then Redis. A purge applied here (edge.purge) reaches every worker
-- within caches.invalidation_interval_ms (version mode: a request reads nothing shared while its
-- tenant's copy is fresh), and the purge is answered once every worker has it; one that reached
-- Redis by any other path (an event applied by another edge, a bootstrap, redis-cli) is honoured
-- within caches.purge_ttl_s.
local cjson = require "cjson.safe"
local config = require("edge.config").get()
local keys = require "edge.keys"
local redis = require "edge.redis"
local tiered_cache = require "edge.tiered_cache"
local metrics = require "edge.metrics"
local log = require "edge.log"

local sub = string.sub
local tonumber = tonumber
local type = type

local _M = {}

local caches = config.caches

local function decode(flat)
    local state = { t = 0, h = {}, p = {}, u = {} }
    local np = 0
    for i = 1, #flat, 2 do
        local field, gen = flat[i], tonumber(flat[i + 1]) or 0
        local kind, rest = sub(field, 1, 1), sub(field, 3)
        if field == "t" then
            state.t = gen
        elseif kind == "h" then
            state.h[rest] = gen
        elseif kind == "p" then
            np = np + 1
            state.p[np] = { rest, gen }
        elseif kind == "u" then
            state.u[rest] = gen
        end
    end
    return state
end

-- Raw values are HGETALL's flat list as JSON; a tenant never purged has an empty one.
local cache = tiered_cache.new({
    name = "purge",
    shm = "edge_purge",
    negative_shm = "edge_negative",
    neg_prefix = "p:",
    lock_shm = "edge_locks",
    lru_size = caches.purge_lru_size,
    ttl_s = caches.purge_ttl_s,
    neg_ttl_s = caches.purge_ttl_s,
    resurrect_ttl_s = caches.resurrect_ttl_s,
    lock_wait_s = caches.lock_wait_ms / 1000,
    -- A purge on the control route is published to every worker by their change-log timers.
    invalidation_interval_s = caches.invalidation_interval_ms / 1000,
    load = function(tenant)
        return redis.with(function(red)
            local res, err = red:hgetall(keys.purge(tenant))
            if not res then
                return nil, "redis HGETALL failed: " .. tostring(err)
            end
            return cjson.encode(res)
        end)
    end,
    decode = function(raw)
        local flat = cjson.decode(raw)
        if type(flat) ~= "table" then
            return nil, "purge state is not a JSON list"
        end
        return decode(flat)
    end,
    on_load_error = function(tenant, err)
        metrics.error("redis")
        log.warn("purge_state_load_failed", { tenant = tenant, err = err })
    end,
})

-- Publishes a tenant's hash (HGETALL's flat list, as the purge script returned it) to every worker.
-- Returns true once every worker has it, false when one had not within timeout_s (each worker's
-- copy is refreshed within caches.purge_ttl_s anyway), or nil and an error.
function _M.store(tenant, flat, timeout_s)
    local ok, version = cache:set(tenant, cjson.encode(flat))
    if not ok then
        return nil, version
    end
    return cache:await_workers(version, timeout_s)
end

-- The tenant's decoded purge state, or nil and an error when Redis failed and nothing is known.
function _M.state(tenant)
    local state, err = cache:get(tenant)
    if state == nil then
        return nil, err or "no purge state"
    end
    return state
end

-- The newest purge generation covering this request.
-- site_path is the path (and query) on the tenant's site; uri is the request URI as received.
function _M.generation(state, host, site_path, uri)
    local gen = state.t
    local g = state.h[host]
    if g and g > gen then
        gen = g
    end
    local prefixes = state.p
    for i = 1, #prefixes do
        local entry = prefixes[i]
        if entry[2] > gen and sub(site_path, 1, #entry[1]) == entry[1] then
            gen = entry[2]
        end
    end
    g = state.u[host .. uri]
    if g and g > gen then
        gen = g
    end
    return gen
end

return _M
