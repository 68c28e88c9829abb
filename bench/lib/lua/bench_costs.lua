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
-- One by one: edge.x509 and edge.private_key declare some of these too.
for _, decl in ipairs({
    "typedef struct x509_st X509;",
    "typedef struct evp_pkey_st EVP_PKEY;",
    "typedef struct stack_st OPENSSL_STACK;",
    "X509 *d2i_X509(X509 **a, const unsigned char **pp, long length);",
    "void X509_free(X509 *a);",
    "EVP_PKEY *d2i_PrivateKey(int type, EVP_PKEY **a, const unsigned char **pp, long length);",
    "EVP_PKEY *d2i_AutoPrivateKey(EVP_PKEY **a, const unsigned char **pp, long length);",
    "void EVP_PKEY_free(EVP_PKEY *pkey);",
    "OPENSSL_STACK *OPENSSL_sk_new_null(void);",
    "int OPENSSL_sk_push(OPENSSL_STACK *st, const void *data);",
    "void OPENSSL_sk_pop_free(OPENSSL_STACK *st, void (*func)(void *));",
    "void *OPENSSL_sk_value(const OPENSSL_STACK *st, int i);",
    "int X509_check_private_key(const X509 *x, const EVP_PKEY *k);",
    "int X509_check_purpose(X509 *x, int id, int ca);",
}) do
    pcall(ffi.cdef, decl)
end
pcall(ffi.cdef, [[
typedef struct ec_key_st EC_KEY;
EC_KEY *d2i_ECPrivateKey(EC_KEY **key, const unsigned char **in, long len);
EVP_PKEY *EVP_PKEY_new(void);
int EVP_PKEY_assign(EVP_PKEY *pkey, int type, void *key);
]])
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

-- A legacy EVP_PKEY around an EC_KEY from SEC1 DER (what edge.private_key built before it made
-- provider keys), for the first-use comparison.
local function legacy_key(sec1_der)
    der_ptr[0] = sec1_der
    local ec = C.d2i_ECPrivateKey(nil, der_ptr, #sec1_der)
    assert(ec ~= nil, "SEC1 key parse failed")
    local pkey = C.EVP_PKEY_new()
    assert(C.EVP_PKEY_assign(pkey, EVP_PKEY_EC, ec) == 1)
    return ffi.gc(pkey, C.EVP_PKEY_free)
end

local function leaf(chain)
    return ffi.cast("X509 *", C.OPENSSL_sk_value(chain, 0))
end

local _M = {}

-- µs per call of fn(1..n). The garbage of what ran before (parsed certificates and keys, freed by
-- finalizers) is collected first, not in the middle of the timed loop.
local function timed_loop(n, fn)
    collectgarbage()
    local t0 = clock()
    for i = 1, n do
        fn(i)
    end
    return (clock() - t0) * 1e6 / n
end

-- First use of fresh objects: `setup(i)` makes n of them outside the timing, fn(i) is timed.
local function time_fresh(n, setup, fn)
    for i = 1, n do
        setup(i)
    end
    return timed_loop(n, fn)
end

local function time(n, fn)
    fn(0) -- first call outside the timing (compilation, connection pool)
    return timed_loop(n, fn)
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
    -- A full chain as a CA issues it: the leaf and an intermediate (here the same certificate
    -- twice: any P-256 certificate costs about the same to parse).
    local two = doc.fullchain_pem .. doc.fullchain_pem
    local x509 = require "edge.x509"
    out["ssl.parse_pem_cert, leaf + intermediate"] = time(n, function()
        return ssl.parse_pem_cert(two)
    end)
    out["edge.x509.parse_chain, leaf + intermediate (intermediate parsed once per worker)"] = time(n, function()
        return x509.parse_chain(two)
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
    local private_key = require "edge.private_key"
    out["edge.private_key.parse (the edge's path: EC provider key, EVP_PKEY_fromdata)"] = time(n, function()
        return private_key.parse(doc.privkey_pem)
    end)
    out["alt: legacy EC key (d2i_ECPrivateKey of SEC1 DER, ffi)"] = time(n, function()
        return legacy_key(key_der)
    end)
    -- What SSL_use_PrivateKey does on every handshake: compare the key with the certificate's
    -- public key (a provider key). A legacy key is exported to the provider the first time.
    local certs, keys = {}, {}
    local function fresh(make_key)
        return function(i)
            certs[i] = ssl.parse_pem_cert(doc.fullchain_pem)
            keys[i] = make_key()
        end
    end
    local function check(i)
        assert(C.X509_check_private_key(leaf(certs[i]), keys[i]) == 1, "key does not match")
    end
    out["X509_check_private_key, fresh cert + legacy key (first use)"] = time_fresh(
        n, fresh(function() return legacy_key(key_der) end), check)
    out["X509_check_private_key, same legacy key again"] = time_fresh(n, function() end, check)
    out["X509_check_private_key, fresh cert + provider key (first use)"] = time_fresh(
        n, fresh(function() return private_key.parse(doc.privkey_pem) end), check)
    out["X509_check_private_key, same provider key again"] = time_fresh(n, function() end, check)
    -- The certificate's extension cache (key usage, SHA-1 hash, signature info), built on first use.
    out["X509_check_purpose, fresh cert (first use: x509v3 cache)"] = time_fresh(n, function(i)
        certs[i] = ssl.parse_pem_cert(doc.fullchain_pem)
    end, function(i)
        C.X509_check_purpose(leaf(certs[i]), -1, 0)
    end)
    certs, keys = nil, nil
    out["alt: base64 + d2i_AutoPrivateKey (ffi)"] = time(n, function()
        return der_key(doc.privkey_pem, true)
    end)
    out["shm:set of the record (edge_certs)"] = time(n, function(i)
        return shm:set("costs" .. i, json, 3600)
    end)
    out["shm:get of the record"] = time(n, function(i)
        return shm:get("costs" .. i)
    end)
    -- A name's first lookup in a worker through the certificate cache, both ways it can find the
    -- record: pushed into the shared dict (edge.cert_push), or read from Redis on use. Both decode
    -- and parse the record and fill the worker LRU; each name is looked up once.
    local cert_cache = require("edge.tls").cache
    local derived = require("edge.tls").derive(json)
    local epoch = assert(cert_cache:start_epoch(3600))
    local cert_key = require("edge.keys").cert
    out["first lookup of a pushed certificate (shared dict + decode + parse + LRU)"] = time_fresh(
        n,
        function(i)
            cert_cache:push("costs-pushed-" .. i .. ".example", derived, epoch)
        end,
        function(i)
            return cert_cache:get("costs-pushed-" .. i .. ".example")
        end
    )
    out["first lookup of a certificate read from Redis on use (GET + decode + parse + LRU)"] = time_fresh(
        n,
        function(i)
            redis.with(function(red)
                return red:set(cert_key("costs-redis-" .. i .. ".example"), json)
            end)
        end,
        function(i)
            return cert_cache:get("costs-redis-" .. i .. ".example")
        end
    )
    redis.with(function(red)
        for i = 1, n do
            red:del(cert_key("costs-redis-" .. i .. ".example"))
        end
        return true
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
