-- A minimal DNS client (A records over UDP) for origin host names. nginx's own resolver cannot be
-- used: its answer is connected to without a chance to check it, and the address the edge checks
-- must be the one it connects to. lua-resty-dns would do, but Debian does not package it.
local udp = ngx.socket.udp
local byte = string.byte
local char = string.char
local gmatch = string.gmatch
local concat = table.concat
local floor = math.floor
local random = math.random
local min = math.min

local _M = {}

local function u16(s, i)
    return byte(s, i) * 256 + byte(s, i + 1)
end

local function query(id, name)
    local labels = {}
    for label in gmatch(name, "[^.]+") do
        labels[#labels + 1] = char(#label) .. label
    end
    return char(floor(id / 256), id % 256, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0)
        .. concat(labels) .. "\0\0\1\0\1"
end

-- Index just past the (possibly compressed) name starting at i, or nil.
local function skip_name(s, i)
    while true do
        local len = byte(s, i)
        if not len then
            return nil
        end
        if len >= 192 then
            return i + 2
        end
        if len == 0 then
            return i + 1
        end
        i = i + len + 1
    end
end

-- Returns a list of IPv4 addresses ("a.b.c.d") and the smallest TTL, or nil and why.
local function parse(resp, id)
    if #resp < 12 or u16(resp, 1) ~= id then
        return nil, "answer does not match the query"
    end
    local rcode = byte(resp, 4) % 16
    if rcode == 3 then
        return nil, "no such host"
    elseif rcode ~= 0 then
        return nil, "resolver answered rcode " .. rcode
    end
    local qd, an = u16(resp, 5), u16(resp, 7)
    local i = 13
    for _ = 1, qd do
        i = skip_name(resp, i)
        if not i then
            return nil, "truncated answer"
        end
        i = i + 4
    end
    local addrs, ttl = {}, nil
    for _ = 1, an do
        i = skip_name(resp, i)
        if not i or i + 10 > #resp + 1 then
            return nil, "truncated answer"
        end
        local rtype, rlen = u16(resp, i), u16(resp, i + 8)
        local rttl = u16(resp, i + 4) * 65536 + u16(resp, i + 6)
        i = i + 10
        if rtype == 1 and rlen == 4 then
            addrs[#addrs + 1] = byte(resp, i) .. "." .. byte(resp, i + 1) .. "." .. byte(resp, i + 2)
                .. "." .. byte(resp, i + 3)
            ttl = ttl and min(ttl, rttl) or rttl
        end
        i = i + rlen
    end
    if #addrs == 0 then
        return nil, "no address records"
    end
    return addrs, ttl
end

-- Asks each resolver ({ host, port }) in turn; returns addresses and TTL, or nil and why.
function _M.resolve(name, resolvers, timeout_ms)
    local last = "no resolvers configured"
    for _, r in ipairs(resolvers) do
        local sock = udp()
        sock:settimeout(timeout_ms)
        local ok, err = sock:setpeername(r.host, r.port)
        if ok then
            local id = random(0, 65535)
            ok, err = sock:send(query(id, name))
            if ok then
                local resp
                resp, err = sock:receive(4096)
                if resp then
                    sock:close()
                    local addrs, perr = parse(resp, id)
                    if addrs or perr == "no such host" then
                        return addrs, perr
                    end
                    err = perr
                end
            end
        end
        sock:close()
        last = "resolver " .. r.host .. ": " .. tostring(err)
    end
    return nil, last
end

return _M
