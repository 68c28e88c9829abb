-- Certificate selection in ssl_certificate_by_lua (the `native` engine).
-- Certificates come through the edge's tiered cache (edge.tiered_cache): a per-worker LRU of
-- parsed cert/key, the edge_certs shared dict (PEM JSON as stored in Redis), then Redis itself.
-- A certificate written to Redis by any path is served within tls.shm_ttl seconds; POST
-- /certs/forget makes it immediate in every worker. Misses are remembered briefly in their own
-- bounded dict (edge_negative), never in the LRU or edge_certs, so a flood of unknown names
-- cannot evict the certificates that serve during a Redis outage. Unknown names keep the
-- fallback certificate from nginx.conf; those handshakes are counted, and logged one line per
-- worker per interval with how many there were.
local ssl = require "ngx.ssl"
local cjson = require "cjson.safe"
local config = require("edge.config").get()
local keys = require "edge.keys"
local private_key = require "edge.private_key"
local x509 = require "edge.x509"
local names = require "edge.names"
local redis = require "edge.redis"
local tiered_cache = require "edge.tiered_cache"
local metrics = require "edge.metrics"
local ocsp = require "edge.ocsp"
local log = require "edge.log"
local region_tls = require("edge.ticket_keys").region_tls

local now = ngx.now
local sub = string.sub
local find = string.find
local byte = string.byte
local match = string.match
local decide_sni = names.decide_sni
local server_name = ssl.server_name
local clear_certs = ssl.clear_certs
local set_cert = ssl.set_cert
local set_priv_key = ssl.set_priv_key

local _M = {}

local conf = config.tls
local caches = config.caches
local platform = config.platform_domain
local wildcard_name = "*." .. platform

-- SNI decisions (normalised name, refused, covered by the platform wildcard) per worker; one
-- entry per name the worker also holds a certificate for.
names.init_sni_decisions(conf.lru_size, platform)

-- Fallback handshakes since this worker last logged one.
local FALLBACK_LOG_INTERVAL = conf.fallback_log_interval_s
local fallbacks, fallback_logged_at = 0, 0

-- Optional hook set by edge.issuer (native engine): asks for a certificate on a miss.
_M.on_miss = nil

-- The edge's caches hold a certificate record in a derived form, "\0<fullchain>\0<privkey>\0<expiry>",
-- made where the record is read from Redis (the loader, or edge.cert_push off the handshake path),
-- so a handshake splits strings instead of decoding JSON. PEM text never holds a NUL. Redis keeps
-- lua-resty-auto-ssl's JSON; a record that is not that JSON is kept as it is and fails in parse().
local SEP = "\0"

-- fullchain, privkey, expiry of a record as stored in Redis (JSON), or nil.
local function json_fields(json)
    local doc = cjson.decode(json)
    if type(doc) ~= "table" or type(doc.fullchain_pem) ~= "string" or type(doc.privkey_pem) ~= "string" then
        return nil
    end
    return doc.fullchain_pem, doc.privkey_pem, tonumber(doc.expiry)
end

function _M.derive(json)
    local fullchain, privkey, expiry = json_fields(json)
    if not fullchain or find(fullchain, SEP, 1, true) or find(privkey, SEP, 1, true) then
        return json
    end
    return SEP .. fullchain .. SEP .. privkey .. SEP .. (expiry and tostring(expiry) or "")
end

-- fullchain, privkey, expiry of a cached record, or nil.
local function fields(raw)
    if byte(raw, 1) ~= 0 then
        return json_fields(raw)
    end
    local a = find(raw, SEP, 2, true)
    local b = a and find(raw, SEP, a + 1, true)
    if not b then
        return nil
    end
    return sub(raw, 2, a - 1), sub(raw, a + 1, b - 1), tonumber(sub(raw, b + 1))
end

local function parse(raw, name)
    local fullchain, privkey, expiry = fields(raw)
    if not fullchain then
        return nil, "certificate record is not {fullchain_pem, privkey_pem, ...}"
    end
    -- The leaf is parsed per record, each intermediate once per worker (edge.x509).
    local cert, err = x509.parse_chain(fullchain)
    if not cert then
        return nil, "failed to parse certificate: " .. tostring(err)
    end
    local key
    key, err = private_key.parse(privkey)
    if not key then
        return nil, "failed to parse private key: " .. tostring(err)
    end
    return { cert = cert, key = key, expiry = expiry, name = name,
        ocsp = ocsp.prepare(fullchain, name, x509.leaf(cert)) }
end

local certs = tiered_cache.new({
    name = "certs",
    shm = "edge_certs",
    negative_shm = "edge_negative",
    neg_prefix = "c:",
    lock_shm = "edge_locks",
    lru_size = conf.lru_size,
    ttl_s = conf.shm_ttl,
    neg_ttl_s = conf.miss_ttl,
    resurrect_ttl_s = caches.resurrect_ttl_s,
    lock_wait_s = caches.lock_wait_ms / 1000,
    -- /certs/forget (a renewal, a revocation) reaches every worker's parsed copy within this,
    -- while a handshake answered from the worker's LRU reads nothing shared.
    invalidation_interval_s = caches.invalidation_interval_ms / 1000,
    load = function(name)
        local raw, err = redis.get(keys.cert(name))
        if raw then
            return _M.derive(raw)
        end
        return raw, err
    end,
    -- Parsing is the expensive part (hundreds of µs in OpenSSL 3): the cache parses again only
    -- when the stored record changed.
    decode = parse,
    on_load_error = function(name, err)
        metrics.error("redis")
        log.warn("cert_lookup_failed", { domain = name, err = err })
    end,
    on_invalid = function(name, err)
        metrics.error("corrupt_certificate")
        log.err("corrupt_certificate", { domain = name, err = err })
    end,
})

-- The certificate cache itself, for edge.cert_push (it puts certificates in as Redis gets them).
_M.cache = certs

-- The metric label of each cache tier.
local TIER = { lru = "lru", shm = "shm", stale = "stale", loader = "redis", negative = "miss", error = "miss" }

-- Looks one exact name up through the tiers. Returns entry, tier ("lru"|"shm"|"stale"|"redis"|"miss").
local function lookup(name)
    local entry, _, tier = certs:get(name)
    if not entry then
        return nil, "miss"
    end
    return entry, TIER[tier] or tier
end

-- Finds the certificate for a normalised name; returns entry or nil, and the tier. `wildcard`:
-- whether the platform wildcard covers the name (computed when the caller has not).
function _M.find(name, wildcard)
    local entry, tier = lookup(name)
    if not entry then
        if wildcard == nil then
            wildcard = names.covered_by_platform_wildcard(name, platform)
        end
        if wildcard then
            entry, tier = lookup(wildcard_name)
        else
            -- A tenant wildcard (`*.<domain>`, issued by delegated DNS-01) one label up.
            local parent = match(name, "^[^.]+(%..+%..+)$")
            if parent then
                entry, tier = lookup("*" .. parent)
            end
        end
    end
    return entry, tier
end

-- Drops a name from every tier in every worker: the next handshake reads Redis. Returns once
-- every worker has dropped its parsed copy (at most timeout_s): true, or false if one had not.
function _M.forget(name, timeout_s)
    local version = certs:delete(name)
    return certs:await_workers(version, timeout_s or 0)
end

-- Reads a name's certificate from Redis now, past the cached miss (the issuer just wrote it).
function _M.reload(name)
    local entry = certs:reload(name)
    return entry
end

function _M.certificate()
    -- First: the connection gets the region's TLS settings (session context, tickets, chain).
    region_tls()
    local raw, err = server_name()
    if not raw then
        if err then
            log.warn("sni_read_failed", { err = err })
        end
        -- No SNI (an IP literal or an old client): the fallback certificate.
        metrics.cert_lookup("fallback")
        metrics.handshake("no_sni")
        return
    end

    local sni = decide_sni(raw)
    local name = sni.name
    if not name then
        log.info("sni_rejected", { sni = sub(raw, 1, 260), reason = sni.refused })
        metrics.handshake("rejected")
        return ngx.exit(ngx.ERROR)
    end

    local entry, tier = _M.find(name, sni.wildcard)
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
    ok, err = clear_certs()
    if ok then
        ok, err = set_cert(entry.cert)
    end
    if ok then
        ok, err = set_priv_key(entry.key)
    end
    if not ok then
        metrics.handshake("error")
        log.err("cert_set_failed", { domain = name, err = err })
        return ngx.exit(ngx.ERROR)
    end
    if entry.ocsp then
        ocsp.staple(entry.ocsp)
    end
    if entry.expiry and entry.expiry < now() then
        metrics.handshake("expired")
    else
        metrics.handshake("ok")
    end
end

return _M
