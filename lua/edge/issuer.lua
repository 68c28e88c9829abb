-- The handshake side of on-demand issuance (native engine). On a certificate miss for a custom
-- domain the registry allows, one handshake at a time asks the issuer sidecar on loopback and
-- waits for its answer: the issuer holds the request until the order is settled or
-- tls.issuer_wait_ms has passed, so a failure (CA down, validation failed, refused) reaches the
-- handshake the moment it is known, and is remembered in edge_locks for tls.miss_ttl seconds so
-- every worker's handshakes for that name get the fallback at once. Handshakes that did not ask
-- read Redis until the certificate lands, a failure is remembered, or the bound passes. After
-- that the fallback certificate is served and the order carries on. Platform names are covered
-- by the DNS-01 wildcard.
local config = require("edge.config").get()
local records = require "edge.records"
local log = require "edge.log"

local tcp = ngx.socket.tcp
local sleep = ngx.sleep
local now = ngx.now
local floor = math.floor
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
-- Across workers, one request per name at a time (the asker waits up to wait_s for the answer);
-- other handshakes only poll. A lost asker frees the name after this long.
local ASK_EVERY = math.max(2, wait_s)
-- The issuer answers this much before the handshake's own deadline, so its answer is read.
local ANSWER_MARGIN_MS = 100
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

-- POSTs the request and waits for the issuer's answer, at most wait_ms (the issuer answers 202
-- by then if the order is still running). Returns the HTTP status or nil and an error.
local function ask(name, wait_ms)
    local sock = tcp()
    sock:settimeouts(connect_ms, connect_ms, wait_ms + ANSWER_MARGIN_MS)
    local ok, err = sock:connect(host, port)
    if not ok then
        return nil, "failed to connect to issuer: " .. tostring(err)
    end
    local bytes
    bytes, err = sock:send("POST " .. base .. "/v1/certificates/" .. name .. "?wait_ms=" .. wait_ms
        .. " HTTP/1.1\r\nHost: " .. host .. "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
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

    local tls = require "edge.tls"
    update_time()
    local deadline = now() + wait_s
    if locks:add("issuer_asked:" .. name, true, ASK_EVERY) then
        local wait_ms = floor(conf.issuer_wait_ms - ANSWER_MARGIN_MS)
        local status, aerr = ask(name, wait_ms > 0 and wait_ms or 1)
        if not status then
            locks:delete("issuer_asked:" .. name)
            log.warn("issuer_request_failed", { domain = name, err = aerr })
            return nil
        end
        if status == 409 then
            -- Refused (registry, backoff, budget) or failed (CA down, validation): every worker's
            -- handshakes for this name get the fallback at once for a while.
            locks:set("issuer_refused:" .. name, true, REFUSED_TTL)
            log.info("issuer_refused", { domain = name })
            return nil
        end
        if status == 200 then
            -- Issued (or already there): in Redis before the issuer answered.
            return tls.reload(name)
        end
        if status ~= 202 then
            log.warn("issuer_request_failed", { domain = name, err = "issuer answered " .. status })
            return nil
        end
        -- 202: still running, or another task holds the lease: its certificate arrives by
        -- replication; read Redis until the bound.
    end

    local step = 0.02
    while true do
        -- Past the cached miss: Redis itself.
        local entry = tls.reload(name)
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
