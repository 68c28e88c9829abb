-- Redis keys. Certificates and challenges use lua-resty-auto-ssl's names byte for byte;
-- the project's own records use "@", which no host name can contain, so they never collide.
local config = require("edge.config").get()

local prefix = config.redis.prefix

local _M = {}

function _M.cert(domain)
    return prefix .. ":" .. domain .. ":latest"
end

function _M.challenge(domain, token)
    return prefix .. ":" .. domain .. ":challenge:" .. token
end

function _M.domain(domain)
    return prefix .. ":@domain:" .. domain
end

function _M.tenant(tenant_id)
    return prefix .. ":@tenant:" .. tenant_id
end

function _M.purge(tenant_id)
    return prefix .. ":@purge:" .. tenant_id
end

-- Written by the sqs-listener after each bootstrap; gone when the task's Redis restarted empty
-- or lost its data and has not been refilled yet.
function _M.bootstrapped()
    return prefix .. ":@bootstrapped"
end

return _M
