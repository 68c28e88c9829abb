-- Certificate selection in ssl_certificate_by_lua (the `native` engine).
-- Tiers, fastest first: a per-worker LRU of parsed cert/key, the edge_certs shared dict
-- (PEM JSON as stored in Redis), then Redis itself. Misses are remembered briefly in their own
-- bounded dict (edge_negative), never in the LRU or edge_certs, so a flood of unknown names
-- cannot evict the certificates that serve during a Redis outage. Unknown names keep the
-- fallback certificate from nginx.conf; those handshakes are counted, and logged one line per
-- worker per interval with how many there were.
local ssl = require "ngx.ssl"
local lrucache = require "resty.lrucache"
local cjson = require "cjson.safe"
local config = require("edge.config").get()
local keys = require "edge.keys"
local private_key = require "edge.private_key"
local names = require "edge.names"
local redis = require "edge.redis"
local metrics = require "edge.metrics"
local log = require "edge.log"

local shm = ngx.shared.edge_certs
local negative = ngx.shared.edge_negative
local now = ngx.now
local time = ngx.time
local sub = string.sub
local find = string.find

local _M = {}

local conf = config.tls
local platform = config.platform_domain
local platform_suffix = "." .. platform
local wildcard_name = "*." .. platform
-- Parsed entries are compared with the shared dict at this pace so a renewal reaches every worker.
local CHECK_EVERY = math.min(60, conf.shm_ttl)
local NEG_PREFIX = "c:"
-- Shared-dict key marking when a name was forgotten; "!" never occurs in a host name.
local FORGOTTEN = "!forgotten:"

local lru, lru_err = lrucache.new(conf.lru_size)
if not lru then
    error("edge: failed to create certificate LRU: " .. tostring(lru_err))
end

-- Fallback handshakes since this worker last logged one.
local FALLBACK_LOG_INTERVAL = conf.fallback_log_interval_s
local fallbacks, fallback_logged_at = 0, 0

-- Optional hook set by edge.issuer (native engine): asks for a certificate on a miss.
_M.on_miss = nil

local function parse(name, json)
    local doc = cjson.decode(json)
    if type(doc) ~= "table" or type(doc.fullchain_pem) ~= "string" or type(doc.privkey_pem) ~= "string" then
        return nil, "certificate record is not {fullchain_pem, privkey_pem, ...}"
    end
    local cert, err = ssl.parse_pem_cert(doc.fullchain_pem)
    if not cert then
        return nil, "failed to parse certificate: " .. tostring(err)
    end
    local key
    key, err = private_key.parse(doc.privkey_pem)
    if not key then
        return nil, "failed to parse private key: " .. tostring(err)
    end
    return { cert = cert, key = key, expiry = tonumber(doc.expiry), name = name, at = now() }
end

-- Looks one exact name up through the tiers. Returns entry, tier ("lru"|"shm"|"redis"|"miss").
-- A parsed entry is checked against the shared dict every CHECK_EVERY seconds and parsed again
-- only when the stored JSON changed: parsing is the expensive part (hundreds of µs in OpenSSL 3).
local function lookup(name)
    local entry, stale = lru:get(name)
    local current -- a parsed entry due for a freshness check
    if entry then
        -- Forgotten (renewed, replicated) after this worker looked: check it again.
        local forgotten = shm:get(FORGOTTEN .. name)
        if (not forgotten or forgotten < entry.at) and now() - entry.at < CHECK_EVERY then
            return entry, "lru"
        end
        current = entry
    elseif stale then
        current = stale
    elseif negative:get(NEG_PREFIX .. name) then
        return nil, "miss"
    end

    -- Shared-dict entries never expire by themselves (only evicted when the dict is full): the
    -- flags hold when they were read from Redis, and an old one is still the answer when Redis
    -- is down.
    local json, fetched = shm:get(name)
    local tier = "shm"
    local last_known
    if json ~= nil and time() - (fetched or 0) >= conf.shm_ttl then
        last_known, json = json, nil
    end
    if json == nil then
        local err
        json, err = redis.get(keys.cert(name))
        if err then
            -- Redis is down: keep serving what we had, however old.
            metrics.error("redis")
            log.warn("cert_lookup_failed", { domain = name, err = err })
            if current then
                return current, "lru"
            end
            json = last_known
            if json == nil then
                return nil, "miss"
            end
        elseif json == nil then
            shm:delete(name)
            negative:set(NEG_PREFIX .. name, true, conf.miss_ttl)
            return nil, "miss"
        else
            tier = "redis"
            local ok, serr = shm:set(name, json, 0, time())
            if not ok then
                log.warn("cert_cache_failed", { domain = name, err = serr })
            end
        end
    end

    if current and current.raw == json then
        current.at = now()
        return current, tier
    end

    local parsed, perr = parse(name, json)
    if not parsed then
        metrics.error("corrupt_certificate")
        log.err("corrupt_certificate", { domain = name, err = perr })
        negative:set(NEG_PREFIX .. name, true, conf.miss_ttl)
        return nil, "miss"
    end
    parsed.raw = json
    lru:set(name, parsed)
    return parsed, tier
end

-- The platform wildcard answers for `<tenant>.<platform>` and for the platform apex.
local function wildcard_applies(name)
    if name == platform then
        return true
    end
    local n = #name - #platform_suffix
    return n > 0 and sub(name, n + 1) == platform_suffix and not find(sub(name, 1, n), ".", 1, true)
end

-- Finds the certificate for a normalised name; returns entry or nil, and the tier.
function _M.find(name)
    local entry, tier = lookup(name)
    if not entry and wildcard_applies(name) then
        entry, tier = lookup(wildcard_name)
    end
    return entry, tier
end

-- Drops a name from the shared dict and, through a marker every worker checks on an LRU hit,
-- from every worker's LRU: the next handshake reads Redis.
function _M.forget(name)
    lru:delete(name)
    shm:delete(name)
    negative:delete(NEG_PREFIX .. name)
    shm:set(FORGOTTEN .. name, now(), CHECK_EVERY + 1)
end

function _M.certificate()
    local raw, err = ssl.server_name()
    if not raw then
        if err then
            log.warn("sni_read_failed", { err = err })
        end
        -- No SNI (an IP literal or an old client): the fallback certificate.
        metrics.cert_lookup("fallback")
        metrics.handshake("no_sni")
        return
    end

    local name, why = names.normalize_host(raw)
    if not name then
        log.info("sni_rejected", { sni = sub(raw, 1, 260), reason = why })
        metrics.handshake("rejected")
        return ngx.exit(ngx.ERROR)
    end

    local entry, tier = _M.find(name)
    if not entry and _M.on_miss then
        entry = _M.on_miss(name)
        tier = entry and "issuer" or tier
    end
    metrics.cert_lookup(entry and tier or "miss")
    if not entry then
        metrics.handshake("fallback")
        fallbacks = fallbacks + 1
        local t = now()
        if t - fallback_logged_at >= FALLBACK_LOG_INTERVAL then
            -- Sampled: one line per worker per interval, with the count and the latest name.
            log.warn("cert_fallback", { domain = name, count = fallbacks })
            fallbacks, fallback_logged_at = 0, t
        end
        return
    end

    local ok
    ok, err = ssl.clear_certs()
    if ok then
        ok, err = ssl.set_cert(entry.cert)
    end
    if ok then
        ok, err = ssl.set_priv_key(entry.key)
    end
    if not ok then
        metrics.handshake("error")
        log.err("cert_set_failed", { domain = name, err = err })
        return ngx.exit(ngx.ERROR)
    end
    if entry.expiry and entry.expiry < now() then
        metrics.handshake("expired")
    else
        metrics.handshake("ok")
    end
end

return _M
