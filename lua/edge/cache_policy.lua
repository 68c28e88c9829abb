-- Whether a response from the origin may be stored, and for how long it stays fresh (RFC 9111
-- §3, §4.2, §3.5; RFC 9213 CDN-Cache-Control), decided in the header filter with the one parser.
--
-- nginx's proxy_cache stays the store: it computes its own expiry (X-Accel-Expires, else a
-- substring search for s-maxage/max-age, then Expires, then proxy_cache_valid) from the
-- upstream's headers, before any Lua header filter runs, and serves stale only as the response's
-- stale-while-revalidate/stale-if-error allow. So the lifetime is given where the headers are
-- made: the fill hop (edge.fill) between proxy_cache and the origin adds X-Accel-Expires with
-- the freshness computed here (heuristic, tenant default, CDN-Cache-Control, minus Age). In the
-- cached location this module can then only make nginx stricter: when nginx would keep a copy
-- fresh longer than the specification allows, or store one it must not, the copy is not stored
-- ($edge_no_store feeds proxy_no_cache, which nginx checks after the header filter).
local cc = require "edge.cache_control"
local config = require("edge.config").get()

local parse = cc.parse
local seconds = cc.seconds
local parse_http_time = ngx.parse_http_time
local now = ngx.time
local find = string.find
local lower = string.lower
local match = string.match
local concat = table.concat
local floor = math.floor
local min = math.min
local max = math.max
local tonumber = tonumber
local type = type

local _M = {}

local conf = config.cache
local global_default_ttl = conf.default_ttl or 0
local heuristic_fraction = (conf.heuristic_percent or 10) / 100
local global_heuristic_max = conf.heuristic_max_s or 86400

-- RFC 9110 §15.1: heuristically cacheable status codes (proxy_cache_valid lists the same).
local HEURISTIC = {
    [200] = true, [203] = true, [204] = true, [206] = true, [300] = true, [301] = true,
    [308] = true, [404] = true, [405] = true, [410] = true, [414] = true, [501] = true,
}

-- Apparent age below this is taken as transit and clock granularity, not as age.
local TRANSIT_S = 2

local function joined(v)
    if type(v) == "table" then
        return concat(v, ",")
    end
    return v
end

-- What nginx 1.26 will do with the response: its freshness lifetime in seconds, or nil when it
-- will not store it (ngx_http_upstream_process_accel_expires, _cache_control and _expires,
-- simplified). X-Accel-Expires reaches the cached location only from the fill hop.
local function nginx_lifetime(raw_cc, expires, status, t, accel)
    if accel then
        -- The fill hop sends an instant ("@<unix time>"); a plain number is a duration.
        local at = match(accel, "^@(%d+)$")
        local accel_s = at and (tonumber(at) - t) or tonumber(accel)
        if accel_s then
            return accel_s > 0 and accel_s or nil
        end
    end
    if raw_cc then
        local l = lower(raw_cc)
        if find(l, "no-cache", 1, true) or find(l, "no-store", 1, true) or find(l, "private", 1, true) then
            return nil
        end
        local digits, stop = match(l, "s%-maxage=(%d*)(.?)")
        if not digits then
            digits, stop = match(l, "max%-age=(%d*)(.?)")
        end
        if digits then
            if (stop ~= "" and stop ~= "," and stop ~= ";" and stop ~= " ") or digits == "" then
                return nil
            end
            local n = tonumber(digits)
            return n > 0 and n or nil
        end
    end
    if expires then
        local e = parse_http_time(expires)
        if not e or e < t then
            return nil
        end
        return e - t
    end
    return HEURISTIC[status] and 1 or nil
end

-- What the specifications allow for the response being sent: store (boolean), why (a
-- Cache-Status detail token when not stored), fresh_s (seconds it stays fresh from now) and
-- age_s; nginx's own plans are not considered. `tenant_cache` is the tenant record's cache
-- settings, or nil. `revalidated`: a 304 answering a revalidation, judged as the stored 200 it
-- refreshes, with the request's If-Modified-Since standing in for a Last-Modified it may omit.
local function allowed(status, tenant_cache, revalidated)
    local header = ngx.header
    local var = ngx.var
    local t = now()
    local raw_cc = joined(header["Cache-Control"])
    local directives = parse(raw_cc)
    local cdn_raw = joined(header["CDN-Cache-Control"])
    -- nginx keeps Date, Expires and Last-Modified apart from the header list: the upstream's
    -- values first, the stored copy's (a HIT) from ngx.header.
    local expires = var.upstream_http_expires or joined(header["Expires"])
    -- RFC 9213: a targeted field, when present, replaces Cache-Control for this cache.
    local own = cdn_raw and parse(cdn_raw) or directives

    if directives["no-store"] or own["no-store"] then
        return { store = false, why = "no-store" }
    end
    if directives["private"] or own["private"] then
        return { store = false, why = "private" }
    end
    if directives["no-cache"] and not cdn_raw then
        return { store = false, why = "no-cache" }
    end
    -- RFC 9111 §3.5: a response to a request with credentials is shared only when it says so.
    if var.http_authorization and not (directives["public"] or directives["s-maxage"]
        or directives["must-revalidate"] or own["public"] or own["s-maxage"]) then
        return { store = false, why = "authorization" }
    end
    -- Stale serving is nginx's reading of Cache-Control: refuse a copy it would serve stale
    -- against must-revalidate/proxy-revalidate, or against a targeted field that does not allow it.
    local stale_ok = directives["stale-while-revalidate"] or directives["stale-if-error"]
    if stale_ok and (own["must-revalidate"] or own["proxy-revalidate"] or directives["must-revalidate"]
        or directives["proxy-revalidate"]
        or (cdn_raw and not (own["stale-while-revalidate"] or own["stale-if-error"]))) then
        return { store = false, why = "stale-not-allowed" }
    end

    local date = parse_http_time(var.upstream_http_date or header["Date"] or "")
    local age_value = seconds({ age = var.upstream_http_age or header["Age"] }, "age") or 0
    local apparent = date and (t - date) or 0
    local age = max(age_value, apparent > TRANSIT_S and apparent or 0)

    local lifetime, explicit
    local s = seconds(own, "s-maxage") or seconds(own, "max-age")
    if s then
        lifetime, explicit = s, true
    elseif own["s-maxage"] or own["max-age"] then
        lifetime, explicit = 0, true -- invalid or conflicting: stale
    elseif not cdn_raw and expires then
        local e = parse_http_time(expires)
        lifetime, explicit = (e and date) and max(0, e - date) or 0, true
    end
    local last_modified = var.upstream_http_last_modified or header["Last-Modified"]
    local has_validator = last_modified or var.upstream_http_etag or header["ETag"]
    if revalidated then
        status = 200
        last_modified = last_modified or var.http_if_modified_since
        has_validator = true
    end
    if not explicit then
        local lm = HEURISTIC[status] and parse_http_time(last_modified or "")
        local default = tenant_cache and tenant_cache.default_ttl_s or global_default_ttl
        if lm and date and date > lm then
            local cap = global_heuristic_max
            if tenant_cache and tenant_cache.heuristic_max_s then
                cap = min(cap, tenant_cache.heuristic_max_s)
            end
            lifetime = min(floor((date - lm) * heuristic_fraction), cap)
        elseif default > 0 and HEURISTIC[status] then
            lifetime = default
        elseif not has_validator then
            return { store = false, why = "no-freshness" }
        else
            lifetime = 0
        end
    end
    return { store = true, fresh_s = lifetime - age, age_s = age }, raw_cc, expires, has_validator, t
end

-- The fill hop's question: what the specifications allow (see allowed()).
function _M.allowed(status, tenant_cache, revalidated)
    return (allowed(status, tenant_cache, revalidated))
end

-- The cached location's verdict: what the specifications allow, and not stored when nginx would
-- keep the copy fresh longer than that.
function _M.evaluate(status, tenant_cache)
    local verdict, raw_cc, expires, has_validator, t = allowed(status, tenant_cache)
    if not verdict.store then
        return verdict
    end
    local fresh = verdict.fresh_s
    local accel = ngx.var.upstream_http_x_accel_expires
    local nginx = nginx_lifetime(raw_cc, expires, status, t, accel)
    if not nginx then
        return { store = false, why = "not-storable", fresh_s = fresh, age_s = verdict.age_s }
    end
    -- nginx keeps it fresh for `nginx` seconds from now; one second is nginx's clock granularity,
    -- and the fill hop judged the age a moment earlier (transit below TRANSIT_S is not age).
    local slack = accel and (1 + TRANSIT_S) or 1
    if fresh < nginx - slack and not (nginx == 1 and has_validator) then
        local why = fresh > 0 and "shorter-freshness" or "stale"
        return { store = false, why = why, fresh_s = fresh, age_s = verdict.age_s }
    end
    return verdict
end

return _M
