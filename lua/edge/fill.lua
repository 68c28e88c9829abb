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
--
-- stale-if-error on an origin's 5xx (RFC 5861): nginx serves a stale copy that allows it when
-- the upstream fails to answer, never for an upstream's 5xx (ngx_http_upstream_test_next looks
-- only at proxy_cache_use_stale, which would serve any stale copy). This hop remembers, per cache
-- key, until when the copy it passed may be served stale on error (edge_stale_if_error); when the
-- cached location revalidates a stale copy still inside that window, the request goes through
-- @stale_if_error, where an origin's 500/502/503/504 closes the connection: nginx then serves the
-- copy as it does when the origin is down, and nginx's own reading of the copy stays the last
-- word. Outside the window (or with the entry evicted) the origin's answer passes as it is.
local cache_policy = require "edge.cache_policy"
local cc = require "edge.cache_control"
local log = require "edge.log"

local floor = math.floor
local match = string.match
local byte = string.byte
local md5 = ngx.md5
local time = ngx.time
local exec = ngx.exec
local tonumber = tonumber
local type = type
local concat = table.concat
local find = string.find
local sub = string.sub

local _M = {}

local windows = ngx.shared.edge_stale_if_error
local EXPIRED = byte("E")
-- nginx's 444: close the connection without an answer.
local CLOSE = 444
-- Long enough for nginx's immediate retry on another connection.
local FAILED, FAILED_TTL_S = "f:", 5

-- The cached location's X-Edge-Cache-Entry: "<$upstream_cache_status> <$request_id> <cache key>".
-- Returns status, key, request id.
local function cache_entry(var)
    local value = var.http_x_edge_cache_entry
    if value then
        local status, id, key = match(value, "^(%u*) (%x+) (.+)$")
        return status, key, id
    end
end

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

-- access_by_lua: a revalidation of a stale copy that may still be served stale on error goes
-- through @stale_if_error (nginx.conf.mustache).
function _M.access()
    local value = ngx.var.http_x_edge_cache_entry
    if not value or byte(value, 1) ~= EXPIRED then
        return
    end
    local status, key, id = cache_entry(ngx.var)
    local digest = status == "EXPIRED" and md5(key)
    local until_s = digest and windows:get(digest)
    if until_s and until_s >= time() then
        if windows:get(FAILED .. digest) == id then
            -- nginx retries a request whose kept-alive connection closed before an answer: the
            -- origin has just failed this very request, and is not asked twice.
            return ngx.exit(CLOSE)
        end
        return exec("@stale_if_error")
    end
end

-- The last value of an upstream variable ("a, b : c" after retries and internal redirects).
local function last(value)
    return value and match(value, "([^%s,:]+)%s*$") or value
end

-- nginx's own line about this failure carries the origin URL with its query string, so this hop
-- logs at crit (nginx.conf.mustache) and says what happened here, from the upstream variables:
-- an origin that answered (a header time) did so with a 5xx, under a stale copy's stale-if-error
-- (@stale_if_error); otherwise nginx's 504 is a timeout (connect or read: the connect time says
-- which), its 502 without a connect time a refused connection or a failed TLS handshake
-- (indistinguishable here), and with one a connection closed or an invalid answer.
-- The path is logged up to its "?": never the query.
local function log_failure(var)
    local upstream_status = last(var.upstream_status)
    local connect = last(var.upstream_connect_time)
    local header = last(var.upstream_header_time)
    local reason
    if header and header ~= "-" then
        reason = "origin_5xx_stale_served"
    elseif upstream_status == "504" then
        reason = "timed_out"
    elseif upstream_status == "502" and (not connect or connect == "-") then
        reason = "connect_or_tls_failed"
    else
        reason = "closed_or_invalid"
    end
    local path = var.request_uri
    local cut = find(path, "?", 1, true)
    if cut then
        path = sub(path, 1, cut - 1)
    end
    local fields = {
        tenant = var.http_x_edge_tenant,
        origin = var.http_x_edge_origin_name,
        addr = var.upstream_addr,
        status = tonumber(upstream_status) or upstream_status,
        reason = reason,
        connect_time = connect,
        header_time = header,
        path = path,
    }
    if reason == "origin_5xx_stale_served" then
        log.warn("origin_failed", fields)
    else
        log.err("origin_failed", fields)
    end
end

-- rewrite_by_lua in @origin_failed: closes the connection (a failure to the cached location,
-- which then serves a stale copy if it allows that), remembering which request failed.
function _M.origin_failed()
    local var = ngx.var
    local status, key, id = cache_entry(var)
    if status == "EXPIRED" then
        windows:set(FAILED .. md5(key), id, FAILED_TTL_S)
    end
    log_failure(var)
    return ngx.exit(CLOSE)
end

-- Remembers until when the copy nginx stores from this answer may be served stale on error:
-- nginx's own reading (freshness from X-Accel-Expires, plus stale-if-error from the Cache-Control
-- it sees), or nothing.
local function remember_window(var, fresh_until, cc_seen)
    local status, key = cache_entry(var)
    if not key or status == "BYPASS" then
        return
    end
    local grace = fresh_until and cc_seen and cc.parse(cc_seen)["stale-if-error"]
    -- As nginx reads it: digits only.
    grace = type(grace) == "string" and match(grace, "^%d+$") and tonumber(grace)
    local until_s = grace and fresh_until + grace
    local ttl = until_s and until_s - time()
    key = md5(key)
    if ttl and ttl >= 0 then
        windows:set(key, until_s, ttl + 1)
    else
        windows:delete(key)
    end
end

function _M.header_filter()
    local status = ngx.status
    local header = ngx.header
    local var = ngx.var
    local verdict = cache_policy.allowed(status, tenant_cache(var.http_x_edge_tenant_cache), status == 304)
    local fresh = verdict.store and verdict.fresh_s
    local raw = header["Cache-Control"]
    local fresh_until, cc_seen
    if fresh and fresh >= 1 then
        -- An instant ("@"), not a duration: time the answer spends on its way to the cached
        -- location (a slow body holds the header back) counts against it, as it does in its age.
        -- Below one second nginx's own rules apply.
        fresh_until = time() + floor(fresh)
        header["X-Accel-Expires"] = "@" .. fresh_until
        cc_seen = raw
        if raw and header["CDN-Cache-Control"] then
            -- CDN-Cache-Control governs, but nginx would still read Cache-Control (a browser's
            -- max-age=0 or no-cache stops the store): it travels under another name, and the
            -- cached location gives it back its own (edge.cache_status).
            header["Cache-Control"] = nil
            header["X-Edge-Cache-Control"] = raw
            cc_seen = nil
        end
    end
    if verdict.store then
        remember_window(var, fresh_until, cc_seen)
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
