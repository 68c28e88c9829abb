-- Prometheus counters kept in a shared dict, so every worker adds to the same numbers; each
-- worker counts in Lua and adds its counts on a timer (edge.counter), so a handshake or a request
-- touches no shared dict for its metrics.
-- Written here rather than taken from nginx-lua-prometheus: we need counters only, and that
-- library is in neither Debian nor the official OpenResty image.
local lrucache = require "resty.lrucache"
local counter = require "edge.counter"
local config = require("edge.config").get()

local shm = ngx.shared.edge_metrics
local counts = counter.new("edge_metrics", config.caches.metrics_flush_ms / 1000)
local concat = table.concat
local sort = table.sort
local gsub = string.gsub
local match = string.match
local tostring = tostring
local floor = math.floor

local _M = {}

local HELP = {
    edge_requests_total = "HTTPS requests served, by tenant and status class.",
    edge_cache_total = "Proxied requests by tenant and cache status.",
    edge_cert_lookups_total = "Certificate lookups by the tier that answered "
        .. "(lru, shm, redis, stale: a known copy while Redis fails, miss, fallback).",
    edge_handshakes_total = "TLS certificate selections by result.",
    edge_errors_total = "Internal errors by kind.",
    edge_cert_pushes_total = "Certificates put into the shared dict as Redis got them, by result "
        .. "(pushed, forgotten: the key is gone, full: the dict had no room, failed).",
}

local function escape(v)
    return (gsub(tostring(v), '[\\"\n]', { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }))
end

local function incr(key)
    counts:incr(key)
end

-- Series names built once per label value: no string building per event.
local function family(name, label)
    local series = {}
    return function(value)
        local key = series[value]
        if not key then
            key = name .. "{" .. label .. '="' .. value .. '"}'
            series[value] = key
        end
        incr(key)
    end
end

_M.cert_lookup = family("edge_cert_lookups_total", "tier")
_M.handshake = family("edge_handshakes_total", "result")
_M.error = family("edge_errors_total", "kind")
_M.cert_push = family("edge_cert_pushes_total", "result")

-- Starts this worker's flush timer (init_worker_by_lua).
function _M.init_worker()
    counts:init_worker()
end

local STATUS_CLASS = { "1xx", "2xx", "3xx", "4xx", "5xx" }

-- Per-tenant series names, built once per worker: no string building on the request path.
local series = assert(lrucache.new(10000))

local function tenant_series(tenant)
    local t = series:get(tenant)
    if not t then
        local label = 'tenant="' .. escape(tenant) .. '"'
        t = { label = label, requests = {}, cache = {} }
        series:set(tenant, t)
    end
    return t
end

-- Counts one HTTPS request; tenant is nil when the edge answered it itself (404, 421, ...).
function _M.count_request(tenant, status, cache_status)
    local t = tenant_series(tenant or "-")
    local class = STATUS_CLASS[floor((status or 0) / 100)] or "other"
    local key = t.requests[class]
    if not key then
        key = "edge_requests_total{" .. t.label .. ',status="' .. class .. '"}'
        t.requests[class] = key
    end
    incr(key)
    if cache_status then
        key = t.cache[cache_status]
        if not key then
            key = "edge_cache_total{" .. t.label .. ',status="' .. cache_status .. '"}'
            t.cache[cache_status] = key
        end
        incr(key)
    end
end

-- Prometheus text exposition format, metric families grouped with their HELP and TYPE.
-- Waits (yielding) for every worker's pending counts first.
function _M.render()
    counts:sync()
    local keys = shm:get_keys(0)
    sort(keys)
    local out, n, last = {}, 0, nil
    for _, key in ipairs(keys) do
        local name = match(key, "^([%w_]+)")
        if not name then
            goto continue
        end
        if name ~= last then
            n = n + 1
            out[n] = "# HELP " .. name .. " " .. (HELP[name] or name) .. "\n# TYPE " .. name .. " counter"
            last = name
        end
        local value = shm:get(key)
        if value then
            n = n + 1
            out[n] = key .. " " .. tostring(value)
        end
        ::continue::
    end
    n = n + 1
    out[n] = 'edge_info{region="' .. escape(config.region) .. '",engine="' .. config.tls.engine .. '"} 1'
    return concat(out, "\n") .. "\n"
end

return _M
