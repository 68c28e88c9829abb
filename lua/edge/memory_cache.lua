-- The memory tier: small cached responses kept in the edge_objects shared dict and answered in
-- the access phase, before nginx's proxy_cache opens and parses a cache file. proxy_cache stays
-- the cache of record (disk, large objects, stale serving, revalidation); this tier only holds
-- copies that are fresh, for the time they stay fresh.
--
-- Entries use the proxy_cache key, purge generation included, so a purge misses here exactly
-- as it misses there. A copy is made from a 200 response to a GET when it is small enough, has a
-- Content-Length, no Set-Cookie and no Vary, and Cache-Control allows shared caching; it lives
-- for its remaining freshness (origin max-age or s-maxage, else the default TTL, minus its age),
-- at most cache.memory_max_ttl seconds. Conditional and Range requests go to proxy_cache.
local lrucache = require "resty.lrucache"
local cjson = require "cjson.safe"
local config = require("edge.config").get()

local shm = ngx.shared.edge_objects
local now = ngx.now
local parse_http_time = ngx.parse_http_time
local find = string.find
local sub = string.sub
local lower = string.lower
local match = string.match
local concat = table.concat
local floor = math.floor
local min = math.min
local tonumber = tonumber
local type = type
local pairs = pairs

local _M = {}

local conf = config.cache
local max_bytes = conf.memory_max_bytes or 0
local max_ttl = conf.memory_max_ttl or 0
local default_ttl = conf.default_ttl or 0
local status_value = conf.status_name .. "; hit; detail=memory"

_M.enabled = shm ~= nil and max_bytes > 0 and max_ttl > 0

-- Decoded header lists, keyed by their JSON text (identical text, identical headers).
local decoded = assert(lrucache.new(4096))

-- Headers nginx sets itself or that must not be replayed from a copy.
local SKIP = {
    ["date"] = true, ["server"] = true, ["connection"] = true, ["keep-alive"] = true,
    ["transfer-encoding"] = true, ["content-length"] = true, ["cache-status"] = true,
    ["age"] = true, ["set-cookie"] = true, ["vary"] = true,
}

-- Answers the request from memory when it can; returns false to let proxy_cache handle it.
function _M.serve(key, method)
    if method ~= "GET" and method ~= "HEAD" then
        return false
    end
    local value = shm:get(key)
    if not value then
        return false
    end
    local var = ngx.var
    if var.http_range or var.http_if_none_match or var.http_if_modified_since then
        return false
    end
    local nl = find(value, "\n", 1, true)
    local meta_json = sub(value, 1, nl - 1)
    local meta = decoded:get(meta_json)
    if not meta then
        meta = cjson.decode(meta_json)
        decoded:set(meta_json, meta)
    end
    local header = ngx.header
    local headers = meta.h
    for i = 1, #headers, 2 do
        header[headers[i]] = headers[i + 1]
    end
    local body = sub(value, nl + 1)
    header["Content-Length"] = #body
    header["Age"] = meta.a + floor(now() - meta.t)
    header["Cache-Status"] = status_value
    var.edge_cache_tier = "MEMORY"
    if method == "GET" then
        ngx.print(body)
    end
    return ngx.exit(ngx.HTTP_OK)
end

-- Seconds the response stays fresh from now, or nil when it must not be copied.
local function remaining_freshness(header, var)
    local cc = header["Cache-Control"]
    if type(cc) == "table" then
        cc = concat(cc, ",")
    end
    local ttl
    if cc then
        cc = lower(cc)
        if find(cc, "no-store", 1, true) or find(cc, "no-cache", 1, true) or find(cc, "private", 1, true) then
            return nil
        end
        ttl = tonumber(match(cc, "s%-maxage=(%d+)")) or tonumber(match(cc, "max%-age=(%d+)"))
    end
    if not ttl then
        if header["Expires"] then
            return nil -- rare; proxy_cache handles it
        end
        ttl = default_ttl
    end
    -- The copy's age: the origin's Age, plus the time since the origin produced it.
    local age = tonumber(var.upstream_http_age) or 0
    local produced = parse_http_time(var.upstream_http_date or "")
    if produced then
        local since = now() - produced
        if since > 0 then
            age = age + since
        end
    end
    local left = min(ttl - age, max_ttl)
    if left < 1 then
        return nil
    end
    return left, floor(age)
end

-- Header filter: decides whether this response is copied into memory, and starts the copy.
function _M.start_fill(cache_status)
    if ngx.status ~= 200 or ngx.req.get_method() ~= "GET" then
        return
    end
    if cache_status ~= "MISS" and cache_status ~= "EXPIRED" and cache_status ~= "REVALIDATED"
        and cache_status ~= "HIT" then
        return -- stale copies and bypassed responses are not copied
    end
    local header = ngx.header
    local var = ngx.var
    -- nginx keeps the length outside the header list; this variable reads it. A chunked
    -- response has none: its size is checked while it is collected.
    local length = tonumber(var.sent_http_content_length)
    if (length and length > max_bytes) or header["Set-Cookie"] or header["Vary"] then
        return
    end
    local ttl, age = remaining_freshness(header, var)
    if not ttl then
        return
    end
    local headers, n = {}, 0
    for name, value in pairs(ngx.resp.get_headers(50, true)) do
        if not SKIP[name] then
            if type(value) == "table" then
                value = concat(value, ", ")
            end
            headers[n + 1], headers[n + 2] = name, value
            n = n + 2
        end
    end
    ngx.ctx.memory_fill = {
        key = var.edge_cache_key,
        length = length,
        ttl = ttl,
        meta = cjson.encode({ h = headers, a = age, t = now() }),
        parts = {},
        size = 0,
    }
    var.edge_memory_fill = "1"
end

-- Body filter: collects the body of a response being copied and stores it at the end.
function _M.body_filter()
    if ngx.var.edge_memory_fill ~= "1" then
        return
    end
    local fill = ngx.ctx.memory_fill
    local chunk = ngx.arg[1]
    if chunk ~= "" then
        fill.size = fill.size + #chunk
        if fill.size > max_bytes then
            ngx.var.edge_memory_fill = "" -- too large after all: leave it to proxy_cache
            ngx.ctx.memory_fill = nil
            return
        end
        fill.parts[#fill.parts + 1] = chunk
    end
    if not ngx.arg[2] then
        return
    end
    -- The last buffer: nginx only marks it on a complete response, so a copy is never partial.
    ngx.var.edge_memory_fill = ""
    if not fill.length or fill.size == fill.length then
        shm:set(fill.key, fill.meta .. "\n" .. concat(fill.parts), fill.ttl)
    end
end

return _M
