-- A Redis connection from the cosocket pool, with timeouts always set.
-- OpenResty ships the client as resty.redis; Debian's lua-nginx-redis installs it as nginx.redis.
local config = require("edge.config").get()

local ok, redis = pcall(require, "resty.redis")
if not ok then
    redis = require "nginx.redis"
end

local getenv = os.getenv

-- rawget: the client turns any unknown method name into a Redis command, so `red.set_timeouts`
-- is never nil, and on a client without it the timeouts would silently stay at nginx's 60 s.
local has_set_timeouts = rawget(redis, "set_timeouts") ~= nil

local _M = { null = ngx.null }

local conf = config.redis
local password = getenv("EDGE_REDIS_PASSWORD")
local pool_opts = { pool_size = conf.pool_size }

-- Returns a connected client or nil and "failed to connect to redis: <reason>".
function _M.connect()
    local red, err = redis:new()
    if not red then
        return nil, "failed to create redis client: " .. tostring(err)
    end
    if has_set_timeouts then
        red:set_timeouts(conf.timeout_ms, conf.timeout_ms, conf.timeout_ms)
    else -- lua-resty-redis before 0.28 (Debian 12)
        red:set_timeout(conf.timeout_ms)
    end
    local connected
    connected, err = red:connect(conf.host, conf.port, pool_opts)
    if not connected then
        return nil, "failed to connect to redis: " .. tostring(err)
    end
    if password and password ~= "" and red:get_reused_times() == 0 then
        local authed
        authed, err = red:auth(password)
        if not authed then
            red:close()
            return nil, "failed to authenticate to redis: " .. tostring(err)
        end
    end
    return red
end

-- Gives the connection back to the pool (or closes it when the last command failed).
function _M.release(red, failed)
    if failed then
        red:close()
        return
    end
    red:set_keepalive(60000, conf.pool_size)
end

-- Runs fn(red) on a pooled connection; returns fn's results or nil and the error.
function _M.with(fn)
    local red, err = _M.connect()
    if not red then
        return nil, err
    end
    local res, ferr = fn(red)
    _M.release(red, ferr ~= nil)
    if ferr then
        return nil, ferr
    end
    return res
end

-- GET that tells "absent" (nil, nil) apart from "failed" (nil, err).
function _M.get(key)
    return _M.with(function(red)
        local res, err = red:get(key)
        if err then
            return nil, "redis GET failed: " .. err
        end
        if res == ngx.null then
            return nil
        end
        return res
    end)
end

-- GET of a key only a bootstrap (or an event) puts in the task's Redis, such as a routing record.
-- "Absent" is trusted when the bootstrap sentinel is there, or was never seen (a Redis filled by
-- hand, as a test or a first start does). With the sentinel gone after it was seen, Redis restarted
-- empty or lost its data and the sqs-listener has not refilled it yet: absence says nothing, so
-- this is an error and the caller serves its last known copy (or 503), never a remembered 404.
local BOOT_SEEN = "!redis:bootstrapped"
local routes = ngx.shared.edge_routes

function _M.get_bootstrapped(key, sentinel)
    local res, err = _M.with(function(red)
        local r, e = red:mget(key, sentinel)
        if not r then
            return nil, "redis MGET failed: " .. tostring(e)
        end
        return r
    end)
    if not res then
        return nil, err
    end
    local value, boot = res[1], res[2]
    if boot ~= ngx.null then
        if routes and not routes:get(BOOT_SEEN) then
            routes:set(BOOT_SEEN, true)
        end
    elseif value == ngx.null and routes and routes:get(BOOT_SEEN) then
        return nil, "redis not bootstrapped (restarted or lost its data)"
    end
    if value == ngx.null then
        return nil
    end
    return value
end

return _M
