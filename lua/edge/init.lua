-- Entry points for init_by_lua and init_worker_by_lua.
local _M = {}

function _M.init(json)
    require("edge.config").load(json)
    -- Load every module in the master so a misconfiguration stops nginx at start (and `nginx -t`),
    -- and so workers share the compiled code.
    require "edge.metrics"
    require "edge.control"
    require "edge.route"
    require "edge.challenge"
    require "edge.cache_status"
    local engine = require("edge.config").get().tls.engine
    if engine == "native" then
        local tls = require "edge.tls"
        if require("edge.config").get().tls.issuer_url then
            tls.on_miss = require("edge.issuer").on_miss
        end
    end
end

function _M.init_worker()
    -- Per-worker timers: metric flushes, and the change logs of the caches in version mode
    -- (certificates), so neither costs anything on the handshake path.
    require("edge.metrics").init_worker()
    require("edge.tiered_cache").init_worker()
    require("edge.ticket_keys").init_worker()
    local tls_conf = require("edge.config").get().tls
    if tls_conf.engine == "native" and tls_conf.push then
        local tls = require "edge.tls"
        require("edge.cert_push").init_worker(tls.cache, tls.derive)
    end
end

return _M
