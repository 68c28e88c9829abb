-- Purge generations. Every purge is a generation number (milliseconds, strictly increasing per
-- field) stored in a Redis hash per tenant: "t" for the whole tenant, "h:<host>", "p:<path prefix>",
-- "u:<host><uri>". A request's cache key carries the newest generation that applies to it, so a
-- purge of any scope changes the key of exactly the URLs it covers: O(1), no file walking.
-- The hash is mirrored in the edge_purge shared dict; a per-tenant version there tells each
-- worker when its decoded copy is out of date.
local lrucache = require "resty.lrucache"
local cjson = require "cjson.safe"
local keys = require "edge.keys"
local redis = require "edge.redis"

local shm = ngx.shared.edge_purge
local sub = string.sub
local tonumber = tonumber

local _M = {}

local lru = assert(lrucache.new(10000))

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

-- Publishes a tenant's hash (HGETALL's flat list) to every worker.
function _M.store(tenant, flat)
    local ok, err = shm:set("s:" .. tenant, cjson.encode(flat))
    if not ok then
        return nil, "failed to store purge state: " .. tostring(err)
    end
    shm:incr("v:" .. tenant, 1, 0)
    return true
end

function _M.state(tenant)
    local version = shm:get("v:" .. tenant)
    if version then
        local cached = lru:get(tenant)
        if cached and cached.version == version then
            return cached.state
        end
        local flat = cjson.decode(shm:get("s:" .. tenant) or "null")
        if type(flat) == "table" then
            local state = decode(flat)
            lru:set(tenant, { version = version, state = state })
            return state
        end
    end
    -- First request for this tenant since nginx started (or the dict evicted it): ask Redis.
    local flat, err = redis.with(function(red)
        local res, rerr = red:hgetall(keys.purge(tenant))
        if not res then
            return nil, "redis HGETALL failed: " .. tostring(rerr)
        end
        return res
    end)
    if not flat then
        return nil, err
    end
    _M.store(tenant, flat)
    return decode(flat)
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
