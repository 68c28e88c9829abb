-- Accept-Encoding, normalised. Compression is nginx's gzip (and brotli where the module is
-- loaded) on the way out; what varies by client is only whether it takes br, gzip, or neither.
-- The request's Accept-Encoding is rewritten to one of at most three values before the cache is
-- consulted, so an origin's `Vary: Accept-Encoding` makes at most three variants instead of one
-- per spelling, and the gzip, gunzip and brotli filters decide from the same value.
local lrucache = require "resty.lrucache"
local config = require("edge.config").get()

local lower = string.lower
local gmatch = string.gmatch
local match = string.match
local tonumber = tonumber

local _M = {}

local brotli = config.compression and config.compression.brotli

-- Values as received -> the normalised one (false: none). Clients send few distinct spellings;
-- parsing one takes string.gmatch and string.match, which LuaJIT does not compile.
local normalised = assert(lrucache.new(1000))

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
local function normalised_value(raw)
    local gzip, br = allowed(lower(raw))
    if brotli and br then
        return gzip and "br, gzip" or "br"
    elseif gzip then
        return "gzip"
    end
    return false
end

function _M.normalise()
    local raw = ngx.var.http_accept_encoding
    local value
    if raw then
        value = normalised:get(raw)
        if value == nil then
            value = normalised_value(raw)
            normalised:set(raw, value)
        end
        value = value or nil
    end
    if value ~= raw then
        ngx.req.set_header("Accept-Encoding", value)
    end
    return value
end

return _M
