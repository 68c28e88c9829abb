// Loaded into the cache-tests client (node --import): names under the platform domain resolve to
// loopback, so the client's fetch reaches the local edge with the right Host and TLS server name.
import dns from 'node:dns';

const suffix = `.${process.env.CONFORMANCE_PLATFORM}`;
const lookup = dns.lookup;
dns.lookup = (hostname, options, callback) => {
  if (!hostname.endsWith(suffix)) return lookup(hostname, options, callback);
  const cb = typeof options === 'function' ? options : callback;
  const all = typeof options === 'object' && options?.all;
  if (all) return process.nextTick(cb, null, [{ address: '127.0.0.1', family: 4 }]);
  return process.nextTick(cb, null, '127.0.0.1', 4);
};
