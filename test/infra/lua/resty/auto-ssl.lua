-- A stand-in for lua-resty-auto-ssl (not installable here): it records the settings nginx.conf
-- makes and fails `nginx -t` when the shape differs from what the real module needs.
local _M = {}
local mt = { __index = _M }

function _M.new()
    return setmetatable({ options = {} }, mt)
end

function _M:set(key, value)
    self.options[key] = value
end

function _M:init()
    local o = self.options
    assert(o.storage_adapter == "resty.auto-ssl.storage_adapters.redis", "storage adapter must be redis")
    assert(type(o.redis) == "table" and o.redis.host and o.redis.port and o.redis.prefix, "redis settings")
    assert(type(o.allow_domain) == "function", "allow_domain must be a function")
    assert(type(o.dir) == "string", "dir must be set")
    assert(type(o.ca) == "string" and o.ca:match("^https://"), "ca must be set from the config")
    assert(type(o.hook_server_port) == "number", "hook_server_port must be set from the config")
    assert(o.allow_domain("not a host name") == false, "allow_domain must refuse malformed names")
end

function _M:init_worker() end
function _M:ssl_certificate() end
function _M:challenge_server() end
function _M:hook_server() end

return _M
