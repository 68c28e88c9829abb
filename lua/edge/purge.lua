-- Purge requests: validated, applied atomically to the tenant's generation hash in Redis, and
-- published to every worker at once. Scopes: tenant, host, path prefix, URL.
local cjson = require "cjson.safe"
local names = require "edge.names"
local keys = require "edge.keys"
local redis = require "edge.redis"
local purge_state = require "edge.purge_state"
local config = require("edge.config").get()
local log = require "edge.log"

local match = string.match
local find = string.find
local type = type
local now = ngx.now
local floor = math.floor
local format = string.format

local _M = {}

-- Generations are integers in [1, 2^53 - 1] (JavaScript's Number.MAX_SAFE_INTEGER, the bound of the
-- events' schema): every such value is exact in a Lua number, but Lua prints numbers with 14
-- significant digits, so generations are always written with "%.0f", never tostring().
local MAX_GENERATION = 9007199254740991

-- Above this many host/prefix/URL entries a tenant's purges collapse into one tenant-wide purge:
-- it drops more than was asked, never less, and keeps per-request work bounded.
local MAX_FIELDS = 1000

-- How long a purge's answer waits for every worker to apply it (each does within
-- caches.invalidation_interval_ms; later, its copy's purge_ttl_s bounds it anyway).
local APPLY_WAIT_S = math.max(2, 10 * config.caches.invalidation_interval_ms / 1000)

-- KEYS[1] hash; ARGV: field, generation, "bump" (a new purge: strictly newer than the last)
-- or "max" (an event being replayed: never goes back), max fields, max generation.
-- Returns the generation as "%.0f" text (tostring would round it), or an error reply when a bump
-- would leave the bounded range.
-- A tenant-wide purge makes older finer entries redundant, so they are dropped.
local SCRIPT = [[
local key, field, gen, mode, max = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local cur = tonumber(redis.call('HGET', key, field) or '0') or 0
if mode == 'bump' and gen <= cur then gen = cur + 1 end
if gen > limit then return redis.error_reply('generation range exhausted') end
if gen > cur then
  redis.call('HSET', key, field, string.format('%.0f', gen))
  if redis.call('HLEN', key) > max then
    local all = redis.call('HGETALL', key)
    for i = 2, #all, 2 do
      if tonumber(all[i]) > gen then gen = tonumber(all[i]) end
    end
    field = 't'
    redis.call('HSET', key, 't', string.format('%.0f', gen))
  end
  if field == 't' then
    local all = redis.call('HGETALL', key)
    for i = 1, #all, 2 do
      if all[i] ~= 't' and tonumber(all[i + 1]) <= gen then redis.call('HDEL', key, all[i]) end
    end
  end
else
  gen = cur
end
return {string.format('%.0f', gen), redis.call('HGETALL', key)}
]]

local function bad(msg)
    return nil, msg
end

local function valid_path(path, what)
    if type(path) ~= "string" or path == "" or path:sub(1, 1) ~= "/" then
        return bad(what .. " must start with /")
    end
    if #path > 2048 then
        return bad(what .. " is longer than 2048 characters")
    end
    if find(path, "[%z\1-\32\127]") then
        return bad(what .. " contains control characters or spaces")
    end
    if names.has_dot_segment(path) then
        return bad(what .. " contains a dot segment (path traversal)")
    end
    return path
end

-- Checks a decoded request; returns { tenant, field, scope, target } or nil and why.
function _M.validate(req)
    if type(req) ~= "table" then
        return bad("body must be a JSON object")
    end
    if not names.valid_tenant_id(req.tenant) then
        return bad("tenant must be a tenant id ([a-z0-9-], at most 63 characters)")
    end
    if req.generation ~= nil and (type(req.generation) ~= "number" or req.generation < 1
        or req.generation ~= floor(req.generation) or req.generation > MAX_GENERATION) then
        return bad("generation must be an integer from 1 to " .. format("%.0f", MAX_GENERATION))
    end
    local scope = req.scope
    if scope == "tenant" then
        return { tenant = req.tenant, scope = scope, field = "t" }
    elseif scope == "host" then
        local host, why = names.normalize_host(req.host)
        if not host then
            return bad("host: " .. why)
        end
        return { tenant = req.tenant, scope = scope, field = "h:" .. host, target = host }
    elseif scope == "prefix" then
        local prefix, why = valid_path(req.prefix, "prefix")
        if not prefix then
            return bad(why)
        end
        return { tenant = req.tenant, scope = scope, field = "p:" .. prefix, target = prefix }
    elseif scope == "url" then
        if type(req.url) ~= "string" then
            return bad("url must be a string")
        end
        local authority, path = match(req.url, "^https?://([^/?#]+)(/?[^#]*)$")
        if not authority then
            return bad("url must be an absolute http(s) URL")
        end
        local host, why = names.normalize_host(match(authority, "^([^:]+)") or "")
        if not host then
            return bad("url host: " .. why)
        end
        if path == "" then
            path = "/"
        end
        local ok, perr = valid_path(path, "url path")
        if not ok then
            return bad(perr)
        end
        return { tenant = req.tenant, scope = scope, field = "u:" .. host .. path, target = host .. path }
    end
    return bad("scope must be one of tenant, host, prefix, url")
end

-- Applies a validated purge. A request without a generation is a new purge; one with a
-- generation (from a cache.purge event) is idempotent: replaying it changes nothing.
function _M.apply(p, generation)
    local mode = generation and "max" or "bump"
    local gen = generation or floor(now() * 1000)
    local res, err = redis.with(function(red)
        local r, rerr = red:eval(SCRIPT, 1, keys.purge(p.tenant), p.field, format("%.0f", gen), mode,
            MAX_FIELDS, format("%.0f", MAX_GENERATION))
        if not r then
            return nil, "redis EVAL failed: " .. tostring(rerr)
        end
        return r
    end)
    if not res then
        return nil, err
    end
    local applied, serr = purge_state.store(p.tenant, res[2], APPLY_WAIT_S)
    if applied == nil then
        return nil, serr
    end
    if not applied then
        log.warn("purge_not_applied_in_every_worker", { tenant = p.tenant, wait_s = APPLY_WAIT_S,
            ttl_s = config.caches.purge_ttl_s })
    end
    return res[1] -- the generation as exact integer text
end

function _M.decode(body)
    if not body then
        return bad("a JSON body is required")
    end
    local req, err = cjson.decode(body)
    if req == nil then
        return bad("body is not valid JSON: " .. tostring(err))
    end
    return req
end

return _M
