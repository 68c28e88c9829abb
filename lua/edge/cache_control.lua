-- The one Cache-Control parser (RFC 9111 §5.2, RFC 9213 targeted fields), shared by every tier.
--
-- parse(value) takes a field value, or the list nginx gives for repeated field lines, and returns
-- a table of lowercase directive names. A directive's entry is true when it has no argument, or
-- its argument with quotes removed ('max-age="5"' gives "5"). Directive names inside a quoted
-- string are never seen. A directive that appears twice with different arguments is kept as
-- CONFLICT: callers treat it as absent for freshness (RFC 9111 §4.2.1 allows "consider stale").
-- Malformed list members are skipped, never guessed at.
local byte = string.byte
local sub = string.sub
local lower = string.lower
local concat = table.concat
local type = type
local tonumber = tonumber

local _M = {}

local CONFLICT = {}
_M.CONFLICT = CONFLICT

-- RFC 9111 §1.2.2: a delta-seconds too large to represent counts as 2^31.
local MAX_DELTA = 2147483648

local COMMA, SPACE, TAB, EQ, DQUOTE, BACKSLASH = 44, 32, 9, 61, 34, 92

local TCHAR = {}
for c in ("!#$%&'*+-.^_`|~"):gmatch(".") do
    TCHAR[byte(c)] = true
end
for c = byte("0"), byte("9") do TCHAR[c] = true end
for c = byte("a"), byte("z") do TCHAR[c] = true end
for c = byte("A"), byte("Z") do TCHAR[c] = true end

local function skip_ows(s, i, n)
    while i <= n do
        local c = byte(s, i)
        if c ~= SPACE and c ~= TAB then
            return i
        end
        i = i + 1
    end
    return i
end

-- Skips to just past the next comma that is outside a quoted string.
local function skip_member(s, i, n)
    local quoted = false
    while i <= n do
        local c = byte(s, i)
        if quoted then
            if c == BACKSLASH then
                i = i + 1
            elseif c == DQUOTE then
                quoted = false
            end
        elseif c == DQUOTE then
            quoted = true
        elseif c == COMMA then
            return i + 1
        end
        i = i + 1
    end
    return i
end

local function put(out, name, value)
    local prev = out[name]
    if prev == nil then
        out[name] = value
    elseif prev ~= value then
        out[name] = CONFLICT
    end
end

function _M.parse(value)
    local out = {}
    if type(value) == "table" then
        value = concat(value, ",")
    end
    if type(value) ~= "string" then
        return out
    end
    local s, n, i = value, #value, 1
    while i <= n do
        i = skip_ows(s, i, n)
        local start = i
        while i <= n and TCHAR[byte(s, i)] do
            i = i + 1
        end
        if i == start then
            i = skip_member(s, i, n) -- empty member or garbage: skip it
        else
            local name = lower(sub(s, start, i - 1))
            local arg = true
            local ok = true
            if i <= n and byte(s, i) == EQ then
                i = i + 1
                if i <= n and byte(s, i) == DQUOTE then
                    local parts = {}
                    i = i + 1
                    local closed = false
                    local from = i
                    while i <= n do
                        local c = byte(s, i)
                        if c == BACKSLASH and i < n then
                            parts[#parts + 1] = sub(s, from, i - 1)
                            from = i + 1
                            i = i + 2
                        elseif c == DQUOTE then
                            parts[#parts + 1] = sub(s, from, i - 1)
                            closed = true
                            i = i + 1
                            break
                        else
                            i = i + 1
                        end
                    end
                    ok = closed
                    arg = concat(parts)
                else
                    local vstart = i
                    while i <= n and TCHAR[byte(s, i)] do
                        i = i + 1
                    end
                    arg = sub(s, vstart, i - 1)
                    ok = i > vstart
                end
            end
            i = skip_ows(s, i, n)
            if i <= n and byte(s, i) ~= COMMA then
                ok = false -- "max-age =5", "max-age= 5", trailing garbage
            end
            if ok then
                put(out, name, arg)
            end
            i = skip_member(s, i, n)
        end
    end
    return out
end

-- A directive's delta-seconds (RFC 9111 §1.2.2: 1*DIGIT), or nil when absent, conflicting or
-- not a non-negative integer ("-1", "'5'", "5.0", "5a").
function _M.seconds(directives, name)
    local v = directives[name]
    if type(v) ~= "string" or v == "" or v:find("[^0-9]") then
        return nil
    end
    local n = tonumber(v)
    if n > MAX_DELTA then
        return MAX_DELTA
    end
    return n
end

-- true when the directive is present in any form (with or without an argument).
function _M.has(directives, name)
    return directives[name] ~= nil
end

return _M
