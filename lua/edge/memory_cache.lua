-- The memory tier: small cached responses kept in the edge_objects shared dict and answered in
-- the access phase, before nginx's proxy_cache opens and parses a cache file. proxy_cache stays
-- the cache of record (disk, large objects, stale serving, revalidation); this tier only holds
-- copies that are fresh, for the time they stay fresh.
--
-- Entries use the proxy_cache key, purge generation included, so a purge misses here exactly
-- as it misses there. A copy is made from a 200 response to a GET when it is small enough, has a
-- Content-Length, no Set-Cookie and no Vary but Accept-Encoding (the key holds the normalised
-- Accept-Encoding, edge.encoding), that edge.cache_policy lets proxy_cache store; it
-- lives for its remaining freshness by that policy (explicit, heuristic or the tenant's default,
-- minus its age), at most cache.memory_max_ttl seconds. Conditional, Range and credentialed
-- requests go to proxy_cache.
--
-- Each worker also keeps the copies it served, decoded (headers and body), until the copy's own
-- expiry: a hit then reads no shared dict and copies nothing. The key holds the purge generation,
-- so a purge misses here as well. Only small bodies are kept so (WORKER_BODY_MAX), a bounded
-- number of them (WORKER_ENTRIES): a worker holds at most their product.
local lrucache = require "resty.lrucache"
local cjson = require "cjson.safe"
local config = require("edge.config").get()
local cache_policy = require "edge.cache_policy"
local records = require "edge.records"
local metrics = require "edge.metrics"

local shm = ngx.shared.edge_objects
local now = ngx.now
local find = string.find
local gmatch = string.gmatch
local lower = string.lower
local sub = string.sub
local concat = table.concat
local floor = math.floor
local min = math.min
local tonumber = tonumber
local type = type
local pairs = pairs

local WORKER_ENTRIES = 1024
local WORKER_BODY_MAX = 16384

local _M = {}

local conf = config.cache
local max_bytes = conf.memory_max_bytes or 0
local max_ttl = conf.memory_max_ttl or 0
local status_value = conf.status_name .. "; hit; detail=memory"

_M.enabled = shm ~= nil and max_bytes > 0 and max_ttl > 0

-- Decoded header lists, keyed by their JSON text (identical text, identical headers).
local decoded = assert(lrucache.new(4096))

-- This worker's decoded copies: memory key -> { h = headers, body = body, a = age, t = stored at }.
local entries = assert(lrucache.new(WORKER_ENTRIES))

-- Headers nginx sets itself or that must not be replayed from a copy.
local SKIP = {
    ["date"] = true, ["server"] = true, ["connection"] = true, ["keep-alive"] = true,
    ["transfer-encoding"] = true, ["content-length"] = true, ["cache-status"] = true,
    ["age"] = true, ["set-cookie"] = true,
}

-- The memory key: proxy_cache's, and the normalised Accept-Encoding the copy was made for.
local function memory_key(key, accept_encoding)
    return key .. "|" .. (accept_encoding or "")
end

-- true when a Vary value names nothing but Accept-Encoding (which the key holds).
local function varies_only_by_encoding(vary)
    if type(vary) == "table" then
        vary = concat(vary, ",")
    end
    for name in gmatch(vary, "[^,%s]+") do
        if lower(name) ~= "accept-encoding" then
            return false
        end
    end
    return true
end

-- The stored copy under this memory key, decoded: { h = headers, body = body, a = age, t = stored
-- at }, or nil.
local function lookup(mkey)
    local entry = entries:get(mkey)
    if entry then
        return entry
    end
    local value = shm:get(mkey)
    if not value then
        return nil
    end
    local nl = find(value, "\n", 1, true)
    local meta_json = sub(value, 1, nl - 1)
    local meta = decoded:get(meta_json)
    if not meta then
        meta = cjson.decode(meta_json)
        decoded:set(meta_json, meta)
    end
    local body = sub(value, nl + 1)
    entry = { h = meta.h, body = body, a = meta.a, t = meta.t }
    -- x: when the shared copy expires (copies stored before it was recorded are not kept here).
    local left = meta.x and meta.x - now()
    if left and left > 0 and #body <= WORKER_BODY_MAX then
        entries:set(mkey, entry, left)
    end
    return entry
end

-- Answers the request from memory when it can (and counts it: no Lua filter sees such answers);
-- returns false to let proxy_cache handle it. accept_encoding: the request's, normalised
-- (edge.encoding).
function _M.serve(key, method, accept_encoding, tenant_id)
    if method ~= "GET" and method ~= "HEAD" then
        return false
    end
    local var = ngx.var
    -- Range, If-None-Match, If-Modified-Since or Authorization, in one nginx map (nginx.conf).
    -- RFC 9111 §3.5: a request with credentials is never answered from a shared copy here.
    if var.edge_memory_skip ~= "" then
        return false
    end
    local entry = lookup(memory_key(key, accept_encoding))
    if not entry then
        return false
    end
    local header = ngx.header
    local headers = entry.h
    for i = 1, #headers, 2 do
        header[headers[i]] = headers[i + 1]
    end
    local body = entry.body
    header["Content-Length"] = #body
    header["Age"] = entry.a + floor(now() - entry.t)
    header["Cache-Status"] = status_value
    var.edge_cache_tier = "MEMORY"
    metrics.count_request(tenant_id, 200, "MEMORY")
    if method == "GET" then
        ngx.print(body)
    end
    return ngx.exit(ngx.HTTP_OK)
end

-- Header filter: decides whether this response is copied into memory, and starts the copy.
-- `verdict` is edge.cache_policy's for a response from the origin; computed here for copies
-- served by proxy_cache (HIT, REVALIDATED).
function _M.start_fill(cache_status, verdict)
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
    local vary = header["Vary"]
    if (length and length > max_bytes) or header["Set-Cookie"] or (vary and not varies_only_by_encoding(vary)) then
        return
    end
    if not verdict then
        local tenant = records.cached_tenant(var.edge_tenant)
        verdict = cache_policy.evaluate(200, tenant and tenant.cache)
    end
    if not verdict.store or not verdict.fresh_s or verdict.fresh_s < 1 then
        return
    end
    local ttl, age = min(verdict.fresh_s, max_ttl), floor(verdict.age_s)
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
        key = memory_key(var.edge_cache_key, var.http_accept_encoding),
        length = length,
        ttl = ttl,
        meta = cjson.encode({ h = headers, a = age, t = now(), x = now() + ttl }),
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
