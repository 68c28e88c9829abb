-- Structured logs: one JSON object per line in nginx's error log, with an `event` name.
-- Lines go out without nginx's request context (client, server, request line): the request line
-- carries query strings, and query strings carry tokens. Events name what they need themselves.
-- ngx.errlog.raw_log would add that context back inside a request, so its C function is called
-- with no request: nginx then writes to the cycle's error log, level filter included.
local ffi = require "ffi"
local cjson = require "cjson.safe"
require "ngx.errlog" -- declares ngx_http_lua_ffi_raw_log

local C = ffi.C

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

return _M
