import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../harness/clients.ts';
import { startLuaNginx } from '../harness/lua-nginx.ts';
import { TestBed } from '../harness/testbed.ts';

// edge.cache_control, table-driven, inside a real nginx with the Lua module.
const bed = new TestBed('cc-parser');
let port: number;

beforeAll(async () => {
  port = await startLuaNginx(bed, {
    name: 'nginx-cc',
    readyPath: '/parse?v=%5B%5D',
    http: (port) => `  server {
    listen 127.0.0.1:${port};
    location /parse {
      content_by_lua_block {
        local cc = require "edge.cache_control"
        local cjson = require "cjson.safe"
        local out = {}
        for _, v in ipairs(cjson.decode(ngx.var.arg_v and ngx.unescape_uri(ngx.var.arg_v)) or {}) do
          local d = cc.parse(v)
          local names = {}
          for k, x in pairs(d) do names[k] = x == cc.CONFLICT and "CONFLICT" or x end
          out[#out + 1] = { d = names, max_age = cc.seconds(d, "max-age") or cjson.null,
                            s_maxage = cc.seconds(d, "s-maxage") or cjson.null }
        end
        ngx.say(cjson.encode(out))
      }
    }
  }`,
  });
});

// [field value (or repeated field lines), max-age, s-maxage, other directives expected present]
const CASES: [string | string[], number | null, number | null, string[]][] = [
  ['max-age=3600', 3600, null, []],
  ['MaX-aGe=3600', 3600, null, []],
  ['max-age=003600', 3600, null, []],
  ['max-age="3600"', 3600, null, []],
  ["max-age='3600'", null, null, []],
  ['max-age=-3600', null, null, []],
  ['max-age=3600.5', null, null, []],
  ['max-age=a3600', null, null, []],
  ['max-age =3600', null, null, []],
  ['max-age= 3600', null, null, []],
  ['max-age=99999999999', 2147483648, null, []],
  ['extension="max-age=3600", max-age=1', 1, null, ['extension']],
  ['max-age=1, extension="max-age=3600"', 1, null, ['extension']],
  ['foo="a, no-store", max-age=5', 5, null, ['foo']],
  ['foo="a\\"b, no-store", max-age=5', 5, null, ['foo']],
  ['max-age=1800, max-age=1', null, null, []],
  [['max-age=5', 'max-age=5'], 5, null, []],
  [['s-maxage=1', 'max-age=3600'], 3600, 1, []],
  ['no-store, private', null, null, ['no-store', 'private']],
  ['no-cache="Set-Cookie", public', null, null, ['no-cache', 'public']],
  [',, ,max-age=7,', 7, null, []],
  ['max-age=5 garbage, public', null, null, ['public']],
  ['', null, null, []],
];

describe('edge.cache_control (RFC 9111 §5.2)', () => {
  it('reads every case of the table as specified', async () => {
    const values = CASES.map((c) => c[0]);
    const res = await httpGet({ port, path: `/parse?v=${encodeURIComponent(JSON.stringify(values))}` });
    expect(res.status).toBe(200);
    const out = JSON.parse(res.body) as {
      d: Record<string, unknown>;
      max_age: number | null;
      s_maxage: number | null;
    }[];
    CASES.forEach(([value, maxAge, sMaxage, present], i) => {
      const got = out[i];
      expect({ value, maxAge: got?.max_age, sMaxage: got?.s_maxage }).toEqual({ value, maxAge, sMaxage });
      for (const name of present)
        expect({ value, has: name in (got?.d ?? {}) }).toEqual({ value, has: true });
      // no directive is ever found inside a quoted string
      expect({ value, noStore: 'no-store' in (got?.d ?? {}) }).toEqual({
        value,
        noStore: present.includes('no-store'),
      });
    });
  });

  it('logs no error', async () => {
    const log = await readFile(join(bed.dir, 'error.log'), 'utf8');
    expect(log.split('\n').filter((l) => /\[(error|crit|alert|emerg)\]/.test(l))).toEqual([]);
  });
});
