-- The control listener (loopback or VPC only): health, readiness, metrics, and the
-- authenticated purge route.
local cjson = require "cjson.safe"
local bit = require "bit"
local config = require("edge.config").get()
local redis = require "edge.redis"
local metrics = require "edge.metrics"
local purge = require "edge.purge"
local names = require "edge.names"
local log = require "edge.log"

local byte = string.byte
local find = string.find
local sub = string.sub
local bor = bit.bor
local bxor = bit.bxor

local _M = {}

local token = os.getenv("EDGE_CONTROL_TOKEN")
if type(token) ~= "string" or #token < 32 then
    error("edge: EDGE_CONTROL_TOKEN must be set to at least 32 characters")
end
local expected = "Bearer " .. token

local function reply(status, doc)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.header["Cache-Control"] = "no-store"
    ngx.say(cjson.encode(doc))
    return ngx.exit(ngx.HTTP_OK)
end

-- Constant time, so the token cannot be guessed a byte at a time.
local function same(a, b)
    if #a ~= #b then
        return false
    end
    local diff = 0
    for i = 1, #a do
        diff = bor(diff, bxor(byte(a, i), byte(b, i)))
    end
    return diff == 0
end

-- True when the request carries the control token; otherwise answers 401 or 403, logs the
-- refusal, and returns false.
local function authorized(route)
    local header = ngx.var.http_authorization
    local status, why
    if not header then
        ngx.header["WWW-Authenticate"] = 'Bearer realm="edge-control"'
        status, why = 401, "missing bearer token"
    elseif not same(header, expected) then
        status, why = 403, "invalid bearer token"
    else
        return true
    end
    log.warn("control_unauthorized", { route = route, reason = why, client = ngx.var.remote_addr })
    reply(status, { error = why })
    return false
end

local function readyz()
    if ngx.worker.exiting() then
        return reply(503, { ready = false, reason = "shutting down" })
    end
    local pong, err = redis.with(function(red)
        local res, perr = red:ping()
        if not res then
            return nil, "redis PING failed: " .. tostring(perr)
        end
        return res
    end)
    if not pong then
        return reply(503, { ready = false, redis = err })
    end
    return reply(200, { ready = true, region = config.region })
end

local function purge_route()
    if not authorized("purge") then
        return
    end
    ngx.req.read_body()
    local req, err = purge.decode(ngx.req.get_body_data())
    local p
    if req then
        p, err = purge.validate(req)
    end
    if not p then
        log.info("purge_rejected", { reason = err })
        return reply(400, { error = err })
    end
    local gen
    gen, err = purge.apply(p, req.generation)
    if not gen and err and find(err, "generation range exhausted", 1, true) then
        log.warn("purge_rejected", { tenant = p.tenant, scope = p.scope, reason = err })
        return reply(409, { error = "the purge generation of this scope reached its bound" })
    end
    if not gen then
        metrics.error("purge")
        log.err("purge_failed", { tenant = p.tenant, scope = p.scope, err = err })
        return reply(503, { error = "purge store unavailable", detail = err })
    end
    log.info("purged", { tenant = p.tenant, scope = p.scope, target = p.target, generation = gen })
    -- The generation goes out as the exact integer text Redis returned: cjson would round it.
    local body = cjson.encode({
        purged = { tenant = p.tenant, scope = p.scope, target = p.target },
        region = config.region,
    })
    ngx.status = 200
    ngx.header["Content-Type"] = "application/json"
    ngx.header["Cache-Control"] = "no-store"
    ngx.say('{"generation":', gen, ",", sub(body, 2))
    return ngx.exit(ngx.HTTP_OK)
end

-- A certificate changed in Redis (renewal, replication): every worker drops its cached copy
-- (edge.tls logs the change; each worker applies it on its timer), so the next handshake reads Redis.
local FORGET_WAIT_S = math.max(2, 10 * config.caches.invalidation_interval_ms / 1000)
local function forget_cert_route()
    if not authorized("certs/forget") then
        return
    end
    ngx.req.read_body()
    local req = cjson.decode(ngx.req.get_body_data() or "")
    local domain = type(req) == "table" and req.domain
    local name
    if type(domain) == "string" and domain:sub(1, 2) == "*." then
        name = names.normalize_host(domain:sub(3))
        name = name and ("*." .. name)
    else
        name = names.normalize_host(domain)
    end
    if not name then
        return reply(400, { error = "domain must be a host name or *.<host name>" })
    end
    local tls = package.loaded["edge.tls"]
    local applied = true
    if tls then
        -- Answers once every worker has dropped its copy (each applies changes on a timer).
        applied = tls.forget(name, FORGET_WAIT_S)
    end
    if not applied then
        return reply(503, { error = "not every worker applied the change in time; it will within "
            .. config.tls.shm_ttl .. " s", forgotten = name, region = config.region })
    end
    return reply(200, { forgotten = name, region = config.region })
end

function _M.serve()
    local uri, method = ngx.var.uri, ngx.req.get_method()
    if uri == "/healthz" then
        return reply(200, { ok = true })
    elseif uri == "/readyz" then
        return readyz()
    elseif uri == "/metrics" then
        ngx.header["Content-Type"] = "text/plain; version=0.0.4"
        ngx.print(metrics.render())
        return
    elseif uri == "/purge" then
        if method ~= "POST" then
            ngx.header["Allow"] = "POST"
            return reply(405, { error = "use POST" })
        end
        return purge_route()
    elseif uri == "/certs/forget" and method == "POST" then
        return forget_cert_route()
    end
    return reply(404, { error = "no such control route" })
end

return _M
