-- Tenant and domain records from Redis, through the edge's tiered cache (edge.tiered_cache):
-- each worker's LRU of decoded records, the edge_routes shared dict, then Redis. A record written
-- to Redis by any path is served within routing.record_ttl seconds; on a Redis failure the last
-- known record is served (caches.resurrect_ttl_s at a time, for as long as the outage lasts).
local cjson = require "cjson.safe"
local config = require("edge.config").get()
local keys = require "edge.keys"
local redis = require "edge.redis"
local names = require "edge.names"
local ip = require "edge.ip"
local tiered_cache = require "edge.tiered_cache"
local metrics = require "edge.metrics"
local log = require "edge.log"

local match = string.match
local sub = string.sub
local lower = string.lower
local tonumber = tonumber
local type = type

local _M = {}

local conf = config.routing
local caches = config.caches
local BOOTSTRAPPED = keys.bootstrapped()

-- Origin URL parts for proxy_pass: the origin always comes from the tenant record, never the request.
local function parse_origin(origin)
    if type(origin) ~= "table" then
        return nil, "origin missing"
    end
    if origin.type == "s3-website" then
        local endpoint = origin.endpoint
        if type(endpoint) ~= "string" or not names.normalize_host(endpoint) then
            return nil, "s3-website origin needs an endpoint host name"
        end
        local prefix = origin.prefix or ""
        if type(prefix) ~= "string" or names.has_dot_segment("/" .. prefix) then
            return nil, "s3-website prefix is invalid"
        end
        prefix = match(prefix, "^/*(.-)/*$")
        endpoint = lower(endpoint)
        return {
            scheme = "http", host = endpoint, port = 80, authority = endpoint,
            base = prefix ~= "" and ("/" .. prefix) or "",
        }
    elseif origin.type == "http" then
        local scheme, authority, base = match(origin.url or "", "^(https?)://([%w%.%-:%[%]]+)(/?[^?#]*)$")
        if not scheme then
            return nil, "http origin url must be http(s)://host[:port][/path]"
        end
        -- host: a DNS name, an IPv4 literal or a bracketed IPv6 literal; edge.origin_guard checks it.
        local host, port = match(authority, "^(%[[%x:%.]+%]):?(%d*)$")
        if not host then
            host, port = match(authority, "^([%w%.%-]+):?(%d*)$")
        end
        port = tonumber(port ~= "" and port or (scheme == "https" and 443 or 80))
        if not host or not port or port < 1 or port > 65535
            or not (ip.parse(host) or names.normalize_host(host)) then
            return nil, "http origin url has an invalid host or port"
        end
        if sub(base, -1) == "/" then
            base = sub(base, 1, -2)
        end
        return { scheme = scheme, host = lower(host), port = port, authority = lower(authority), base = base }
    end
    return nil, "unknown origin type"
end

-- The tenant's cache settings (edge.cache_policy): whole seconds, or nil for the edge's default.
local function decode_cache_settings(c)
    if type(c) ~= "table" then
        return nil
    end
    local function s(v)
        return type(v) == "number" and v >= 0 and v == math.floor(v) and v or nil
    end
    return { default_ttl_s = s(c.defaultTtlSeconds), heuristic_max_s = s(c.heuristicMaxSeconds) }
end

local function decode_tenant(raw)
    local doc = cjson.decode(raw)
    if type(doc) ~= "table" or not names.valid_tenant_id(doc.id) then
        return nil, "tenant record needs a valid id"
    end
    local origin, err = parse_origin(doc.origin)
    if not origin then
        return nil, err
    end
    return { id = doc.id, origin = origin, cache = decode_cache_settings(doc.cache) }
end

local function decode_domain(raw)
    local doc = cjson.decode(raw)
    if type(doc) ~= "table" or not names.valid_tenant_id(doc.tenant) then
        return nil, "domain record needs a valid tenant"
    end
    return { tenant = doc.tenant }
end

-- The Strict-Transport-Security value a tenant asked for (lib/core/redis-format.ts
-- tenantHstsSchema), or nil: off unless set.
local function hsts_header(h)
    if type(h) ~= "table" or type(h.maxAgeSeconds) ~= "number" or h.maxAgeSeconds < 1 then
        return nil
    end
    local value = "max-age=" .. string.format("%d", h.maxAgeSeconds)
    if h.includeSubDomains == true then
        value = value .. "; includeSubDomains"
        if h.preload == true and h.maxAgeSeconds >= 31536000 then
            value = value .. "; preload"
        end
    end
    return value
end

-- The routing fields, plus the tenant's response policy.
local function decode_tenant_record(raw)
    local rec, err = decode_tenant(raw)
    if rec then
        rec.hsts = hsts_header(cjson.decode(raw).hsts)
    end
    return rec, err
end

-- Known records only in edge_routes (read when Redis is down); unknown names go to edge_negative
-- with a TTL, so a flood of random hosts can evict only other negative answers.
local function records_cache(name, decode)
    return tiered_cache.new({
        name = name,
        shm = "edge_routes",
        negative_shm = "edge_negative",
        neg_prefix = "r:",
        lock_shm = "edge_locks",
        lru_size = conf.lru_size,
        ttl_s = conf.record_ttl,
        neg_ttl_s = conf.negative_ttl,
        resurrect_ttl_s = caches.resurrect_ttl_s,
        lock_wait_s = caches.lock_wait_ms / 1000,
        -- Absent only from a bootstrapped Redis: after a restart the last copies serve until
        -- the refill (edge.redis.get_bootstrapped), no 404 outlives it in the negative cache.
        load = function(key)
            return redis.get_bootstrapped(key, BOOTSTRAPPED)
        end,
        decode = function(raw)
            return decode(raw)
        end,
        on_load_error = function(key, err)
            metrics.error("redis")
            log.warn("record_lookup_failed", { key = key, err = err })
        end,
        on_invalid = function(key, err)
            metrics.error("invalid_record")
            log.err("invalid_record", { key = key, err = err })
        end,
    })
end

local tenants = records_cache("tenants", decode_tenant_record)
local domains = records_cache("domains", decode_domain)

-- Returns record, or nil (absent), or nil and an error when Redis failed and nothing is known.
function _M.tenant(tenant_id)
    local rec, err = tenants:get(keys.tenant(tenant_id))
    return rec, err
end

-- The tenant a custom domain belongs to; presence in the registry is also what allows issuance.
function _M.domain_tenant(domain)
    local rec, err = domains:get(keys.domain(domain))
    return rec and rec.tenant, err
end

-- The tenant serving a custom-domain host: its own record, else a tenant wildcard `*.<parent>`
-- one label up (what a wildcard certificate covers). Routing only: issuance and auto-ssl's
-- allow_domain stay on exact names (domain_tenant), so random subdomains order nothing.
function _M.host_tenant(host)
    local tenant, err = _M.domain_tenant(host)
    if tenant or err then
        return tenant, err
    end
    local parent = match(host, "^[^.]+%.(.+%..+)$")
    if not parent then
        return nil
    end
    return _M.domain_tenant("*." .. parent)
end

-- The tenant record this worker already holds (also past its TTL), without any I/O: for the
-- header and body filters, where no cosocket may be used.
function _M.cached_tenant(tenant_id)
    return tenants:peek(keys.tenant(tenant_id))
end

function _M.forget(tenant_id, domain)
    if tenant_id then
        tenants:delete(keys.tenant(tenant_id))
    end
    if domain then
        domains:delete(keys.domain(domain))
    end
end

return _M
