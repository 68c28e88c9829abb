-- OCSP stapling for the certificates edge.tls sets per SNI: nginx's ssl_stapling covers only the
-- certificates named in nginx.conf.
--
-- Whether a certificate has a responder is decided once, when edge.tls parses it (prepare): a
-- certificate without an OCSP URL in its AIA (Let's Encrypt's, today) costs one table field read
-- per handshake and never a request. prepare looks for the OCSP access method in the leaf's DER
-- itself (a few µs): OpenSSL's PEM-to-DER and AIA reading cost about as much as parsing the
-- certificate again (~500 µs in OpenSSL 3), so they run in the fetch timer, for certificates that
-- have a responder only. For one with a URL, a handshake staples the response cached
-- in the edge_ocsp shared dict, if there is one; a missing or half-spent response is fetched by a
-- timer, never by the handshake (the first handshakes go unstapled). One fetch per certificate per
-- task at a time (a lock in the dict); a failed fetch is remembered for tls.ocsp.failure_ttl_s, so
-- a responder outage costs a handshake one shared-dict read.
local ffi = require "ffi"
local ocsp = require "ngx.ocsp"
local ssl = require "ngx.ssl"
local config = require("edge.config").get()
local log = require "edge.log"
local metrics = require "edge.metrics"

local byte = string.byte
local sub = string.sub
local find = string.find
local gsub = string.gsub
local match = string.match
local floor = math.floor
local max = math.max
local min = math.min
local tonumber = tonumber
local tostring = tostring
local type = type
local pcall = pcall
local ipairs = ipairs
local md5 = ngx.md5
local decode_base64 = ngx.decode_base64
local time = ngx.time
local timer_at = ngx.timer.at
local tcp = ngx.socket.tcp
local cert_pem_to_der = ssl.cert_pem_to_der
local responder_of = ocsp.get_ocsp_responder_from_der_chain
local create_request = ocsp.create_ocsp_request
local validate_response = ocsp.validate_ocsp_response
local set_status_resp = ocsp.set_ocsp_status_resp

local _M = {}

local dict = ngx.shared.edge_ocsp
local conf = config.tls.ocsp
local TIMEOUT_MS = conf.timeout_ms
local FAILURE_TTL_S = conf.failure_ttl_s
-- Connect, send and read, plus a second: the lock outlives a fetch that hangs to its timeouts.
local LOCK_TTL_S = 3 * TIMEOUT_MS / 1000 + 1
-- RFC 6960 §4.2.2.1: a response without nextUpdate means newer information is always available.
local NO_NEXT_UPDATE_TTL_S = 3600
-- Responses are a few KiB; anything larger is not an OCSP response.
local MAX_RESPONSE_BYTES = 65536
local LOCK, FAILED = "l:", "f:"
-- AccessDescription's accessMethod id-ad-ocsp (1.3.6.1.5.5.7.48.1), DER-encoded: the OID with its
-- tag and length, so neither id-ad-caIssuers (…48.2) nor id-pkix-ocsp-nocheck (…48.1.5) matches.
local OCSP_METHOD = "\6\8\43\6\1\5\5\7\48\1"
-- NID_info_access: the Authority Information Access extension, where a responder is named.
local NID_INFO_ACCESS = 177
-- A leaf whose DER holds that OID outside an AIA names no responder: looked at again after a day.
local NO_RESPONDER_TTL_S = 86400

-- ngx.ocsp's validate_ocsp_response checks the signature with OCSP_NOVERIFY and no store: any
-- key that signs a response and carries its own certificate passes. RFC 6960 §4.2.2.2 wants the
-- issuer itself or a responder it delegated to (id-kp-OCSPSigning), which OpenSSL's
-- OCSP_basic_verify checks when given the issuer as the only trust anchor. Declared one by one:
-- another module may have declared some of them already.
for _, decl in ipairs({
    "void *d2i_OCSP_RESPONSE(void **a, const char **in, long len);",
    "void OCSP_RESPONSE_free(void *a);",
    "void *OCSP_response_get1_basic(void *resp);",
    "void OCSP_BASICRESP_free(void *a);",
    "void *d2i_X509(void **a, const char **in, long len);",
    "void X509_free(void *a);",
    "int X509_get_ext_by_NID(const void *x, int nid, int lastpos);",
    "void *X509_STORE_new(void);",
    "void X509_STORE_free(void *store);",
    "int X509_STORE_add_cert(void *store, void *x);",
    "int X509_STORE_set_flags(void *store, unsigned long flags);",
    "void *OPENSSL_sk_new_null(void);",
    "int OPENSSL_sk_push(void *st, const void *data);",
    "void OPENSSL_sk_free(void *st);",
    "int OCSP_basic_verify(void *bs, void *certs, void *st, unsigned long flags);",
    "void ERR_clear_error(void);",
}) do
    pcall(ffi.cdef, decl)
end
local C = ffi.C
-- The issuer may be an intermediate: it is the trust anchor here, not a root.
local X509_V_FLAG_PARTIAL_CHAIN = 0x80000

-- The DER element at pos: its tag, the first and last index of its content.
local function tlv(s, pos)
    local tag, len = byte(s, pos, pos + 1)
    local start = pos + 2
    if len >= 0x80 then
        local n = len - 0x80
        len = 0
        for i = 0, n - 1 do
            len = len * 256 + byte(s, start + i)
        end
        start = start + n
    end
    return tag, start, start + len - 1
end

local function generalized_time(s)
    local y, mo, d, h, mi, sec = match(s, "^(%d%d%d%d)(%d%d)(%d%d)(%d%d)(%d%d)(%d%d)")
    y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
    -- Days since 1970-01-01 in the proleptic Gregorian calendar (years counted from March).
    if mo <= 2 then
        y = y - 1
    end
    local era = floor(y / 400)
    local yoe = y - era * 400
    local doy = floor((153 * ((mo + 9) % 12) + 2) / 5) + d - 1
    local days = era * 146097 + yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy - 719468
    return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
end

-- The position after the DER element at pos, and the first index of the element's content.
local function skip(s, pos)
    local _, start, last = tlv(s, pos)
    return last + 1, start
end

local function enter(s, pos)
    local _, start = tlv(s, pos)
    return start
end

-- The earliest nextUpdate of the single responses in a DER OCSPResponse, or nil when none has one.
-- Errors on malformed input (the caller uses pcall). The host's lua-resty-core (0.1.25) validates
-- a response without returning its nextUpdate; the image's returns it.
local function read_next_update(der)
    -- OCSPResponse { responseStatus, [0] { responseType, OCTET STRING BasicOCSPResponse } }
    local pos = skip(der, enter(der, 1))
    pos = enter(der, enter(der, pos))
    pos = enter(der, skip(der, pos))
    -- BasicOCSPResponse { tbsResponseData { [0] version, responderID, producedAt, responses, ... } }
    pos = enter(der, enter(der, pos))
    local tag, first, last = tlv(der, pos)
    while tag ~= 0x30 do
        pos = last + 1
        tag, first, last = tlv(der, pos)
    end
    local earliest
    pos = first
    while pos <= last do
        -- SingleResponse { certID, certStatus, thisUpdate, [0] nextUpdate, ... }
        local next_single, field = skip(der, pos)
        field = skip(der, skip(der, skip(der, field)))
        if field < next_single then
            local t, inner = tlv(der, field)
            if t == 0xA0 then
                local _, gs, ge = tlv(der, inner)
                local at = generalized_time(sub(der, gs, ge))
                earliest = earliest and min(earliest, at) or at
            end
        end
        pos = next_single
    end
    return earliest
end

-- Whether the response is signed by the issuer (the second certificate of the DER chain) or by a
-- responder it delegated to. Returns true or nil, err.
local function signed_for_issuer(resp, chain)
    local _, _, leaf_end = tlv(chain, 1)
    local issuer_der = sub(chain, leaf_end + 1)
    local inp = ffi.new("const char *[1]")
    inp[0] = resp
    local response = C.d2i_OCSP_RESPONSE(nil, inp, #resp)
    local basic = response ~= nil and C.OCSP_response_get1_basic(response) or nil
    inp[0] = issuer_der
    local issuer = C.d2i_X509(nil, inp, #issuer_der)
    local store = C.X509_STORE_new()
    local certs = C.OPENSSL_sk_new_null()
    local ok = basic ~= nil and issuer ~= nil and store ~= nil and certs ~= nil
        and C.X509_STORE_add_cert(store, issuer) == 1
        and C.X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN) == 1
        and C.OPENSSL_sk_push(certs, issuer) > 0
        and C.OCSP_basic_verify(basic, certs, store, 0) == 1
    if certs ~= nil then
        C.OPENSSL_sk_free(certs)
    end
    if store ~= nil then
        C.X509_STORE_free(store)
    end
    if issuer ~= nil then
        C.X509_free(issuer)
    end
    if basic ~= nil then
        C.OCSP_BASICRESP_free(basic)
    end
    if response ~= nil then
        C.OCSP_RESPONSE_free(response)
    end
    C.ERR_clear_error()
    if not ok then
        return nil, "not signed by the issuer or a responder it delegated to"
    end
    return true
end

-- A minimal HTTP/1.0 POST over a cosocket. lua-resty-http is not in Debian's packages (nor
-- installed in the image), and an OCSP exchange needs one request and one bounded body.
local function post(url, body)
    local host, port, path = match(url, "^[Hh][Tt][Tt][Pp]://([%w%.%-]+):?(%d*)(.*)$")
    if not host then
        return nil, "not an http:// URL with a host name or IPv4 address"
    end
    port = tonumber(port) or 80
    if path == "" then
        path = "/"
    end
    local sock = tcp()
    sock:settimeouts(TIMEOUT_MS, TIMEOUT_MS, TIMEOUT_MS)
    local ok, err = sock:connect(host, port)
    if not ok then
        return nil, "failed to connect: " .. err
    end
    ok, err = sock:send("POST " .. path .. " HTTP/1.0\r\nHost: " .. host
        .. "\r\nContent-Type: application/ocsp-request\r\nAccept: application/ocsp-response\r\nContent-Length: "
        .. #body .. "\r\nConnection: close\r\n\r\n" .. body)
    if not ok then
        sock:close()
        return nil, "failed to send: " .. err
    end
    local line
    line, err = sock:receive("*l")
    local status = line and tonumber(match(line, "^HTTP/%d%.%d (%d%d%d)"))
    if status ~= 200 then
        sock:close()
        return nil, line and ("responder answered " .. sub(line, 1, 80)) or ("failed to read: " .. err)
    end
    local length
    repeat
        line, err = sock:receive("*l")
        if not line then
            sock:close()
            return nil, "failed to read headers: " .. err
        end
        local value = match(line, "^[Cc][Oo][Nn][Tt][Ee][Nn][Tt]%-[Ll][Ee][Nn][Gg][Tt][Hh]:%s*(%d+)")
        if value then
            length = tonumber(value)
        end
    until line == ""
    if length and length > MAX_RESPONSE_BYTES then
        sock:close()
        return nil, "response of " .. length .. " bytes"
    end
    local data, partial
    data, err, partial = sock:receive(length or MAX_RESPONSE_BYTES)
    sock:close()
    if not data then
        -- Without Content-Length the body ends where the responder closes.
        if length or err ~= "closed" or partial == "" then
            return nil, "failed to read the body: " .. err
        end
        data = partial
    end
    return data
end

-- Fetches, checks and caches the response for one certificate. Returns true or nil, err (and
-- a TTL for the failure when it is not the default).
local function refresh(info)
    if not info.chain then
        -- Once per worker and certificate, here rather than in the handshake (see the top).
        local chain, err = cert_pem_to_der(info.pem)
        if not chain then
            return nil, "failed to read the chain: " .. tostring(err)
        end
        local url = responder_of(chain)
        if not url then
            return nil, "no OCSP responder URL in the certificate", NO_RESPONDER_TTL_S
        end
        info.chain, info.url = chain, url
    end
    local req, err = create_request(info.chain)
    if not req then
        return nil, "failed to create the request: " .. err
    end
    local resp
    resp, err = post(info.url, req)
    if not resp then
        return nil, err
    end
    local ok, next_update = validate_response(resp, info.chain)
    if not ok then
        return nil, "invalid response: " .. tostring(next_update)
    end
    -- pcall: an nginx whose OpenSSL symbols are not visible to the FFI staples nothing, and says so.
    local called
    called, ok, err = pcall(signed_for_issuer, resp, info.chain)
    if not called or not ok then
        return nil, "invalid response: " .. tostring(called and err or ok)
    end
    if type(next_update) ~= "number" then
        local parsed, value = pcall(read_next_update, resp)
        next_update = parsed and value or nil
    end
    local t = time()
    local ttl = next_update and (next_update - t) or NO_NEXT_UPDATE_TTL_S
    if ttl < 2 then
        return nil, "response expires within a second"
    end
    -- Never stapled past nextUpdate; refreshed when half its life is spent. The flags hold the
    -- refresh time, so a handshake reads one entry.
    ok, err = dict:set(info.key, resp, ttl, t + max(1, floor(ttl / 2)))
    if not ok then
        return nil, "failed to cache the response: " .. err
    end
    return true
end

local function fetch(premature, info)
    if not premature then
        local ok, err, failure_ttl_s = refresh(info)
        if not ok then
            dict:set(FAILED .. info.key, true, failure_ttl_s or FAILURE_TTL_S)
            metrics.error("ocsp")
            log.warn("ocsp_fetch_failed", { domain = info.name, responder = info.url, err = err })
        end
    end
    dict:delete(LOCK .. info.key)
end

-- What the handshake needs to staple, from the record's fullchain_pem: false when the leaf names
-- no OCSP responder (nothing is ever fetched for it).
function _M.prepare(fullchain_pem, name, leaf)
    -- Most leaves name no responder (Let's Encrypt's no longer do): with the parsed leaf at hand,
    -- one call tells, before any PEM is decoded here.
    if leaf ~= nil and C.X509_get_ext_by_NID(leaf, NID_INFO_ACCESS, -1) < 0 then
        return false
    end
    local b64 = match(fullchain_pem, "%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-([^%-]+)%-%-%-%-%-END CERTIFICATE")
    local der = b64 and decode_base64((gsub(b64, "%s+", "")))
    if not der or not find(der, OCSP_METHOD, 1, true) then
        return false
    end
    -- url and chain are filled in by the first fetch.
    return { pem = fullchain_pem, key = md5(fullchain_pem), name = name }
end

-- Staples the cached response, if any, and starts a fetch when none is cached or it is due for
-- refresh. `info`: what prepare returned.
function _M.staple(info)
    local key = info.key
    local resp, refresh_at = dict:get(key)
    if resp then
        local ok, err = set_status_resp(resp)
        if not ok then
            metrics.error("ocsp")
            log.warn("ocsp_staple_failed", { domain = info.name, err = err })
        end
        if time() < (refresh_at or 0) then
            return
        end
    end
    if dict:get(FAILED .. key) or not dict:add(LOCK .. key, true, LOCK_TTL_S) then
        return
    end
    local ok, err = timer_at(0, fetch, info)
    if not ok then
        dict:delete(LOCK .. key)
        log.warn("ocsp_fetch_not_started", { domain = info.name, err = err })
    end
end

return _M
