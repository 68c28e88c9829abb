-- Counters kept per worker and added to a shared dict on a timer (the lua-resty-counter idiom):
-- an event costs one Lua table update, not a shared-dict increment under its lock. A worker
-- that exits flushes once more (the timer's premature run).
local log = require "edge.log"

local pairs = pairs
local now = ngx.now
local worker_id = ngx.worker.id
local worker_count = ngx.worker.count
local update_time = ngx.update_time
local sleep = ngx.sleep
local every = ngx.timer.every

local _M = {}
local mt = { __index = _M }

-- "!flushed:<worker id>" = ngx.now() of that worker's last flush. Keys starting with "!" are
-- the counter's own; readers of the dict skip them.
local FLUSHED = "!flushed:"

function _M.new(shm_name, interval_s)
    local shm = ngx.shared[shm_name]
    if not shm then
        error("edge: lua_shared_dict " .. tostring(shm_name) .. " is not declared")
    end
    if type(interval_s) ~= "number" or interval_s <= 0 then
        error("edge: counter flush interval must be a positive number")
    end
    -- pending[key] = count not yet in the dict; keys stay (at 0) so counting allocates nothing.
    return setmetatable({ shm = shm, interval = interval_s, pending = {} }, mt)
end

function _M.incr(self, key)
    local pending = self.pending
    pending[key] = (pending[key] or 0) + 1
end

function _M.flush(self)
    local shm = self.shm
    for key, n in pairs(self.pending) do
        if n > 0 then
            local _, err = shm:incr(key, n, 0)
            if err then
                log.warn("metric_flush_failed", { metric = key, err = err })
            else
                self.pending[key] = 0
            end
        end
    end
    shm:set(FLUSHED .. worker_id(), now())
end

-- Flushes this worker, then waits (yielding, at most two intervals) until every other worker has
-- flushed too, so a reader sees every count made before it asked.
function _M.sync(self)
    update_time()
    local asked = now()
    self:flush()
    local shm, n = self.shm, worker_count()
    local deadline = asked + 2 * self.interval
    for id = 0, n - 1 do
        while (shm:get(FLUSHED .. id) or 0) < asked and now() < deadline do
            sleep(self.interval / 4)
            update_time()
        end
    end
end

local function tick(_premature, self)
    self:flush()
end

-- Starts this worker's flush timer (init_worker_by_lua).
function _M.init_worker(self)
    local ok, err = every(self.interval, tick, self)
    if not ok then
        log.err("metric_timer_failed", { err = err })
    end
end

return _M
