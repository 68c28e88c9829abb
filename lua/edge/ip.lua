-- IP address literals and CIDR ranges, IPv4 and IPv6 alike: an IPv4 address is held as its
-- IPv4-mapped IPv6 form (::ffff:a.b.c.d), so "::ffff:127.0.0.1" and "127.0.0.1" are one address
-- and one list of ranges covers both families. Addresses are strings of 16 bytes.
local byte = string.byte
local char = string.char
local find = string.find
local match = string.match
local sub = string.sub
local gmatch = string.gmatch
local rep = string.rep
local tonumber = tonumber
local floor = math.floor
local concat = table.concat
local format = string.format

local _M = {}

local MAPPED = rep("\0", 10) .. "\255\255"

-- Strict dotted quad: four decimal octets, no leading zeros (which some parsers read as octal).
local function parse_v4(s)
    local a, b, c, d = match(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if not a then
        return nil
    end
    local out = {}
    for i, part in ipairs({ a, b, c, d }) do
        local n = tonumber(part)
        if n > 255 or (#part > 1 and sub(part, 1, 1) == "0") then
            return nil
        end
        out[i] = n
    end
    return char(out[1], out[2], out[3], out[4])
end

local function groups(s, out)
    if s == "" then
        return out
    end
    for g in gmatch(s .. ":", "([^:]*):") do
        if not match(g, "^%x%x?%x?%x?$") then
            return nil
        end
        local n = tonumber(g, 16)
        out[#out + 1] = char(floor(n / 256), n % 256)
    end
    return out
end

local function parse_v6(s)
    if find(s, "%", 1, true) then
        return nil -- zone ids name an interface: never an origin
    end
    -- A trailing dotted quad (::ffff:1.2.3.4) stands for the last two groups.
    local head, quad = match(s, "^(.*:)(%d+%.%d+%.%d+%.%d+)$")
    local tail = ""
    if head then
        tail = parse_v4(quad)
        if not tail then
            return nil
        end
        s = sub(head, -2) == "::" and head or sub(head, 1, -2)
    end
    local left, right = match(s, "^(.-)::(.*)$")
    local l, r
    if left then
        if find(right, "::", 1, true) then
            return nil
        end
        l, r = groups(left, {}), groups(right, {})
    else
        l, r = groups(s, {}), {}
    end
    if not l or not r then
        return nil
    end
    local missing = 16 - (#l + #r) * 2 - #tail
    if missing < 0 or (not left and missing ~= 0) or (left and missing == 0) then
        return nil
    end
    return concat(l) .. rep("\0", missing) .. concat(r) .. tail
end

-- Returns the 16-byte form of an address literal ("1.2.3.4", "::1", "[::1]"), or nil.
function _M.parse(s)
    if type(s) ~= "string" then
        return nil
    end
    local inner = match(s, "^%[(.*)%]$")
    if inner then
        return parse_v6(inner)
    end
    local v4 = parse_v4(s)
    if v4 then
        return MAPPED .. v4
    end
    if find(s, ":", 1, true) then
        return parse_v6(s)
    end
    return nil
end

-- Parses "addr/bits" (or a bare address); returns { addr, bits } or nil and why.
function _M.cidr(s)
    local addr, bits = match(s, "^([^/]+)/(%d+)$")
    addr = addr or s
    local a = _M.parse(addr)
    if not a then
        return nil, "not an IP address or CIDR: " .. tostring(s)
    end
    local is_v4 = parse_v4(addr) ~= nil
    local n = tonumber(bits) or (is_v4 and 32 or 128)
    if is_v4 then
        n = n + 96
    end
    if n > 128 then
        return nil, "prefix too long: " .. s
    end
    return { addr = a, bits = n }
end

function _M.contains(range, addr)
    local full = floor(range.bits / 8)
    if sub(range.addr, 1, full) ~= sub(addr, 1, full) then
        return false
    end
    local rest = range.bits % 8
    if rest == 0 then
        return true
    end
    local shift = 2 ^ (8 - rest)
    return floor(byte(range.addr, full + 1) / shift) == floor(byte(addr, full + 1) / shift)
end

-- The literal for a URL: dotted quad for IPv4 (mapped) addresses, bracketed hex otherwise.
function _M.url_host(addr)
    if sub(addr, 1, 12) == MAPPED then
        return byte(addr, 13) .. "." .. byte(addr, 14) .. "." .. byte(addr, 15) .. "." .. byte(addr, 16)
    end
    local parts = {}
    for i = 1, 16, 2 do
        parts[#parts + 1] = format("%x", byte(addr, i) * 256 + byte(addr, i + 1))
    end
    return "[" .. concat(parts, ":") .. "]"
end

return _M
