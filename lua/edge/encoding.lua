-- Accept-Encoding, normalised. Compression is nginx's gzip (and brotli where the module is
-- loaded) on the way out; what varies by client is only whether it takes br, gzip, or neither.
-- The request's Accept-Encoding is rewritten to one of at most three values before the cache is
-- consulted, so an origin's `Vary: Accept-Encoding` makes at most three variants instead of one
-- per spelling, and the gzip, gunzip and brotli filters decide from the same value.
local config = require("edge.config").get()

local lower = string.lower
local gmatch = string.gmatch
local match = string.match
local tonumber = tonumber

local _M = {}

local brotli = config.compression and config.compression.brotli

-- The codings an Accept-Encoding value allows (RFC 9110 §12.5.3): q=0 refuses, an explicit
-- entry wins over "*".
local function allowed(header)
    local gzip, br, star
    for item in gmatch(header, "[^,]+") do
        local coding = match(item, "^%s*([%w%*%-]+)")
        local q = tonumber(match(item, ";%s*q%s*=%s*([%d%.]+)") or "1") or 0
        if coding == "gzip" or coding == "x-gzip" then
            gzip = q > 0
        elseif coding == "br" then
            br = q > 0
        elseif coding == "*" then
            star = q > 0
        end
    end
    if gzip == nil then
        gzip = star or false
    end
    if br == nil then
        br = star or false
    end
    return gzip, br
end

-- Rewrites the request's Accept-Encoding to "br, gzip", "gzip" or nothing; returns that value
-- (nil for nothing), which is what $http_accept_encoding reads from then on.
function _M.normalise()
    local raw = ngx.var.http_accept_encoding
    local value
    if raw then
        local gzip, br = allowed(lower(raw))
        if brotli and br then
            value = gzip and "br, gzip" or "br"
        elseif gzip then
            value = "gzip"
        end
    end
    if value ~= raw then
        ngx.req.set_header("Accept-Encoding", value)
    end
    return value
end

return _M
