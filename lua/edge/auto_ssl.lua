-- The project's side of EDGE_TLS_ENGINE=auto-ssl: lua-resty-auto-ssl's allow_domain, asking the
-- same registry as the native engine, so both engines issue for exactly the same names.
-- A custom domain is allowed when `<prefix>:@domain:<domain>` exists; a platform subdomain when
-- its tenant record exists (the native engine covers those with the DNS-01 wildcard instead).
local config = require("edge.config").get()
local records = require "edge.records"
local names = require "edge.names"
local log = require "edge.log"
local region_tls = require("edge.ticket_keys").region_tls

local ngx_ssl = require "ngx.ssl"

local getenv = os.getenv
local sub = string.sub
local find = string.find
local gsub = string.gsub
local io_open = io.open
local os_rename = os.rename
local pcall = pcall
local tostring = tostring
local ngx = ngx
local ngx_sleep = ngx.sleep
local ngx_now = ngx.now
local ngx_update_time = ngx.update_time
local timer_at = ngx.timer.at
local encode_base64 = ngx.encode_base64
local shared = ngx.shared

local _M = {}

-- The handshake polls for the background issuance this often.
local POLL_S = 0.05
-- An issuance (dehydrated: account, order, HTTP-01, finalize) is given up on after this long;
-- auto-ssl's own shell timeout is 60 s.
local ISSUE_TTL_S = 90

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

-- dehydrated's account directory for a CA: base64url of the URL plus the newline `echo` adds.
function _M.ca_hash(ca)
    return (gsub(gsub(encode_base64(ca .. "\n"), "=+$", ""), "[+/]", { ["+"] = "-", ["/"] = "_" }))
end

local function exists(path)
    local f = io_open(path, "rb")
    if f then
        f:close()
        return true
    end
    return false
end

local function dehydrated(auto_ssl, args)
    local shell_execute = require "resty.auto-ssl.utils.shell_execute"
    local cmd = { auto_ssl.lua_root .. "/bin/resty-auto-ssl/dehydrated" }
    for i = 1, #args do
        cmd[#cmd + 1] = args[i]
    end
    local result, err = shell_execute(cmd)
    if result.status ~= 0 then
        return nil, "dehydrated exited " .. tostring(result.status) .. ": " .. tostring(result.output or err)
    end
    return true
end

-- The deployment's account key is placed in dehydrated's accounts directory before nginx starts
-- (lib/edge/auto-ssl-dir.ts). dehydrated registers only keys it generates itself; for a placed key
-- it looks the account up with onlyReturnExisting, which fails for a key never registered at this
-- CA. So register it once (newAccount is idempotent: an existing account is returned) and keep
-- the registration files under the names dehydrated reads.
local function ensure_account(auto_ssl)
    local dir = auto_ssl:get("dir") .. "/letsencrypt/accounts/" .. _M.ca_hash(auto_ssl:get("ca"))
    local key = dir .. "/account_key.pem"
    if not exists(key) or exists(dir .. "/registration_info.json") then
        return true
    end
    local shm = shared.auto_ssl
    if not shm:add("edge:account_register", true, ISSUE_TTL_S) then
        -- Another worker registers: wait for it rather than race it.
        for _ = 1, 600 do
            ngx_sleep(0.1)
            if not shm:get("edge:account_register") then
                break
            end
        end
        return exists(dir .. "/registration_info.json")
    end
    local ok, err = dehydrated(auto_ssl, {
        "--register", "--accept-terms",
        "--config", auto_ssl:get("dir") .. "/letsencrypt/config",
        "--privkey", key,
    })
    if ok then
        os_rename(key .. ".json", dir .. "/registration_info.json")
        os_rename(key .. "_id.json", dir .. "/account_id.json")
        log.info("auto_ssl_account_registered", { ca = auto_ssl:get("ca") })
    end
    shm:delete("edge:account_register")
    return ok, err
end

-- Issues in a timer, not in the handshake: a client that goes away (or nginx's handshake timeout)
-- cannot abort it half way, so auto-ssl's Redis lock is always released.
local function issue(premature, auto_ssl, domain, flag)
    local shm = shared.auto_ssl
    if premature then
        shm:delete(flag)
        return
    end
    local storage = auto_ssl.storage
    local lock, lock_err = storage:issue_cert_lock(domain)
    if not lock then
        log.err("auto_ssl_issue_failed", { domain = domain, err = "lock: " .. tostring(lock_err) })
        shm:delete(flag)
        return
    end
    local ok, err = pcall(function()
        local cert = storage:get_cert(domain)
        if cert and cert.fullchain_pem then
            return
        end
        local registered, reg_err = ensure_account(auto_ssl)
        if not registered then
            error("account: " .. tostring(reg_err))
        end
        local provider = require "resty.auto-ssl.ssl_providers.lets_encrypt"
        local _, issue_err = provider.issue_cert(auto_ssl, domain)
        if issue_err then
            error(issue_err)
        end
    end)
    local _, unlock_err = storage:issue_cert_unlock(domain, lock)
    if unlock_err then
        log.warn("auto_ssl_unlock_failed", { domain = domain, err = unlock_err })
    end
    if not ok then
        log.err("auto_ssl_issue_failed", { domain = domain, err = tostring(err) })
    end
    shm:delete(flag)
end

-- auto-ssl never orders inside a handshake: only issue() does.
local SERVE_ONLY = { generate_certs = false }

local function stored(auto_ssl, domain)
    local cert, err = auto_ssl.storage:get_cert(domain)
    if err then
        log.warn("auto_ssl_storage_failed", { domain = domain, err = err })
    end
    return cert ~= nil and cert.fullchain_pem ~= nil and cert.privkey_pem ~= nil
end

-- ssl_certificate_by_lua with EDGE_TLS_ENGINE=auto-ssl. auto-ssl serves what it has (its shared
-- dict, then Redis); a name with nothing yet is issued in the background while this handshake
-- waits at most tls.issuer_wait_ms, then gets the fallback certificate: nginx cuts a handshake
-- at client_header_timeout, and auto-ssl's own in-handshake issuance would die with it.
function _M.certificate(auto_ssl)
    -- First: the connection gets the region's TLS settings (session context, tickets, chain).
    region_tls()
    local domain = ngx_ssl.server_name()
    if not domain then
        return auto_ssl:ssl_certificate(SERVE_ONLY)
    end
    local shm = shared.auto_ssl
    if shm:get("domain:fullchain_der:" .. domain) or stored(auto_ssl, domain) then
        return auto_ssl:ssl_certificate(SERVE_ONLY)
    end
    if not _M.allow_domain(domain) then
        return -- the fallback certificate; no order for a name the registry does not allow
    end

    local flag = "edge:issuing:" .. domain
    if shm:add(flag, true, ISSUE_TTL_S) then
        local ok, err = timer_at(0, issue, auto_ssl, domain, flag)
        if not ok then
            shm:delete(flag)
            log.err("auto_ssl_issue_failed", { domain = domain, err = "timer: " .. tostring(err) })
            return
        end
    end
    ngx_update_time()
    local deadline = ngx_now() + config.tls.issuer_wait_ms / 1000
    while shm:get(flag) do
        if ngx_now() >= deadline then
            log.warn("auto_ssl_issuance_pending", { domain = domain, waited_ms = config.tls.issuer_wait_ms })
            return -- the fallback certificate; the next handshake finds the certificate
        end
        ngx_sleep(POLL_S)
    end
    if stored(auto_ssl, domain) then
        return auto_ssl:ssl_certificate(SERVE_ONLY)
    end
end

return _M
