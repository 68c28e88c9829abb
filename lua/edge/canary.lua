-- The region's canary for the Route53 health check: `edge-health-<region>.<platform domain>`
-- (DNS points that name at this region's NLB only). It answers "edge-health ok <region>" only
-- when this task can route (Redis answers a record lookup) and holds a valid certificate for
-- the name (the platform wildcard), so a region serving 404s or fallback certificates leaves DNS.
local config = require("edge.config").get()
local keys = require "edge.keys"
local redis = require "edge.redis"
local tls = require "edge.tls"
local log = require "edge.log"

local now = ngx.now

local _M = {}

-- The one host name the canary answers; every other region's canary name is an unknown host here.
_M.host = "edge-health-" .. config.region .. "." .. config.platform_domain

local OK_BODY = "edge-health ok " .. config.region

local function answer(status, body)
    ngx.status = status
    ngx.header["Content-Type"] = "text/plain; charset=utf-8"
    ngx.header["Cache-Control"] = "no-store"
    ngx.say(body)
    return ngx.exit(ngx.HTTP_OK)
end

local function trouble(reason)
    log.warn("canary_failed", { reason = reason })
    ngx.var.edge_error = reason
    return answer(503, "edge-health failing " .. config.region .. ": " .. reason)
end

function _M.serve()
    -- Routing: a GET on the record keyspace must succeed (absent is fine, an error is not).
    local _, err = redis.get(keys.tenant("edge-health"))
    if err then
        return trouble("routing store unavailable")
    end
    -- TLS: the certificate this name gets is a real one, not the fallback, and not expired.
    local entry = tls.find(_M.host)
    if not entry then
        return trouble("no certificate for " .. _M.host)
    end
    if entry.expiry and entry.expiry <= now() then
        return trouble("certificate for " .. _M.host .. " expired")
    end
    return answer(200, OK_BODY)
end

return _M
