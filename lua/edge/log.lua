-- Structured logs: one JSON object per line in nginx's error log, with an `event` name.
local cjson = require "cjson.safe"

local ngx_log = ngx.log

local _M = {}

function _M.event(level, event, fields)
    fields = fields or {}
    fields.event = event
    ngx_log(level, cjson.encode(fields))
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
