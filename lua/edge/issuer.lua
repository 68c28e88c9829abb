-- The handshake side of on-demand issuance (native engine). On a certificate miss for a custom
-- domain the registry allows, ask the issuer sidecar on loopback, then poll Redis for the
-- certificate until tls.issuer_wait_ms has passed; after that the fallback certificate is
-- served and the order carries on. Platform names are covered by the DNS-01 wildcard.
local config = require("edge.config").get()
local records = require "edge.records"
local log = require "edge.log"

local tcp = ngx.socket.tcp
local sleep = ngx.sleep
local now = ngx.now
local update_time = ngx.update_time
local match = string.match
local sub = string.sub
local min = math.min
local tonumber = tonumber

local locks = ngx.shared.edge_locks

local _M = {}

local conf = config.tls
local platform = config.platform_domain
local platform_suffix = "." .. platform
local wait_s = conf.issuer_wait_ms / 1000
local connect_ms = min(conf.issuer_wait_ms, 1000)
-- Across workers, one request per name in this many seconds; other handshakes only poll.
local ASK_EVERY = 2
local REFUSED_TTL = conf.miss_ttl

local host, port, base
if conf.issuer_url then
    local p
    host, p, base = match(conf.issuer_url, "^http://([%w%.%-]+):?(%d*)(/?[^?#]*)$")
    if not host then
        error("edge: tls.issuer_url must be http://host[:port][/path], got " .. conf.issuer_url)
    end
    port = tonumber(p) or 80
    if sub(base, -1) == "/" then
        base = sub(base, 1, -2)
    end
end

local function covered_by_wildcard(name)
    return name == platform or sub(name, -#platform_suffix) == platform_suffix
end

-- POSTs the request; returns the HTTP status or nil and an error.
local function ask(name)
    local sock = tcp()
    sock:settimeouts(connect_ms, connect_ms, connect_ms)
    local ok, err = sock:connect(host, port)
    if not ok then
        return nil, "failed to connect to issuer: " .. tostring(err)
    end
    local bytes
    bytes, err = sock:send("POST " .. base .. "/v1/certificates/" .. name .. " HTTP/1.1\r\nHost: " .. host
        .. "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    if not bytes then
        sock:close()
        return nil, "failed to send to issuer: " .. tostring(err)
    end
    local line
    line, err = sock:receive("*l")
    sock:close()
    if not line then
        return nil, "failed to read issuer answer: " .. tostring(err)
    end
    local status = tonumber(match(line, "^HTTP/%d%.%d (%d%d%d)"))
    if not status then
        return nil, "failed to parse issuer answer: " .. sub(line, 1, 80)
    end
    return status
end

-- tls.on_miss: returns a certificate entry when one lands within the bound, else nil (fallback).
function _M.on_miss(name)
    if covered_by_wildcard(name) or locks:get("issuer_refused:" .. name) then
        return nil
    end
    local tenant, err = records.domain_tenant(name)
    if not tenant then
        if err then
            log.warn("issuer_registry_lookup_failed", { domain = name, err = err })
        end
        return nil
    end

    update_time()
    local deadline = now() + wait_s
    if locks:add("issuer_asked:" .. name, true, ASK_EVERY) then
        local status, aerr = ask(name)
        if not status then
            locks:delete("issuer_asked:" .. name)
            log.warn("issuer_request_failed", { domain = name, err = aerr })
            return nil
        end
        if status == 409 then
            -- Refused (backoff, budget) or already failed: no point in waiting.
            locks:set("issuer_refused:" .. name, true, REFUSED_TTL)
            return nil
        end
        if status ~= 200 and status ~= 202 then
            log.warn("issuer_request_failed", { domain = name, err = "issuer answered " .. status })
            return nil
        end
    end

    local tls = require "edge.tls"
    local step = 0.02
    while true do
        -- Bypass the negative cache: read the shared dict and Redis afresh.
        tls.forget(name)
        local entry = tls.find(name)
        if entry then
            return entry
        end
        if locks:get("issuer_refused:" .. name) then
            return nil
        end
        update_time()
        local left = deadline - now()
        if left <= 0 then
            break
        end
        sleep(min(step, left))
        step = min(step * 2, 0.2)
    end
    log.info("issuer_wait_timeout", { domain = name, wait_ms = conf.issuer_wait_ms })
    return nil
end

return _M
