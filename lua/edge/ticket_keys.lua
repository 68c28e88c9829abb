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
-- different, and OpenSSL refuses a session from another context. client_hello() gives every
-- connection the region's context instead, before OpenSSL looks at the ticket.
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

pcall(ffi.cdef, [[
typedef struct ssl_st SSL;
void *ngx_http_lua_ffi_get_req_ssl_pointer(void *r);
int SSL_set_session_id_context(SSL *ssl, const unsigned char *sid_ctx, unsigned int sid_ctx_len);
int symlink(const char *target, const char *linkpath);
int access(const char *path, int mode);
int kill(int pid, int sig);
int getppid(void);
char *strerror(int errnum);
]])

local SIGHUP = 1
local F_OK = 0
-- Past the boundary, so that every task's clock has reached the new epoch's first second.
local BOUNDARY_MARGIN_S = 0.5
-- Older keys removed per rotation at most (after a long clock jump the rest stay for the next).
local MAX_REMOVALS = 1000

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

local session_context

-- ssl_client_hello_by_lua: the region's session ID context for this connection (20 bytes, within
-- OpenSSL's 32), set before OpenSSL decides whether the client's ticket resumes.
function _M.client_hello()
    if not session_context then
        session_context = sha1_bin("edge sessions\0" .. require("edge.config").get().region)
    end
    local ssl = ffi.cast("SSL *", C.ngx_http_lua_ffi_get_req_ssl_pointer(get_request()))
    if ssl == nil or C.SSL_set_session_id_context(ssl, session_context, #session_context) ~= 1 then
        -- The connection keeps nginx's own context: it resumes only sessions of this task.
        log.err("ticket_keys_session_context_failed", {})
    end
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
