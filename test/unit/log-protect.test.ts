import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../harness/clients.ts';
import { startLuaNginx } from '../harness/lua-nginx.ts';
import { TestBed } from '../harness/testbed.ts';

// edge.log.protect inside a real nginx, set up as the edge's servers are: the server's own lines
// at crit, the structured ones through the main error log. The edge has no way to fail on purpose,
// so the failing entries are this config's.
const bed = new TestBed('log-protect');
const SECRET = randomBytes(16).toString('hex');
let port: number;
const errorLog = join(bed.dir, 'error.log');

beforeAll(async () => {
  port = await startLuaNginx(bed, {
    name: 'nginx-log-protect',
    errorLog,
    readyPath: '/ready',
    readyStatus: 204,
    http: (port) => `  server {
    listen 127.0.0.1:${port};
    error_log ${errorLog} crit;
    location /ready { return 204; }
    location /access {
      access_by_lua_block {
        require("edge.log").protect("access_entry", function() error("failed on " .. ngx.var.request_uri) end)
      }
      content_by_lua_block { ngx.say("not reached") }
    }
    location /exit {
      content_by_lua_block {
        require("edge.log").protect("exit_entry", function(status) return ngx.exit(status) end, 204)
      }
    }
    location /late {
      content_by_lua_block {
        require("edge.log").protect("late_entry", function()
          ngx.print("partial")
          ngx.flush(true)
          local t = nil
          return t.field
        end)
      }
    }
    location /filter {
      header_filter_by_lua_block {
        require("edge.log").protect("filter_entry", function() error("filter failed") end)
      }
      return 200 "filtered\\n";
    }
  }`,
  });
});

async function luaErrors(name: string): Promise<Record<string, string>[]> {
  return (await readFile(errorLog, 'utf8'))
    .split('\n')
    .filter((l) => l.includes('"event":"lua_error"'))
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))))
    .filter((e) => e.name === name);
}

describe('edge.log.protect', () => {
  it('answers 500 for an error in the access phase, with one lua_error line and no query', async () => {
    const res = await httpGet({ port, path: `/access?token=${SECRET}` });
    expect(res.status).toBe(500);
    const [line = {}, ...more] = await luaErrors('access_entry');
    expect(more).toEqual([]);
    expect(line.phase).toBe('access');
    expect(line.error).toContain('failed on /access?');
    expect(line.error).toContain('stack traceback');
  });

  it('lets ngx.exit through, with its argument', async () => {
    const res = await httpGet({ port, path: `/exit?token=${SECRET}` });
    expect(res.status).toBe(204);
    expect(await luaErrors('exit_entry')).toEqual([]);
  });

  it('ends the request when the headers are already out', async () => {
    await httpGet({ port, path: `/late?token=${SECRET}` }).catch(() => undefined);
    const [line = {}] = await luaErrors('late_entry');
    expect(line.phase).toBe('content');
    expect(line.error).toContain('attempt to index');
  });

  it('only logs an error in a header filter: the response goes on', async () => {
    const res = await httpGet({ port, path: `/filter?token=${SECRET}` });
    expect(res.status).toBe(200);
    expect(res.body).toBe('filtered\n');
    const [line = {}] = await luaErrors('filter_entry');
    expect(line.phase).toBe('header_filter');
  });

  it("keeps the query out of the error log: nginx's own lines for this server are only crit ones", async () => {
    const log = await readFile(errorLog, 'utf8');
    expect(log).toContain('"event":"lua_error"');
    expect(log).not.toContain(SECRET);
  });
});
