-- The Cache-Status response header (RFC 9211), from nginx's $upstream_cache_status.
local config = require("edge.config").get()
local metrics = require "edge.metrics"
local memory_cache = require "edge.memory_cache"
local cache_policy = require "edge.cache_policy"
local records = require "edge.records"

local tonumber = tonumber

local _M = {}

local memory_enabled = memory_cache.enabled

local name = config.cache.status_name

-- The storing rule for a response that came from the origin: vetoes the copy through
-- $edge_no_store (proxy_no_cache) when the specification does not allow what nginx would keep.
local function judge(var)
    local tenant = records.cached_tenant(var.edge_tenant)
    local verdict = cache_policy.evaluate(ngx.status, tenant and tenant.cache)
    if not verdict.store then
        var.edge_no_store = "1"
    end
    return verdict
end

local FORMS = {
    HIT = "; hit",
    UPDATING = "; hit; detail=stale-while-revalidate",
    REVALIDATED = "; hit; fwd=stale; fwd-status=304",
    BYPASS = "; fwd=bypass",
}

-- Runs where proxy_cache answers (@edge_cache in nginx.conf) and for nginx's own refusals
-- (@edge_refused, @edge_failed). Answers from memory (edge.memory_cache.serve) never reach it:
-- they are counted there, and the copy's headers are the ones this filter produced when it was
-- stored (marks removed, Cache-Status set); edge.route counts its own refusals.
function _M.header_filter()
    local header = ngx.header
    -- The fill hop's marks (edge.fill): Cache-Control set aside where CDN-Cache-Control governs,
    -- and "identity" for "not compressed: no-transform". Neither is for clients.
    local moved = header["X-Edge-Cache-Control"]
    if moved then
        header["Cache-Control"] = moved
        header["X-Edge-Cache-Control"] = nil
    end
    if header["Content-Encoding"] == "identity" then
        header["Content-Encoding"] = nil
    end
    if ngx.is_subrequest then
        -- A background cache refresh: the client's request is counted already; the storing rule applies.
        local status = ngx.var.upstream_cache_status
        if status == "MISS" or status == "EXPIRED" or status == "BYPASS" then
            judge(ngx.var)
        end
        return
    end
    if ngx.var.edge_directory_form == "1" then
        -- Directory-form tenants share one browser origin: no tenant may widen a service worker's scope.
        ngx.header["Service-Worker-Allowed"] = nil
    end
    local var = ngx.var
    local tenant = var.edge_tenant
    if tenant == "" then
        -- answered by the edge itself (404, 421, ...), not from the cache
        return metrics.count_request(nil, ngx.status, nil)
    end
    local status = var.upstream_cache_status
    local verdict
    if status == "MISS" or status == "EXPIRED" or status == "BYPASS" then
        verdict = judge(var)
    end
    local value = status and FORMS[status]
    if status == "STALE" then
        -- Stale with no upstream attempt: served while a background request refreshes it.
        -- Stale after an upstream attempt: the origin failed (stale-if-error).
        local tried = var.upstream_status
        value = (tried and tried ~= "") and "; hit; detail=stale-if-error" or "; hit; detail=stale-while-revalidate"
    elseif not value then
        local fwd = status == "EXPIRED" and "stale" or (status == "MISS" and "miss" or "request")
        value = "; fwd=" .. fwd
        local upstream = tonumber(var.upstream_status)
        if upstream then
            value = value .. "; fwd-status=" .. upstream
        end
    end
    if verdict then
        -- RFC 9211: whether this response was stored, and if not, why.
        value = verdict.store and (value .. "; stored") or (value .. "; stored=?0; detail=" .. verdict.why)
    end
    ngx.header["Cache-Status"] = name .. value
    metrics.count_request(tenant, ngx.status, status)
    if memory_enabled and status then
        memory_cache.start_fill(status, verdict)
    end
end

return _M
