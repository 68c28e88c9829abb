-- Structured logs: one JSON object per line in nginx's error log, with an `event` name.
-- Lines go out without nginx's request context (client, server, request line): the request line
-- carries query strings, and query strings carry tokens. Events name what they need themselves.
-- ngx.errlog.raw_log would add that context back inside a request, so its C function is called
-- with no request: nginx then writes to the cycle's error log, level filter included.
local ffi = require "ffi"
local cjson = require "cjson.safe"
require "ngx.errlog" -- declares ngx_http_lua_ffi_raw_log

local C = ffi.C
local xpcall = xpcall
local traceback = debug.traceback
local tostring = tostring
local gsub = string.gsub
local get_phase = ngx.get_phase
local exit = ngx.exit

local function raw_log(level, msg)
    C.ngx_http_lua_ffi_raw_log(nil, level, msg, #msg)
end

local _M = {}

function _M.event(level, event, fields)
    fields = fields or {}
    fields.event = event
    raw_log(level, cjson.encode(fields))
end

function _M.warn(event, fields)
    _M.event(ngx.WARN, event, fields)
end

function _M.err(event, fields)
    _M.event(ngx.ERR, event, fields)
end

function _M.info(event, fields)
    _M.event(ngx.INFO, event, fields)
end

-- The error handler of protect(), built once: no closure per request.
local function with_traceback(err)
    return traceback(tostring(err), 2)
end

-- Filters cannot end the request (ngx.exit is not allowed there): a failure is only logged.
local FILTERS = { header_filter = true, body_filter = true }

-- Runs a request-phase entry (fn, with one optional argument), catching a runtime error: left
-- to nginx, its line would carry the request line and so the query string. One `lua_error` line
-- instead, then 500 (or the connection closed, once headers are out). Anything in the error text
-- that looks like a query ("?k=v...") is cut: a message might quote a URI.
-- ngx.exit, ngx.exec and ngx.redirect inside fn behave as they do outside xpcall.
function _M.protect(name, fn, arg)
    local ok, trace = xpcall(fn, with_traceback, arg)
    if ok then
        return
    end
    local phase = get_phase()
    _M.err("lua_error", { name = name, phase = phase, error = (gsub(trace, "%?[^%s'\"]+", "?")) })
    if FILTERS[phase] then
        return
    end
    if ngx.headers_sent then
        return exit(ngx.ERROR)
    end
    return exit(500)
end

return _M
