import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const IMAGES_ENV = fileURLToPath(new URL('../../edge-image/images.env', import.meta.url));

/** The tags scripts/build-images.sh gives the images (edge-image/images.env, KEY=value). */
export interface LocalImages {
  readonly edge: string;
  readonly sidecars: string;
  readonly redis: string;
}

export function localImages(file = IMAGES_ENV): LocalImages {
  const vars: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) vars[m[1] as string] = (m[2] as string).replace(/^["']|["']$/g, '');
  }
  const need = (k: string) => {
    const v = vars[k];
    if (!v) throw new Error(`${file} names no ${k}`);
    return v;
  };
  return {
    edge: need('EDGE_IMAGE_EDGE'),
    sidecars: need('EDGE_IMAGE_SIDECARS'),
    redis: need('EDGE_IMAGE_REDIS'),
  };
}

/** Docker image assets of a stack: image tag (the asset hash) → the Dockerfile it is built from. */
export function assetDockerfiles(assetsFile: string): Map<string, string> {
  const manifest = JSON.parse(readFileSync(assetsFile, 'utf8')) as {
    dockerImages?: Record<
      string,
      { source: { dockerFile?: string }; destinations: Record<string, { imageTag: string }> }
    >;
  };
  const out = new Map<string, string>();
  for (const [hash, a] of Object.entries(manifest.dockerImages ?? {})) {
    const dockerfile = a.source.dockerFile ?? 'Dockerfile';
    out.set(hash, dockerfile);
    for (const d of Object.values(a.destinations)) out.set(d.imageTag, dockerfile);
  }
  return out;
}
