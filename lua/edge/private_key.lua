-- Private key parsing for certificate selection. OpenSSL 3.0's generic decoders, behind
-- ngx.ssl.parse_pem_priv_key, spend ~300 µs per key; the legacy d2i_ECPrivateKey takes ~10 µs
-- (measured in the same nginx). EC keys on P-256 and P-384, in SEC1 ("EC PRIVATE KEY") or
-- PKCS#8 ("PRIVATE KEY") PEM, take a fast path; anything else (RSA, other curves, an OpenSSL
-- without these functions) goes through ngx.ssl.parse_pem_priv_key.
--
-- The fast path builds the key in OpenSSL 3's EC provider (EVP_PKEY_fromdata with the curve, the
-- private scalar and the public point from the DER), not as a legacy EC_KEY: the certificate's
-- public key is a provider key, and every SSL_use_PrivateKey compares the two (EVP_PKEY_eq). A
-- legacy key is exported to the provider for that on its first handshake (~15 µs) and looked up
-- in its export cache on every later one; a provider key is compared directly. A key whose DER
-- leaves out the public point takes the legacy path (d2i_ECPrivateKey computes the point).
local ffi = require "ffi"
local ssl = require "ngx.ssl"

local C = ffi.C
local byte = string.byte
local sub = string.sub
local match = string.match
local gsub = string.gsub
local decode_base64 = ngx.decode_base64

local _M = {}

pcall(ffi.cdef, [[
typedef struct evp_pkey_st EVP_PKEY;
typedef struct ec_key_st EC_KEY;
EC_KEY *EC_KEY_new_by_curve_name(int nid);
void EC_KEY_free(EC_KEY *key);
EC_KEY *d2i_ECPrivateKey(EC_KEY **key, const unsigned char **in, long len);
EVP_PKEY *EVP_PKEY_new(void);
int EVP_PKEY_assign(EVP_PKEY *pkey, int type, void *key);
void EVP_PKEY_free(EVP_PKEY *pkey);
]])
pcall(ffi.cdef, [[
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;
typedef struct ossl_param_st {
    const char *key;
    unsigned int data_type;
    void *data;
    size_t data_size;
    size_t return_size;
} OSSL_PARAM;
EVP_PKEY_CTX *EVP_PKEY_CTX_new_from_name(void *libctx, const char *name, const char *propquery);
void EVP_PKEY_CTX_free(EVP_PKEY_CTX *ctx);
int EVP_PKEY_fromdata_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_fromdata(EVP_PKEY_CTX *ctx, EVP_PKEY **ppkey, int selection, OSSL_PARAM *params);
]])

local EVP_PKEY_EC = 408
local ID_EC_PUBLIC_KEY = "\42\134\72\206\61\2\1" -- 1.2.840.10045.2.1
local CURVES = {
    ["\42\134\72\206\61\3\1\7"] = 415, -- prime256v1 (P-256)
    ["\43\129\4\0\34"] = 715, -- secp384r1 (P-384)
}
-- The provider's names of those curves, and the size of their private scalar.
local GROUP_NAMES = { [415] = "prime256v1", [715] = "secp384r1" }
local SCALAR_BYTES = { [415] = 32, [715] = 48 }

-- The fast path needs the legacy EC functions; builds without them fall back quietly.
local available = pcall(function()
    return C.d2i_ECPrivateKey and C.EC_KEY_new_by_curve_name and C.EVP_PKEY_assign
end)

local in_ptr = ffi.new("const unsigned char*[1]")
local key_ptr = ffi.new("EC_KEY*[1]")

-- The provider path needs OpenSSL 3's EVP_PKEY_fromdata; one key context per worker, reused (a
-- fromdata_init per key resets it).
local EVP_PKEY_KEYPAIR = 0x87 -- private + public key + domain parameters
local OSSL_PARAM_UNSIGNED_INTEGER, OSSL_PARAM_UTF8_STRING, OSSL_PARAM_OCTET_STRING = 2, 4, 5
local LITTLE_ENDIAN = ffi.abi("le")
local fromdata_ctx
if pcall(function() return C.EVP_PKEY_fromdata and C.EVP_PKEY_CTX_new_from_name end) then
    local ctx = C.EVP_PKEY_CTX_new_from_name(nil, "EC", nil)
    if ctx ~= nil then
        fromdata_ctx = ffi.gc(ctx, C.EVP_PKEY_CTX_free)
    end
end
local params = ffi.new("OSSL_PARAM[4]")
local pkey_ptr = ffi.new("EVP_PKEY*[1]")
local PARAM_GROUP, PARAM_PRIV, PARAM_PUB = "group", "priv", "pub"

-- One DER TLV at pos: returns tag, content start, position after it.
local function tlv(der, pos)
    local tag, len = byte(der, pos, pos + 1)
    if not len then
        return nil
    end
    local start = pos + 2
    if len >= 0x80 then
        local n = len - 0x80
        if n < 1 or n > 3 then
            return nil
        end
        len = 0
        for i = 0, n - 1 do
            local b = byte(der, start + i)
            if not b then
                return nil
            end
            len = len * 256 + b
        end
        start = start + n
    end
    if start + len - 1 > #der then
        return nil
    end
    return tag, start, start + len
end

-- PKCS#8 PrivateKeyInfo holding an EC key: returns the inner SEC1 DER and the curve's NID.
local function unwrap_pkcs8(der)
    local tag, pos = tlv(der, 1)
    if tag ~= 0x30 then
        return nil
    end
    local after, _
    tag, _, after = tlv(der, pos) -- version
    if tag ~= 0x02 then
        return nil
    end
    local alg_start, alg_end
    tag, alg_start, alg_end = tlv(der, after) -- AlgorithmIdentifier
    if tag ~= 0x30 then
        return nil
    end
    local oid_start, oid_end
    tag, oid_start, oid_end = tlv(der, alg_start)
    if tag ~= 0x06 or sub(der, oid_start, oid_end - 1) ~= ID_EC_PUBLIC_KEY then
        return nil
    end
    local curve_start, curve_end
    tag, curve_start, curve_end = tlv(der, oid_end)
    if tag ~= 0x06 or curve_end > alg_end then
        return nil
    end
    local nid = CURVES[sub(der, curve_start, curve_end - 1)]
    if not nid then
        return nil
    end
    local key_start, key_end
    tag, key_start, key_end = tlv(der, alg_end)
    if tag ~= 0x04 then
        return nil
    end
    return sub(der, key_start, key_end - 1), nid
end

-- SEC1 ECPrivateKey: returns the private scalar, the curve's NID when the DER names it, and the
-- public point (uncompressed or compressed octets) when the DER carries it.
local function sec1_fields(der)
    local tag, pos = tlv(der, 1)
    if tag ~= 0x30 then
        return nil
    end
    local after, priv_start, priv_end, _
    tag, _, after = tlv(der, pos) -- version
    if tag ~= 0x02 then
        return nil
    end
    tag, priv_start, priv_end = tlv(der, after)
    if tag ~= 0x04 then
        return nil
    end
    local priv = sub(der, priv_start, priv_end - 1)
    local nid, pub
    pos = priv_end
    while pos <= #der do
        local start, stop
        tag, start, stop = tlv(der, pos)
        if not tag then
            return nil
        end
        if tag == 0xA0 then -- [0] parameters: the curve's OID
            local otag, ostart, ostop = tlv(der, start)
            if otag ~= 0x06 then
                return nil
            end
            nid = CURVES[sub(der, ostart, ostop - 1)]
            if not nid then
                return nil
            end
        elseif tag == 0xA1 then -- [1] publicKey BIT STRING, no unused bits
            local btag, bstart, bstop = tlv(der, start)
            if btag ~= 0x03 or byte(der, bstart) ~= 0 then
                return nil
            end
            pub = sub(der, bstart + 1, bstop - 1)
        end
        pos = stop
    end
    return priv, nid, pub
end

-- The key in the EC provider, or nil (then the caller takes the legacy path).
local function provider_key(der, nid)
    local priv, named, pub = sec1_fields(der)
    nid = nid or named
    if not priv or not pub or not nid or (named and named ~= nid) or #priv ~= SCALAR_BYTES[nid] then
        return nil
    end
    -- OSSL_PARAM unsigned integers are in the machine's byte order; DER's is big-endian.
    local scalar = LITTLE_ENDIAN and priv:reverse() or priv
    local group = GROUP_NAMES[nid]
    params[0].key, params[0].data_type = PARAM_GROUP, OSSL_PARAM_UTF8_STRING
    params[0].data, params[0].data_size = ffi.cast("void *", group), #group
    params[1].key, params[1].data_type = PARAM_PRIV, OSSL_PARAM_UNSIGNED_INTEGER
    params[1].data, params[1].data_size = ffi.cast("void *", scalar), #scalar
    params[2].key, params[2].data_type = PARAM_PUB, OSSL_PARAM_OCTET_STRING
    params[2].data, params[2].data_size = ffi.cast("void *", pub), #pub
    params[3].key = nil
    pkey_ptr[0] = nil
    local ok = C.EVP_PKEY_fromdata_init(fromdata_ctx) == 1
        and C.EVP_PKEY_fromdata(fromdata_ctx, pkey_ptr, EVP_PKEY_KEYPAIR, params) == 1
    -- The parameters pointed into Lua strings: drop the pointers before the strings can go.
    params[1].data, params[2].data = nil, nil
    local pkey = pkey_ptr[0]
    pkey_ptr[0] = nil
    if not ok or pkey == nil then
        if pkey ~= nil then
            C.EVP_PKEY_free(pkey)
        end
        return nil
    end
    return ffi.gc(pkey, C.EVP_PKEY_free)
end

local function parse_ec(pem)
    local label, body = match(pem, "^%s*%-%-%-%-%-BEGIN ([A-Z ]+)%-%-%-%-%-(.-)%-%-%-%-%-END")
    if label ~= "EC PRIVATE KEY" and label ~= "PRIVATE KEY" then
        return nil
    end
    local der = decode_base64((gsub(body, "%s", "")))
    if not der then
        return nil
    end
    local nid
    if label == "PRIVATE KEY" then
        der, nid = unwrap_pkcs8(der)
        if not der then
            return nil
        end
    end
    if fromdata_ctx then
        local pkey = provider_key(der, nid)
        if pkey then
            return pkey
        end
    end
    -- PKCS#8 keys usually leave the curve out of the inner SEC1 structure: give it the group.
    local ec = nid and C.EC_KEY_new_by_curve_name(nid) or nil
    if nid and ec == nil then
        return nil
    end
    key_ptr[0] = ec
    in_ptr[0] = der
    local parsed = C.d2i_ECPrivateKey(key_ptr, in_ptr, #der)
    if parsed == nil then
        if ec ~= nil then
            C.EC_KEY_free(ec)
        end
        return nil
    end
    local pkey = C.EVP_PKEY_new()
    if pkey == nil or C.EVP_PKEY_assign(pkey, EVP_PKEY_EC, parsed) ~= 1 then
        if pkey ~= nil then
            C.EVP_PKEY_free(pkey)
        end
        C.EC_KEY_free(parsed)
        return nil
    end
    return ffi.gc(pkey, C.EVP_PKEY_free)
end

-- Returns a private key cdata for ngx.ssl.set_priv_key, or nil and an error.
function _M.parse(pem)
    if available then
        local key = parse_ec(pem)
        if key then
            return key
        end
    end
    return ssl.parse_pem_priv_key(pem)
end

return _M
