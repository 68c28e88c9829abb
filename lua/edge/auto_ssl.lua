-- The project's side of EDGE_TLS_ENGINE=auto-ssl: lua-resty-auto-ssl's allow_domain, asking the
-- same registry as the native engine, so both engines issue for exactly the same names.
-- A custom domain is allowed when `<prefix>:@domain:<domain>` exists; a platform subdomain when
-- its tenant record exists (the native engine covers those with the DNS-01 wildcard instead).
local config = require("edge.config").get()
local records = require "edge.records"
local names = require "edge.names"
local log = require "edge.log"

local getenv = os.getenv
local sub = string.sub
local find = string.find

local _M = {}

local platform_suffix = "." .. config.platform_domain

-- The Redis password for auto-ssl's storage adapter, or nil when none is set.
function _M.redis_auth()
    local password = getenv("EDGE_REDIS_PASSWORD")
    if password == nil or password == "" then
        return nil
    end
    return password
end

-- Called by lua-resty-auto-ssl before it orders a certificate; false refuses the order.
function _M.allow_domain(domain)
    local name, why = names.normalize_host(domain)
    if not name then
        log.info("auto_ssl_refused", { domain = sub(tostring(domain), 1, 260), reason = why })
        return false
    end
    local n = #platform_suffix
    if #name > n and sub(name, -n) == platform_suffix then
        local label = sub(name, 1, #name - n)
        if find(label, ".", 1, true) or not names.valid_tenant_id(label) then
            return false
        end
        local tenant, err = records.tenant(label)
        if err then
            log.warn("auto_ssl_registry_failed", { domain = name, err = err })
        end
        return tenant ~= nil
    end
    local tenant, err = records.domain_tenant(name)
    if err then
        log.warn("auto_ssl_registry_failed", { domain = name, err = err })
    end
    return tenant ~= nil
end

return _M
