-- Tenant routing in the access phase: host (and SNI) checks, the three tenant forms,
-- the origin from the tenant record, and the cache key with its purge generation.
-- The request ends here (refused, redirected, the canary, or a hit in the memory tier) or goes on
-- to @edge_cache (nginx.conf), where proxy_cache and the Lua header and body filters are: a memory
-- hit enters no Lua filter, and what ends here is counted here.
local config = require("edge.config").get()
local names = require "edge.names"
local records = require "edge.records"
local origin_guard = require "edge.origin_guard"
local encoding = require "edge.encoding"
local purge_state = require "edge.purge_state"
local memory_cache = require "edge.memory_cache"
local metrics = require "edge.metrics"
local log = require "edge.log"
local canary = require "edge.canary"
local lrucache = require "resty.lrucache"

local match = string.match
local sub = string.sub
local find = string.find
local format = string.format
local get_method = ngx.req.get_method
local exec = ngx.exec

local _M = {}

local memory_enabled = memory_cache.enabled

local platform = config.platform_domain
local platform_suffix = "." .. platform
local https_port_suffix = config.https_port == 443 and "" or (":" .. config.https_port)
local status_name = config.cache.status_name

-- Host and SNI values as received, normalised once per worker (a pure function of the string):
-- { name = normalised } or { refused = reason }.
local host_decisions = assert(lrucache.new(config.routing.lru_size))

local function decide_host(raw)
    local d = host_decisions:get(raw)
    if not d then
        local name, why = names.normalize_host(raw)
        d = name and { name = name } or { refused = why }
        host_decisions:set(raw, d)
    end
    return d
end

-- tenant_id: set once the request's tenant is known; its refusals carry Cache-Status, as
-- edge.cache_status gives every answer of a tenant's.
local function reject(status, reason, tenant_id)
    local var = ngx.var
    var.edge_error = reason
    ngx.status = status
    local header = ngx.header
    header["Content-Type"] = "text/plain; charset=utf-8"
    header["Cache-Control"] = "no-store"
    if tenant_id then
        header["Cache-Status"] = status_name .. "; fwd=request"
    end
    metrics.count_request(tenant_id, status, nil)
    ngx.say(reason)
    return ngx.exit(ngx.HTTP_OK)
end

-- Which tenant a host and URI belong to.
-- Returns tenant_id, site_path[, nil, nil, directory_form]; or nil, status, reason[, location].
local function resolve(host, uri)
    if host == platform then
        -- Directory form: platform.example/<tenant>/...
        local tenant, rest = match(uri, "^/([^/?]+)(.*)$")
        if not tenant or not names.valid_tenant_id(tenant) then
            return nil, 404, "no tenant in path"
        end
        if rest == "" or sub(rest, 1, 1) == "?" then
            return nil, 301, "tenant root needs a trailing slash", "/" .. tenant .. "/" .. rest
        end
        return tenant, rest, nil, nil, true
    end
    local n = #host - #platform_suffix
    if n > 0 and sub(host, n + 1) == platform_suffix then
        -- Subdomain form: <tenant>.platform.example (one label only).
        local label = sub(host, 1, n)
        if find(label, ".", 1, true) or not names.valid_tenant_id(label) then
            return nil, 404, "unknown host"
        end
        return label, uri
    end
    -- Custom domain form: the registry maps the domain (or its tenant wildcard) to its tenant.
    local tenant, err = records.host_tenant(host)
    if err then
        return nil, 503, "routing store unavailable"
    end
    if not tenant then
        return nil, 404, "unknown host"
    end
    return tenant, uri
end

-- Returns the tenant record, site path and whether it is the directory form; or nil, status,
-- reason[, location].
local function tenant_for(host, uri)
    local tenant_id, site_path_or_status, reason, location, directory_form = resolve(host, uri)
    if not tenant_id then
        return nil, site_path_or_status, reason, location
    end
    local tenant, err = records.tenant(tenant_id)
    if err then
        return nil, 503, "routing store unavailable"
    end
    if not tenant then
        return nil, 404, "unknown tenant"
    end
    return tenant, site_path_or_status, nil, nil, directory_form
end

-- What a request that reaches the origin needs (a miss, or no purge state): where to send it.
local function set_origin(var, tenant, origin, target, site_path)
    var.edge_origin = target
    var.edge_origin_host = origin.authority
    var.edge_origin_name = origin.host
    var.edge_origin_uri = origin.base .. site_path
    -- For the fill hop's heuristic and default freshness (edge.fill).
    local cache = tenant.cache
    if cache then
        var.edge_fill_cache = (cache.heuristic_max_s or "") .. "," .. (cache.default_ttl_s or "")
    end
end

-- Ends the request, or returns when it goes on to proxy_cache.
local function route(var)
    local raw_host = var.host
    local decided = decide_host(raw_host)
    local host = decided.name
    if not host then
        return reject(400, "invalid host: " .. decided.refused)
    end
    -- A request for another host on this connection: the client must open a new one (RFC 9110 421).
    local sni = var.ssl_server_name
    if sni ~= raw_host and (not sni or decide_host(sni).name ~= host) then
        return reject(421, "host does not match the TLS server name")
    end
    local uri = var.request_uri
    -- The path: up to a "?" or "#" (plain searches: string.match is not compiled by LuaJIT).
    local path = uri
    local cut = find(path, "?", 1, true)
    if cut then
        path = sub(path, 1, cut - 1)
    end
    cut = find(path, "#", 1, true)
    if cut then
        path = sub(path, 1, cut - 1)
    end
    local unsafe = names.unsafe_path(path)
    if unsafe then
        return reject(400, unsafe)
    end

    -- The Route53 health check's canary name answers for the region itself, never as a tenant.
    if host == canary.host then
        return exec("@edge_canary")
    end

    local tenant, site_path, reason, location, directory_form = tenant_for(host, uri)
    if not tenant then
        if location then
            metrics.count_request(nil, site_path, nil)
            return ngx.redirect(location, site_path)
        end
        return reject(site_path, reason)
    end
    var.edge_tenant = tenant.id

    local origin = tenant.origin
    local target, status, refused = origin_guard.target(origin)
    if not target then
        metrics.error("origin_refused")
        log.warn("origin_refused", { tenant = tenant.id, err = refused })
        return reject(status, "origin unavailable", tenant.id)
    end
    local accept_encoding = encoding.normalise()
    -- The platform host is shared by every directory-form tenant: no tenant sets its HSTS.
    if directory_form then
        -- For edge.cache_status, past the internal redirect (which ngx.ctx does not survive).
        var.edge_directory_form = "1"
    elseif tenant.hsts then
        var.edge_hsts = tenant.hsts
    end

    local state, err = purge_state.state(tenant.id)
    if not state then
        -- Without the purge generations a cached copy might be one that was purged: go to the origin.
        metrics.error("purge_state")
        log.warn("purge_state_unavailable", { tenant = tenant.id, err = err })
        set_origin(var, tenant, origin, target, site_path)
        var.edge_cache_bypass = "1"
        var.edge_cache_key = tenant.id .. "|bypass|" .. host .. "|" .. uri
        return
    end
    local gen = purge_state.generation(state, host, site_path, uri)
    -- "%.0f": tostring() keeps 14 digits, so large generations would collide in the key.
    local key = tenant.id .. "|" .. format("%.0f", gen) .. "|" .. host .. "|" .. uri
    if memory_enabled then
        -- A hit ends the request here; what follows is for proxy_cache and the origin.
        memory_cache.serve(key, get_method(), accept_encoding, tenant.id)
    end
    set_origin(var, tenant, origin, target, site_path)
    var.edge_cache_key = key
end

function _M.route()
    route(ngx.var)
    return exec("@edge_cache")
end

-- @edge_too_large: nginx refused a body over client_max_body_size before the access phase. Its
-- own line would carry the request line; this one has the path without the query.
function _M.too_large()
    local var = ngx.var
    local path = var.request_uri
    local cut = find(path, "?", 1, true)
    if cut then
        path = sub(path, 1, cut - 1)
    end
    log.warn("body_too_large", {
        host = var.host,
        path = path,
        limit = var.edge_body_limit,
        length = var.http_content_length,
    })
    return ngx.exit(413)
end

-- Port 80: known hosts go to HTTPS, unknown hosts get 404 and nothing else.
function _M.redirect_to_https()
    local var = ngx.var
    local decided = decide_host(var.host)
    local host = decided.name
    if not host then
        return reject(400, "invalid host: " .. decided.refused)
    end
    local uri = var.request_uri
    local tenant, status, reason = tenant_for(host, uri)
    if not tenant and status ~= 301 then
        return reject(status, reason)
    end
    local method = var.request_method
    local code = (method == "GET" or method == "HEAD") and 301 or 308
    return ngx.redirect("https://" .. host .. https_port_suffix .. uri, code)
end

return _M
