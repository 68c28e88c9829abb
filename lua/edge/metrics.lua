-- Prometheus counters kept in a shared dict, so every worker adds to the same numbers.
-- Written here rather than taken from nginx-lua-prometheus: we need counters only, and that
-- library is in neither Debian nor the official OpenResty image.
local config = require("edge.config").get()

local shm = ngx.shared.edge_metrics
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
    edge_cert_lookups_total = "Certificate lookups by the tier that answered (lru, shm, redis, miss, fallback).",
    edge_handshakes_total = "TLS certificate selections by result.",
    edge_errors_total = "Internal errors by kind.",
}

local function escape(v)
    return (gsub(tostring(v), '[\\"\n]', { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }))
end

local function incr(key)
    local _, err = shm:incr(key, 1, 0)
    if err then
        ngx.log(ngx.WARN, "failed to increment metric ", key, ": ", err)
    end
end

function _M.cert_lookup(tier)
    incr('edge_cert_lookups_total{tier="' .. tier .. '"}')
end

function _M.handshake(result)
    incr('edge_handshakes_total{result="' .. result .. '"}')
end

function _M.error(kind)
    incr('edge_errors_total{kind="' .. kind .. '"}')
end

local STATUS_CLASS = { "1xx", "2xx", "3xx", "4xx", "5xx" }

function _M.log_request()
    local var = ngx.var
    local tenant = var.edge_tenant
    if tenant == "" then
        tenant = "-"
    end
    local class = STATUS_CLASS[floor((ngx.status or 0) / 100)] or "other"
    incr('edge_requests_total{tenant="' .. escape(tenant) .. '",status="' .. class .. '"}')
    local cache = var.upstream_cache_status
    if cache then
        incr('edge_cache_total{tenant="' .. escape(tenant) .. '",status="' .. cache .. '"}')
    end
end

-- Prometheus text exposition format, metric families grouped with their HELP and TYPE.
function _M.render()
    local keys = shm:get_keys(0)
    sort(keys)
    local out, n, last = {}, 0, nil
    for _, key in ipairs(keys) do
        local name = match(key, "^([%w_]+)")
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
    end
    n = n + 1
    out[n] = 'edge_info{region="' .. escape(config.region) .. '",engine="' .. config.tls.engine .. '"} 1'
    return concat(out, "\n") .. "\n"
end

return _M
