-- Certificate chains for certificate selection, with each worker's intermediates parsed once.
-- A full chain as stored (lua-resty-auto-ssl's fullchain_pem: the leaf, then its intermediates)
-- is mostly intermediates that every certificate of a CA shares (Let's Encrypt has a handful).
-- ngx.ssl.parse_pem_cert parses the whole chain each time, and in OpenSSL 3 a certificate costs
-- 40-90 µs to parse (its public key goes through the decoder framework and builds its EC group)
-- plus its first use in a handshake. Here only the leaf is parsed per record; each intermediate
-- is parsed once per worker (kept in a small LRU keyed by its PEM block) and shared, with a
-- reference per chain, by every chain that has it.
--
-- The result is the same kind of value as ngx.ssl.parse_pem_cert's (an OpenSSL STACK_OF(X509),
-- leaf first, freed by the lua module's finaliser, which drops one reference per certificate),
-- so ngx.ssl.set_cert takes it as it is.
local ffi = require "ffi"
local ssl = require "ngx.ssl"
local lrucache = require "resty.lrucache"

local C = ffi.C
local find = string.find
local sub = string.sub

local _M = {}

-- Declared one by one: other modules (the bench's cost probe) declare some of them too.
for _, decl in ipairs({
    "typedef struct x509_st X509;",
    "typedef struct stack_st OPENSSL_STACK;",
    "int X509_up_ref(X509 *x);",
    "void X509_free(X509 *a);",
    "int OPENSSL_sk_push(OPENSSL_STACK *st, const void *data);",
    "void *OPENSSL_sk_value(const OPENSSL_STACK *st, int i);",
}) do
    pcall(ffi.cdef, decl)
end

local available = pcall(function()
    return C.X509_up_ref and C.X509_free and C.OPENSSL_sk_push and C.OPENSSL_sk_value
end)

local BEGIN = "-----BEGIN CERTIFICATE-----"
local END = "-----END CERTIFICATE-----"

-- Intermediates this worker has parsed: PEM block -> { chain = parse_pem_cert's value (keeps the
-- certificate alive while cached), x509 = the certificate }. Few CAs, so few entries.
local INTERMEDIATES = 64
local intermediates = assert(lrucache.new(INTERMEDIATES))

-- The PEM blocks of a chain, in order; nil when the text holds none.
local function blocks(pem)
    local out, pos = {}, 1
    while true do
        local s = find(pem, BEGIN, pos, true)
        if not s then
            break
        end
        local _, e = find(pem, END, s, true)
        if not e then
            return nil
        end
        out[#out + 1] = sub(pem, s, e)
        pos = e + 1
    end
    return out[1] and out or nil
end

-- The leaf (first certificate) of a value parse_chain or ngx.ssl.parse_pem_cert returned, as an
-- `X509 *` that lives as long as that value.
function _M.leaf(chain)
    if not available then
        return nil
    end
    return ffi.cast("X509 *", C.OPENSSL_sk_value(chain, 0))
end

local function intermediate(block)
    local entry = intermediates:get(block)
    if entry then
        return entry.x509
    end
    local chain, err = ssl.parse_pem_cert(block)
    if not chain then
        return nil, err
    end
    local x509 = _M.leaf(chain)
    intermediates:set(block, { chain = chain, x509 = x509 })
    return x509
end

-- Parses a full chain (PEM, leaf first). Returns a value for ngx.ssl.set_cert, or nil and an error.
function _M.parse_chain(pem)
    -- A lone certificate (no second BEGIN line) is parsed as it is, with no copy of its block.
    local _, first_end = find(pem, END, 1, true)
    if not available or not first_end or not find(pem, BEGIN, first_end, true) then
        return ssl.parse_pem_cert(pem)
    end
    local list = blocks(pem)
    if not list then
        return ssl.parse_pem_cert(pem)
    end
    local chain, err = ssl.parse_pem_cert(list[1])
    if not chain then
        return nil, err
    end
    for i = 2, #list do
        local x509
        x509, err = intermediate(list[i])
        if not x509 then
            return nil, "certificate " .. i .. " of the chain: " .. tostring(err)
        end
        -- The chain's finaliser frees each certificate it holds once: take a reference for it.
        C.X509_up_ref(x509)
        if C.OPENSSL_sk_push(chain, x509) == 0 then
            C.X509_free(x509)
            return nil, "failed to build the certificate chain"
        end
    end
    return chain
end

return _M
