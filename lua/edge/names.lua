-- Host names as they arrive in SNI and Host: normalised (lowercase, no trailing dot) and checked.
local lrucache = require "resty.lrucache"

local re_find = ngx.re.find
local lower = string.lower
local byte = string.byte
local sub = string.sub
local find = string.find
local unescape_uri = ngx.unescape_uri

local _M = {}

local HOSTNAME = [[^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$]]
local TENANT_ID = [[^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$]]

-- Returns the normalised name, or nil and the reason it was refused.
-- IP literals, single labels and wildcards are refused: no certificate can be issued for them.
function _M.normalize_host(name)
    if type(name) ~= "string" or name == "" then
        return nil, "empty host name"
    end
    if #name > 254 then
        return nil, "host name longer than 253 characters"
    end
    if byte(name, -1) == 46 then -- trailing "."
        name = sub(name, 1, -2)
    end
    name = lower(name)
    if #name > 253 then
        return nil, "host name longer than 253 characters"
    end
    if not re_find(name, HOSTNAME, "jo") then
        return nil, "host name has invalid characters or labels"
    end
    return name
end

-- True when the platform wildcard `*.<platform>` answers for a normalised name: `<label>.<platform>`
-- and the platform apex itself.
function _M.covered_by_platform_wildcard(name, platform)
    if name == platform then
        return true
    end
    local n = #name - #platform - 1
    return n > 0 and byte(name, n + 1) == 46 and sub(name, n + 2) == platform
        and not find(sub(name, 1, n), ".", 1, true)
end

-- The rules for a server name as sent in SNI, decided once per name per worker (a pure function
-- of the string, so never invalidated): a table { name = normalised } plus `wildcard` when the
-- platform wildcard covers it, or { refused = reason }.
local decisions
local decisions_platform

function _M.init_sni_decisions(size, platform)
    decisions = assert(lrucache.new(size))
    decisions_platform = platform
end

function _M.decide_sni(raw)
    local d = decisions:get(raw)
    if d then
        return d
    end
    local name, why = _M.normalize_host(raw)
    if name then
        d = { name = name, wildcard = _M.covered_by_platform_wildcard(name, decisions_platform) }
    else
        d = { refused = why }
    end
    decisions:set(raw, d)
    return d
end

function _M.valid_tenant_id(id)
    return type(id) == "string" and re_find(id, TENANT_ID, "jo") ~= nil
end

-- True when the raw request path holds a dot segment, plain or percent-encoded.
function _M.has_dot_segment(path)
    -- Cheap test first: most paths contain neither "/." nor a percent-escape.
    if not find(path, "/.", 1, true) and not find(path, "%", 1, true) and byte(path, 1) ~= 46 then
        return false
    end
    return re_find(path, [[(^|/)(\.|%2e){1,2}(/|\?|#|$)]], "ijo") ~= nil
end

-- Why a request path (no query) could leave the tenant's base at an origin that decodes and
-- normalises more than nginx does, or nil when it cannot. Origins differ: some decode %2F, treat
-- `\` as `/`, decode twice, or drop `;params` before resolving `..`. So the path is decoded one
-- level at a time (at most MAX_DECODES) and every level must be free of backslashes, encoded
-- slashes, NUL, bytes that only overlong UTF-8 uses, and dot segments.
local MAX_DECODES = 3

function _M.unsafe_path(path)
    -- Cheap test first (the common path): without a backslash, a "%" or a "." starting a segment
    -- there is nothing to decode and no dot segment.
    if not find(path, "%", 1, true) and not find(path, "\\", 1, true) and not find(path, "/.", 1, true)
        and byte(path, 1) ~= 46 then
        return nil
    end
    local s = path
    for _ = 0, MAX_DECODES do
        if find(s, "\\", 1, true) then
            return "backslash in path"
        end
        if re_find(s, [[(^|/)\.\.?(/|;|$)]], "jo") then
            return "dot segment in path"
        end
        if not find(s, "%", 1, true) then
            return nil
        end
        if re_find(s, [[%(2f|5c|00|c0|c1)]], "ijo") then
            return "encoded slash, backslash or NUL in path"
        end
        local decoded = unescape_uri(s)
        if decoded == s then
            return nil -- a lone "%" that is not an escape: nothing more to decode
        end
        s = decoded
    end
    return "path is encoded too many times"
end

return _M
