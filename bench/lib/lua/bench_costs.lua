-- Bench only: CPU cost of each step on the edge's hot paths, timed in isolation inside nginx
-- with the project's own modules. Called by bench/lib/costs.ts; prints JSON {step = us/op}.
local cjson = require "cjson.safe"
local ssl = require "ngx.ssl"
local lrucache = require "resty.lrucache"
local names = require "edge.names"
local redis = require "edge.redis"
local metrics = require "edge.metrics"
local records = require "edge.records"
local purge_state = require "edge.purge_state"

local ffi = require "ffi"
local C = ffi.C
local clock = os.clock
local decode_base64 = ngx.decode_base64

-- Candidate replacements for the PEM parsers: DER through OpenSSL's type-specific (legacy)
-- decoders, which skip OpenSSL 3's generic decoder framework.
ffi.cdef [[
typedef struct x509_st X509;
typedef struct evp_pkey_st EVP_PKEY;
typedef struct stack_st OPENSSL_STACK;
X509 *d2i_X509(X509 **a, const unsigned char **pp, long length);
void X509_free(X509 *a);
EVP_PKEY *d2i_PrivateKey(int type, EVP_PKEY **a, const unsigned char **pp, long length);
EVP_PKEY *d2i_AutoPrivateKey(EVP_PKEY **a, const unsigned char **pp, long length);
void EVP_PKEY_free(EVP_PKEY *pkey);
OPENSSL_STACK *OPENSSL_sk_new_null(void);
int OPENSSL_sk_push(OPENSSL_STACK *st, const void *data);
void OPENSSL_sk_pop_free(OPENSSL_STACK *st, void (*func)(void *));
]]
local EVP_PKEY_EC = 408
local der_ptr = ffi.new("const unsigned char*[1]")

local function pem_blocks(pem, label)
    local out = {}
    for body in pem:gmatch("%-%-%-%-%-BEGIN " .. label .. "%-%-%-%-%-(.-)%-%-%-%-%-END") do
        out[#out + 1] = decode_base64((body:gsub("%s", "")))
    end
    return out
end

local function der_chain(pem)
    local sk = C.OPENSSL_sk_new_null()
    for _, der in ipairs(pem_blocks(pem, "CERTIFICATE")) do
        der_ptr[0] = der
        local x = C.d2i_X509(nil, der_ptr, #der)
        C.OPENSSL_sk_push(sk, x)
    end
    C.OPENSSL_sk_pop_free(sk, ffi.cast("void (*)(void *)", C.X509_free))
end

local function der_key(pem, auto)
    local der = pem_blocks(pem, "PRIVATE KEY")[1]
    der_ptr[0] = der
    local k = auto and C.d2i_AutoPrivateKey(nil, der_ptr, #der) or C.d2i_PrivateKey(EVP_PKEY_EC, nil, der_ptr, #der)
    assert(k ~= nil, "DER key parse failed")
    C.EVP_PKEY_free(k)
end

local _M = {}

local function time(n, fn)
    fn(0) -- first call outside the timing (compilation, connection pool)
    local t0 = clock()
    for i = 1, n do
        fn(i)
    end
    return (clock() - t0) * 1e6 / n
end

function _M.run()
    local args = ngx.req.get_uri_args()
    local n = tonumber(args.n) or 2000
    local key = args.key
    local name = args.name
    local tenant = args.tenant
    local json = assert(redis.get(key), "no certificate record at " .. tostring(key))
    local doc = cjson.decode(json)
    local shm = ngx.shared.edge_certs
    local lru = lrucache.new(4 * n)
    local key_der = ssl.priv_key_pem_to_der(doc.privkey_pem)
    local cert_der = ssl.cert_pem_to_der(doc.fullchain_pem)
    local out = {}

    out["redis GET of a certificate (nginx side only)"] = time(n, function()
        return redis.get(key)
    end)
    out["cjson.decode of the record"] = time(n, function()
        return cjson.decode(json)
    end)
    out["ssl.parse_pem_cert (fullchain)"] = time(n, function()
        return ssl.parse_pem_cert(doc.fullchain_pem)
    end)
    out["ssl.parse_pem_priv_key"] = time(n, function()
        return ssl.parse_pem_priv_key(doc.privkey_pem)
    end)
    out["ssl.priv_key_pem_to_der (alternative)"] = time(n, function()
        return ssl.priv_key_pem_to_der(doc.privkey_pem)
    end)
    out["ssl.cert_pem_to_der (alternative)"] = time(n, function()
        return ssl.cert_pem_to_der(doc.fullchain_pem)
    end)
    out["alt: base64 + d2i_X509 chain (ffi)"] = time(n, function()
        return der_chain(doc.fullchain_pem)
    end)
    out["alt: base64 + d2i_PrivateKey(EC) (ffi)"] = time(n, function()
        return der_key(doc.privkey_pem, false)
    end)
    out["edge.private_key.parse (the edge's path: d2i_ECPrivateKey)"] = time(n, function()
        return require("edge.private_key").parse(doc.privkey_pem)
    end)
    out["alt: base64 + d2i_AutoPrivateKey (ffi)"] = time(n, function()
        return der_key(doc.privkey_pem, true)
    end)
    out["shm:set of the record (edge_certs)"] = time(n, function(i)
        return shm:set("costs" .. i, json, 3600)
    end)
    out["shm:get of the record"] = time(n, function(i)
        return shm:get("costs" .. i)
    end)
    out["lru:set + lru:get (parsed entry)"] = time(n, function(i)
        lru:set(i, doc, 60)
        return lru:get(i)
    end)
    out["names.normalize_host (regex)"] = time(n, function()
        return names.normalize_host(name)
    end)
    out["metrics: cert_lookup + handshake (2 shm incr)"] = time(n, function()
        metrics.cert_lookup("lru")
        metrics.handshake("ok")
    end)
    out["records.tenant (worker LRU hit)"] = time(n, function()
        return records.tenant(tenant)
    end)
    out["purge_state.state + generation"] = time(n, function()
        local state = purge_state.state(tenant)
        return purge_state.generation(state, name, "/1k.bin", "/1k.bin")
    end)
    out["metrics.count_request (2 shm incr, cached series names)"] = time(n, function()
        metrics.count_request(tenant, 200, "HIT")
    end)
    out["ngx.var reads x6 (route + log phases)"] = time(n, function()
        local var = ngx.var
        return var.host, var.request_uri, var.edge_tenant, var.upstream_cache_status, var.remote_addr, var.uri
    end)
    out["ngx.var writes x4 (route: tenant, origin, origin uri, cache key)"] = time(n, function()
        local var = ngx.var
        var.edge_tenant = tenant
        var.edge_origin = "http://127.0.0.1:1"
        var.edge_origin_uri = "/1k.bin"
        var.edge_cache_key = tenant .. "|0|" .. name .. "|/1k.bin"
    end)
    assert(key_der and cert_der)
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode(out))
end

return _M
