-- Origins that cannot be turned inward. A tenant's origin is resolved here, its address checked,
-- and the request sent to that very address (proxy_pass to the IP literal, Host and TLS name set
-- to the origin's name), so nothing can change between the check and the connection.
-- Refused unless the operator allows the range (origins.allow_networks): loopback, private,
-- shared, link-local (the instance and task metadata endpoints 169.254.169.254 and
-- 169.254.170.2), unique-local, multicast, reserved and documentation ranges, NAT64 and other
-- IPv6 forms that embed an IPv4 address, plus origins.deny_networks (the VPC when it uses
-- public ranges). On an allowed non-public address, the task's own ports are refused always.
local lrucache = require "resty.lrucache"
local config = require("edge.config").get()
local ip = require "edge.ip"
local dns = require "edge.dns"

local match = string.match
local max = math.max
local min = math.min

local _M = {}

local conf = config.origins

local NON_PUBLIC = {
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/32",
    "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
}

local function ranges(list, what)
    local out = {}
    for i, s in ipairs(list) do
        local r, err = ip.cidr(s)
        if not r then
            error("edge: " .. what .. ": " .. err)
        end
        out[i] = r
    end
    return out
end

local denied = ranges(NON_PUBLIC, "built-in ranges")
for _, r in ipairs(ranges(conf.deny_networks, "origins.deny_networks")) do
    denied[#denied + 1] = r
end
local allowed = ranges(conf.allow_networks, "origins.allow_networks")
local own_ports = {}
for _, p in ipairs(conf.own_ports) do
    own_ports[p] = true
end
local resolvers = {}
for i, r in ipairs(conf.resolvers) do
    local host, port = match(r, "^([%d%.]+):?(%d*)$")
    if not host or not ip.parse(host) then
        error("edge: resolver must be an IPv4 address with an optional port: " .. tostring(r))
    end
    resolvers[i] = { host = host, port = tonumber(port) or 53 }
end

local function any(list, addr)
    for i = 1, #list do
        if ip.contains(list[i], addr) then
            return true
        end
    end
    return false
end

-- nil when the origin may be reached at addr:port, else why not.
function _M.refusal(addr, port)
    if not any(denied, addr) then
        return nil
    end
    if not any(allowed, addr) then
        return "address " .. ip.url_host(addr) .. " is not public and not in origins.allowNetworks"
    end
    if own_ports[port] then
        return "port " .. port .. " is one of the edge task's own"
    end
    return nil
end

local resolved = assert(lrucache.new(4096))

-- The decision for one origin at one address: { target } or { nil, status, why }.
local function decide(origin, addr)
    local why = _M.refusal(addr, origin.port)
    if why then
        return { nil, 502, "origin refused: " .. why }
    end
    return { origin.scheme .. "://" .. ip.url_host(addr) .. ":" .. origin.port }
end

-- Decisions are made once per origin (a decoded tenant record's table, replaced when the record
-- changes) and address: for an address literal as long as the record lives, for a name as long
-- as its resolution (the entry in `resolved`, which holds them).
local literal_decisions = setmetatable({}, { __mode = "k" })

-- The address to connect to for an origin { scheme, host, port }: "scheme://addr:port", or nil,
-- the HTTP status to answer and why.
function _M.target(origin)
    local d = literal_decisions[origin]
    if d then
        return d[1], d[2], d[3]
    end
    local host = origin.host
    local addr = ip.parse(host)
    if addr then
        d = decide(origin, addr)
        literal_decisions[origin] = d
        return d[1], d[2], d[3]
    end
    local entry = resolved:get(host)
    if not entry then
        local addrs, ttl_or_err = dns.resolve(host, resolvers, conf.dns_timeout_ms)
        if addrs then
            entry = { addr = ip.parse(addrs[1]), decisions = setmetatable({}, { __mode = "k" }) }
            resolved:set(host, entry, min(max(ttl_or_err, 1), conf.dns_valid_s))
        else
            entry = { err = ttl_or_err }
            resolved:set(host, entry, 1)
        end
    end
    if entry.err then
        return nil, 502, "origin " .. host .. " did not resolve: " .. entry.err
    end
    d = entry.decisions[origin]
    if not d then
        d = decide(origin, entry.addr)
        entry.decisions[origin] = d
    end
    return d[1], d[2], d[3]
end

return _M
