-- ACME HTTP-01 answers on port 80. With the deployment's account thumbprint configured the
-- answer is stateless (`<token>.<thumbprint>`), so a validation reaching any task in any region
-- succeeds; otherwise the token stored by the issuer in Redis is served.
local config = require("edge.config").get()
local keys = require "edge.keys"
local names = require "edge.names"
local redis = require "edge.redis"
local log = require "edge.log"

local match = string.match

local _M = {}

local thumbprint = config.acme.thumbprint

local function answer(status, body)
    ngx.status = status
    ngx.header["Content-Type"] = "text/plain"
    ngx.header["Cache-Control"] = "no-store"
    ngx.print(body)
    return ngx.exit(ngx.HTTP_OK)
end

function _M.serve()
    local token = match(ngx.var.uri, "^/%.well%-known/acme%-challenge/([%w_%-]+)$")
    if not token or #token > 256 then
        ngx.var.edge_error = "malformed challenge token"
        return answer(404, "not found\n")
    end
    if thumbprint then
        return answer(200, token .. "." .. thumbprint)
    end
    local host = names.normalize_host(ngx.var.host)
    if not host then
        ngx.var.edge_error = "invalid host"
        return answer(404, "not found\n")
    end
    local value, err = redis.get(keys.challenge(host, token))
    if err then
        log.warn("challenge_lookup_failed", { domain = host, err = err })
        return answer(503, "challenge store unavailable\n")
    end
    if not value then
        return answer(404, "not found\n")
    end
    return answer(200, value)
end

return _M
