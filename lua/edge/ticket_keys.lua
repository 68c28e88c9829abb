-- Session ticket key rotation. nginx reads `ssl_session_ticket_key` files only when it loads its
-- configuration, so a key changes only with a reload. The keys of many epochs are written before
-- nginx starts (lib/edge/ticket-keys.ts, derived from the region's secret: every task has the same
-- key for the same epoch); here worker 0 points the three names nginx.conf lists (current encrypts;
-- previous and next decrypt) at the keys of the clock's epoch, removes older keys, and asks its own
-- master to reload (SIGHUP) at each epoch boundary. Master and workers share a user in the task,
-- so the signal is allowed. No key material passes through here: only file names.
--
-- A ticket also carries the session ID context, which nginx computes from the server block's
-- certificates: each task's own self-signed fallback certificate would make every task's context
-- different, and OpenSSL refuses a session from another context. region_tls() gives the
-- worker's SSL_CTX the region's context on the worker's first full handshake (from the
-- certificate phase, which OpenSSL runs on full handshakes only); every later connection of the
-- worker copies it from there when it is created. A per-connection hook that runs before OpenSSL
-- looks at the ticket (ssl_client_hello_by_lua) would cost a Lua entry on every handshake,
-- resumed ones included. The price: until a worker has done one full handshake since it started
-- (nginx's start or the hourly reload), its connections still have nginx's context and resume no
-- region ticket; a returning visitor who is first to reach it gets a full handshake.
local ffi = require "ffi"
local base = require "resty.core.base"
local log = require "edge.log"

local C = ffi.C
local floor = math.floor
local tonumber = tonumber
local tostring = tostring
local io_open = io.open
local os_remove = os.remove
local os_rename = os.rename
local timer_at = ngx.timer.at
local now = ngx.now
local update_time = ngx.update_time
local worker_id = ngx.worker.id
local get_request = base.get_request
local sha1_bin = ngx.sha1_bin

-- One declaration per call: another module (ngx.ssl in newer lua-resty-core) may have declared
-- some of them already, and a redefinition fails the whole ffi.cdef it is in.
for _, decl in ipairs({
    "typedef struct ssl_st SSL;",
    "typedef struct ssl_ctx_st SSL_CTX;",
    "typedef struct ssl_session_st SSL_SESSION;",
    "void *ngx_http_lua_ffi_get_req_ssl_pointer(void *r);",
    "SSL_CTX *SSL_get_SSL_CTX(const SSL *ssl);",
    "SSL_SESSION *SSL_get_session(const SSL *ssl);",
    "int SSL_CTX_set_session_id_context(SSL_CTX *ctx, const unsigned char *sid_ctx, unsigned int len);",
    "int SSL_set_session_id_context(SSL *ssl, const unsigned char *sid_ctx, unsigned int len);",
    "int SSL_SESSION_set1_id_context(SSL_SESSION *s, const unsigned char *sid_ctx, unsigned int len);",
    "int SSL_CTX_set_num_tickets(SSL_CTX *ctx, size_t num_tickets);",
    "long SSL_CTX_ctrl(SSL_CTX *ctx, int cmd, long larg, void *parg);",
    "long SSL_ctrl(SSL *ssl, int cmd, long larg, void *parg);",
    "int SSL_set_num_tickets(SSL *s, size_t num_tickets);",
    "int symlink(const char *target, const char *linkpath);",
    "int access(const char *path, int mode);",
    "int kill(int pid, int sig);",
    "int getppid(void);",
    "char *strerror(int errnum);",
}) do
    pcall(ffi.cdef, decl)
end

local SIGHUP = 1
-- SSL_CTX_set_mode / SSL_set_mode (macros over the ctrl calls).
local SSL_CTRL_MODE = 33
-- Send the chain exactly as stored: without it, for a certificate set with no intermediate (a
-- self-signed one), OpenSSL builds a chain from the context's store on every handshake
-- (X509_verify_cert), which a static certificate (nginx sets its chain explicitly) never does.
local SSL_MODE_NO_AUTO_CHAIN = 0x8
local F_OK = 0
-- Past the boundary, so that every task's clock has reached the new epoch's first second.
local BOUNDARY_MARGIN_S = 0.5
-- Older keys removed per rotation at most (after a long clock jump the rest stay for the next).
local MAX_REMOVALS = 1000
-- Longer than a connection may wait for its handshake (nginx's client_header_timeout, 60 s by
-- default; the edge's is shorter).
local HANDSHAKE_TIMEOUT_S = 120

local _M = {}

local function errno_text()
    return ffi.string(C.strerror(ffi.errno()))
end

local function key_file(dir, epoch)
    return dir .. "/" .. epoch .. ".key"
end

-- The epoch the names point at, from the file written beside them (nil when unreadable).
function _M.linked_epoch(dir)
    local f = io_open(dir .. "/epoch", "rb")
    if not f then
        return nil
    end
    local text = f:read("*l")
    f:close()
    return tonumber(text)
end

local function relink(dir, name, target)
    local tmp = dir .. "/." .. name .. ".tmp"
    os_remove(tmp)
    if C.symlink(target, tmp) ~= 0 then
        return nil, "symlink " .. tmp .. ": " .. errno_text()
    end
    local ok, err = os_rename(tmp, dir .. "/" .. name)
    if not ok then
        os_remove(tmp)
        return nil, err
    end
    return true
end

local function write_epoch(dir, epoch)
    local tmp = dir .. "/.epoch.tmp"
    local f, err = io_open(tmp, "wb")
    if not f then
        return nil, err
    end
    f:write(epoch, "\n")
    f:close()
    return os_rename(tmp, dir .. "/epoch")
end

-- Points the names at `epoch`'s keys (needs epoch - 1 … epoch + 1 on disk) and removes the keys
-- before epoch - 1. Returns nil and why when a key is missing: the task outlived its horizon.
function _M.rotate(dir, epoch, from)
    for e = epoch - 1, epoch + 1 do
        if C.access(key_file(dir, e), F_OK) ~= 0 then
            return nil, "no key for epoch " .. e .. " in " .. dir
        end
    end
    local links = { ["current.key"] = epoch, ["previous.key"] = epoch - 1, ["next.key"] = epoch + 1 }
    for name, e in pairs(links) do
        local ok, err = relink(dir, name, e .. ".key")
        if not ok then
            return nil, err
        end
    end
    local ok, err = write_epoch(dir, epoch)
    if not ok then
        return nil, err
    end
    if from then
        local first = from - 1
        if epoch - 2 - first >= MAX_REMOVALS then
            first = epoch - 1 - MAX_REMOVALS
        end
        for e = first, epoch - 2 do
            os_remove(key_file(dir, e))
        end
    end
    return true
end

local check

local function schedule(cfg)
    update_time()
    local t = now()
    local delay = (floor(t / cfg.epoch_s) + 1) * cfg.epoch_s - t + BOUNDARY_MARGIN_S
    local ok, err = timer_at(delay, check, cfg)
    if not ok then
        log.err("ticket_keys_timer_failed", { error = tostring(err) })
    end
end

-- Brings the names to the clock's epoch and reloads nginx if they moved; then waits for the
-- next boundary. A reloading nginx retires this worker (premature), and the new worker 0 goes on.
check = function(premature, cfg)
    if premature then
        return
    end
    update_time()
    local epoch = floor(now() / cfg.epoch_s)
    local linked = _M.linked_epoch(cfg.dir)
    if linked ~= epoch then
        local ok, err = _M.rotate(cfg.dir, epoch, linked)
        if not ok then
            -- nginx goes on with the keys it loaded: tickets keep resuming, the key stops changing.
            log.err("ticket_keys_not_rotated", { epoch = epoch, linked = linked, error = err })
        elseif C.kill(C.getppid(), SIGHUP) ~= 0 then
            -- Only where master and workers are different users (a root master run by hand or by
            -- the local runner as root); in the task they are one user.
            log.warn("ticket_keys_reload_failed", {
                epoch = epoch,
                error = errno_text(),
                hint = "the master runs as another user; the new keys apply at its next reload",
            })
        else
            log.info("ticket_keys_rotated", { epoch = epoch, from = linked })
        end
    end
    schedule(cfg)
end

-- The region's session ID context (20 bytes, within OpenSSL's 32); false while tickets are off.
local session_context
-- TLS 1.3 tickets sent after a full handshake (OpenSSL's default is 2; each one costs an
-- encryption in nginx's ticket-key callback).
local tickets_per_handshake
-- The worker's SSL_CTX has the settings: connections created from now on start with them.
local ctx_done = false
-- Until then (nginx's handshake timeout after the SSL_CTX got them), a full handshake may still
-- be on a connection created before, with nginx's settings: each one is given the region's.
local connections_until
-- Every connection of the worker has the region's settings: one boolean check per call.
local settled = false

local function compute_context()
    local cfg = require("edge.config").get()
    if not (cfg.tickets and cfg.tickets.enabled) then
        return nil
    end
    tickets_per_handshake = cfg.tickets.per_handshake or 2
    return sha1_bin("edge sessions\0" .. cfg.region)
end

local function context_failed(what)
    -- The connection keeps nginx's settings: its ticket resumes on no other task of the region.
    log.err("ticket_keys_session_context_failed", { call = what })
end

-- The settings of one connection (the SSL_CTX's, copied when it was created, or given here).
local function connection_settings(ssl)
    C.SSL_ctrl(ssl, SSL_CTRL_MODE, SSL_MODE_NO_AUTO_CHAIN, nil)
    if not session_context then
        return
    end
    local len = #session_context
    if C.SSL_set_session_id_context(ssl, session_context, len) ~= 1 then
        return context_failed("SSL_set_session_id_context")
    end
    if C.SSL_set_num_tickets(ssl, tickets_per_handshake) ~= 1 then
        return context_failed("SSL_set_num_tickets")
    end
    local session = C.SSL_get_session(ssl)
    if session == nil or C.SSL_SESSION_set1_id_context(session, session_context, len) ~= 1 then
        return context_failed("SSL_SESSION_set1_id_context")
    end
end

-- From the certificate phase (full handshakes only: OpenSSL does not call it when it resumes).
-- OpenSSL created this connection (SSL_new copies the SSL_CTX's context) and its new session
-- (ssl_get_new_session copies the connection's) before this phase, and a ticket carries its
-- session's context: on a connection created before the SSL_CTX had the region's context, both
-- are set here, so that this very handshake's ticket resumes on the region's other tasks.
-- The same way, once per worker: one ticket per full handshake, and the chain sent as stored.
function _M.region_tls()
    if settled then
        return
    end
    if session_context == nil then
        session_context = compute_context() or false
    end
    local ssl = ffi.cast("SSL *", C.ngx_http_lua_ffi_get_req_ssl_pointer(get_request()))
    if ssl == nil then
        return context_failed("get_req_ssl_pointer")
    end
    if not ctx_done then
        local ctx = C.SSL_get_SSL_CTX(ssl)
        C.SSL_CTX_ctrl(ctx, SSL_CTRL_MODE, SSL_MODE_NO_AUTO_CHAIN, nil)
        if session_context then
            if C.SSL_CTX_set_session_id_context(ctx, session_context, #session_context) ~= 1 then
                return context_failed("SSL_CTX_set_session_id_context")
            end
            if C.SSL_CTX_set_num_tickets(ctx, tickets_per_handshake) ~= 1 then
                return context_failed("SSL_CTX_set_num_tickets")
            end
        end
        ctx_done = true
        update_time()
        connections_until = now() + HANDSHAKE_TIMEOUT_S
    elseif now() > connections_until then
        settled = true
        return
    end
    return connection_settings(ssl)
end

function _M.init_worker()
    local cfg = require("edge.config").get().tickets
    if not cfg or not cfg.enabled or worker_id() ~= 0 then
        return
    end
    -- At once: a task whose keys were written in an earlier epoch than nginx started in catches up.
    local ok, err = timer_at(0, check, cfg)
    if not ok then
        log.err("ticket_keys_timer_failed", { error = tostring(err) })
    end
end

return _M
