-- The fill hop: an internal server on a unix socket between the cached location and the origin
-- (edge-image/nginx.conf.mustache), used only on cache misses and revalidations.
--
-- nginx fixes a cache entry's lifetime from the upstream's response headers before any Lua
-- header filter of the cached location runs, so a lifetime nginx cannot compute itself
-- (heuristic freshness, a tenant default, CDN-Cache-Control, max-age minus Age) has to be in the
-- upstream's answer: this hop proxies to the origin and adds X-Accel-Expires with the freshness
-- edge.cache_policy allows. The origin's own X-Accel-* never pass this hop, so only the edge sets
-- it. This hop also compresses (gzip, brotli) for the normalised Accept-Encoding it is sent, so
-- proxy_cache stores each variant once, compressed, and hits are never recompressed.
local cache_policy = require "edge.cache_policy"
local cc = require "edge.cache_control"

local floor = math.floor
local match = string.match
local tonumber = tonumber
local type = type
local concat = table.concat

local _M = {}

-- The tenant's cache settings, sent by the cached location as "<heuristic_max_s>,<default_ttl_s>"
-- (either may be empty): this hop may run in another worker, whose records LRU may not hold
-- the tenant.
local function tenant_cache(value)
    if not value then
        return nil
    end
    local heuristic, default = match(value, "^(%d*),(%d*)$")
    if not heuristic then
        return nil
    end
    return { heuristic_max_s = tonumber(heuristic), default_ttl_s = tonumber(default) }
end

function _M.header_filter()
    local status = ngx.status
    local header = ngx.header
    local var = ngx.var
    local verdict = cache_policy.allowed(status, tenant_cache(var.http_x_edge_tenant_cache), status == 304)
    local fresh = verdict.store and verdict.fresh_s
    local raw = header["Cache-Control"]
    if fresh and fresh >= 1 then
        -- An instant ("@"), not a duration: time the answer spends on its way to the cached
        -- location (a slow body holds the header back) counts against it, as it does in its age.
        -- Below one second nginx's own rules apply.
        header["X-Accel-Expires"] = "@" .. (ngx.time() + floor(fresh))
        if raw and header["CDN-Cache-Control"] then
            -- CDN-Cache-Control governs, but nginx would still read Cache-Control (a browser's
            -- max-age=0 or no-cache stops the store): it travels under another name, and the
            -- cached location gives it back its own (edge.cache_status).
            header["Cache-Control"] = nil
            header["X-Edge-Cache-Control"] = raw
        end
    end
    -- RFC 9110 §7.7: no-transform forbids compressing on the way. Any Content-Encoding makes the
    -- gzip and brotli filters pass the body as it is; the cached location removes "identity".
    if type(raw) == "table" then
        raw = concat(raw, ",")
    end
    if raw and not header["Content-Encoding"] and cc.parse(raw)["no-transform"] then
        header["Content-Encoding"] = "identity"
    end
end

return _M
