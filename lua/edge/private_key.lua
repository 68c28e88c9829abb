-- Private key parsing for certificate selection. OpenSSL 3.0's generic decoders, behind
-- ngx.ssl.parse_pem_priv_key, spend ~300 µs per key; the legacy d2i_ECPrivateKey takes ~10 µs
-- (measured in the same nginx). EC keys on P-256 and P-384, in SEC1 ("EC PRIVATE KEY") or
-- PKCS#8 ("PRIVATE KEY") PEM, take the fast path; anything else (RSA, other curves, an OpenSSL
-- without the legacy EC functions) goes through ngx.ssl.parse_pem_priv_key.
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

local EVP_PKEY_EC = 408
local ID_EC_PUBLIC_KEY = "\42\134\72\206\61\2\1" -- 1.2.840.10045.2.1
local CURVES = {
    ["\42\134\72\206\61\3\1\7"] = 415, -- prime256v1 (P-256)
    ["\43\129\4\0\34"] = 715, -- secp384r1 (P-384)
}

-- The fast path needs the legacy EC functions; builds without them fall back quietly.
local available = pcall(function()
    return C.d2i_ECPrivateKey and C.EC_KEY_new_by_curve_name and C.EVP_PKEY_assign
end)

local in_ptr = ffi.new("const unsigned char*[1]")
local key_ptr = ffi.new("EC_KEY*[1]")

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
