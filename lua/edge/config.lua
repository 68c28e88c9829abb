-- The runtime config, decoded once in init_by_lua from the JSON rendered into nginx.conf.
local cjson = require "cjson.safe"

local _M = {}

local values

local function strip_nulls(t)
    for k, v in pairs(t) do
        if v == cjson.null then
            t[k] = nil
        elseif type(v) == "table" then
            strip_nulls(v)
        end
    end
    return t
end

function _M.load(json)
    local decoded, err = cjson.decode(json)
    if type(decoded) ~= "table" then
        error("edge: invalid runtime config: " .. tostring(err))
    end
    values = strip_nulls(decoded)
    return values
end

-- Modules call this when they are first required (after init), so a missing config is a
-- misconfiguration that stops nginx from starting rather than a per-request failure.
function _M.get()
    if not values then
        error("edge: config not loaded; require edge modules after edge.init")
    end
    return values
end

return _M
