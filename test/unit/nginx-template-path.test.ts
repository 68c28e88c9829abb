import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NGINX_TEMPLATE_PATH, resolveNginxTemplate } from '../../lib/edge/nginx-conf.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(`${ROOT}/${path}`, 'utf8');

/** The sidecar image's final stage: its WORKDIR and where each COPY puts what. */
function finalStageLayout(dockerfile: string) {
  const stage = dockerfile.split(/^FROM .*$/m).at(-1) ?? '';
  const workdir = /^WORKDIR (\S+)$/m.exec(stage)?.[1];
  if (!workdir) throw new Error('final stage has no WORKDIR');
  const dest = (source: RegExp) => {
    const line = stage.split('\n').find((l) => l.startsWith('COPY ') && source.test(l));
    if (!line) throw new Error(`final stage copies nothing matching ${source}`);
    return posix.resolve(workdir, line.trim().split(/\s+/).at(-1) as string);
  };
  return {
    dist: dest(/\/src\/dist\/? /),
    templateDir: dest(/ edge-image\/nginx\.conf\.mustache /),
  };
}

describe('the nginx.conf template path', () => {
  it('exists from the source tree', () => {
    expect(existsSync(NGINX_TEMPLATE_PATH)).toBe(true);
  });

  it('is found from dist/ in the layout edge-image/Dockerfile.sidecars builds', () => {
    const { dist, templateDir } = finalStageLayout(read('edge-image/Dockerfile.sidecars'));
    // tsconfig.sidecars.json compiles the repository root into dist/, so lib/edge/x.ts → dist/lib/edge/x.js.
    const tsconfig = JSON.parse(read('edge-image/tsconfig.sidecars.json')) as {
      compilerOptions: { outDir: string; rootDir: string };
    };
    expect(tsconfig.compilerOptions).toMatchObject({ outDir: '../dist', rootDir: '..' });

    const compiledModule = pathToFileURL(`${dist}/lib/edge/nginx-conf.js`);
    const inImage = `${templateDir}/nginx.conf.mustache`;
    expect(resolveNginxTemplate(compiledModule, (p) => p === inImage)).toBe(inImage);
  });
});
