import type { LocalImages } from './local-images.ts';
import type { ContainerDefinition } from './task-definition.ts';

/**
 * Everything the rehearsal changes in the synthesized task, in one place: AWS endpoints, the CA,
 * and images that cannot be pulled here. Anything not listed runs exactly as synthesized.
 */

/** Local endpoints of the AWS services the task calls, as the pod reaches them. */
export interface AwsEndpoints {
  readonly dynamodb: string;
  readonly sns: string;
  readonly sqs: string;
  readonly kms: string;
  readonly secretsManager: string;
  readonly route53: string;
}

export interface SubstitutionInputs {
  readonly region: string;
  readonly endpoints: AwsEndpoints;
  /** Credentials the task's SDK clients sign with (the stand-in records the access key id). */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** The ACME directory URLs of the deployment config, each replaced by Pebble's. */
  readonly acmeDirectories: readonly string[];
  readonly pebbleDirectoryUrl: string;
  /** Pebble's TLS root on the host, mounted read-only where the CA is substituted. */
  readonly pebbleTrustFile: string;
  readonly images: LocalImages;
  /**
   * Where the local origin lives (the pod gateway, a private address). In production a tenant's
   * origin is an S3 website endpoint or another public address; here the edge must be allowed to
   * reach this one network.
   */
  readonly originNetwork: string;
  /** Asset image tag (hash) → Dockerfile, from the stack's asset manifest. */
  readonly assetDockerfiles: ReadonlyMap<string, string>;
}

/** The container as the rehearsal runs it. */
export interface SubstitutedContainer {
  readonly image: string;
  readonly environment: Readonly<Record<string, string>>;
  readonly extraMounts: readonly { hostPath: string; containerPath: string }[];
}

/** One line of the printed list. */
export interface Substitution {
  readonly what: string;
  readonly by: string;
}

/** Public images that cannot be pulled here, by repository, and the local image standing in. */
const PUBLIC_IMAGES: readonly { repository: RegExp; local: (i: LocalImages) => string }[] = [
  {
    repository: /^(public\.ecr\.aws\/docker\/library\/|docker\.io\/(library\/)?)?redis:/,
    local: (i) => i.redis,
  },
];

/** Dockerfiles of the CDK's image assets → the locally built image. */
const ASSET_IMAGES: Readonly<Record<string, (i: LocalImages) => string>> = {
  'edge-image/Dockerfile.edge': (i) => i.edge,
  'edge-image/Dockerfile.sidecars': (i) => i.sidecars,
};

const PEBBLE_TRUST_PATH = '/etc/rehearsal/pebble-root.pem';

/** The edge's config (JSON in the render container's environment): its origin allow list. */
const EDGE_CONFIG_VARIABLE = 'EDGE_CONFIG';

function allowOriginNetwork(json: string, cidr: string): string {
  const config = JSON.parse(json) as { origins?: { allowNetworks?: string[] } };
  const origins = config.origins ?? {};
  config.origins = { ...origins, allowNetworks: [...(origins.allowNetworks ?? []), cidr] };
  return JSON.stringify(config);
}

export class SubstitutionError extends Error {
  override name = 'SubstitutionError';
}

function localImage(image: string, s: SubstitutionInputs): string {
  const ecrAsset = /^\d{12}\.dkr\.ecr\.[^/]+\/cdk-[^:]+:([0-9a-f]{64})$/.exec(image);
  if (ecrAsset) {
    const dockerfile = s.assetDockerfiles.get(ecrAsset[1] as string);
    const local = dockerfile ? ASSET_IMAGES[dockerfile] : undefined;
    if (!local) {
      throw new SubstitutionError(
        `image asset ${image} (Dockerfile ${dockerfile ?? 'unknown'}) has no locally built image`,
      );
    }
    return local(s.images);
  }
  const pub = PUBLIC_IMAGES.find((p) => p.repository.test(image));
  if (pub) return pub.local(s.images);
  throw new SubstitutionError(`image ${image} cannot be pulled here and has no local stand-in`);
}

/** The environment ECS gives every container of a Fargate task, as far as it matters here. */
function ecsEnvironment(s: SubstitutionInputs): Record<string, string> {
  return { AWS_REGION: s.region, AWS_DEFAULT_REGION: s.region, AWS_EXECUTION_ENV: 'AWS_ECS_FARGATE' };
}

/** The SDK's per-service endpoint variables (AWS_ENDPOINT_URL_<SERVICE ID>) and dummy credentials. */
function awsEnvironment(s: SubstitutionInputs): Record<string, string> {
  const e = s.endpoints;
  return {
    AWS_ENDPOINT_URL_DYNAMODB: e.dynamodb,
    AWS_ENDPOINT_URL_SNS: e.sns,
    AWS_ENDPOINT_URL_SQS: e.sqs,
    AWS_ENDPOINT_URL_KMS: e.kms,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: e.secretsManager,
    AWS_ENDPOINT_URL_ROUTE_53: e.route53,
    AWS_ACCESS_KEY_ID: s.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s.credentials.secretAccessKey,
  };
}

export function substituteContainer(c: ContainerDefinition, s: SubstitutionInputs): SubstitutedContainer {
  const environment: Record<string, string> = { ...c.environment };
  let caSubstituted = false;
  for (const [name, value] of Object.entries(environment)) {
    let v = value;
    for (const dir of s.acmeDirectories) v = v.split(dir).join(s.pebbleDirectoryUrl);
    if (v !== value) {
      environment[name] = v;
      caSubstituted = true;
    }
  }
  const edgeConfig = environment[EDGE_CONFIG_VARIABLE];
  if (edgeConfig !== undefined)
    environment[EDGE_CONFIG_VARIABLE] = allowOriginNetwork(edgeConfig, s.originNetwork);
  Object.assign(environment, ecsEnvironment(s), awsEnvironment(s));
  const extraMounts: { hostPath: string; containerPath: string }[] = [];
  if (caSubstituted) {
    environment.NODE_EXTRA_CA_CERTS = PEBBLE_TRUST_PATH;
    extraMounts.push({ hostPath: s.pebbleTrustFile, containerPath: PEBBLE_TRUST_PATH });
  }
  return { image: localImage(c.image, s), environment, extraMounts };
}

/** The list printed at start: every change from the synthesized task, and why. */
export function describeSubstitutions(
  containers: readonly ContainerDefinition[],
  s: SubstitutionInputs,
): Substitution[] {
  const out: Substitution[] = [];
  const images = new Map<string, string>();
  for (const c of containers) images.set(c.image, localImage(c.image, s));
  for (const [from, to] of images) out.push({ what: `image ${from}`, by: to });
  const e = s.endpoints;
  out.push(
    { what: 'DynamoDB endpoint', by: `${e.dynamodb} (dynalite behind the recording proxy)` },
    { what: 'SNS endpoint', by: e.sns },
    { what: 'SQS endpoint', by: e.sqs },
    { what: 'KMS endpoint', by: e.kms },
    { what: 'Secrets Manager endpoint', by: e.secretsManager },
    { what: 'Route53 endpoint', by: e.route53 },
    { what: 'task role credentials', by: `static dummy keys (${s.credentials.accessKeyId})` },
    { what: 'AWS_REGION, AWS_DEFAULT_REGION', by: `${s.region}, as ECS sets them` },
    { what: 'ECS secrets (Secrets Manager)', by: 'values from local files generated at start' },
  );
  for (const c of containers) {
    if (c.environment[EDGE_CONFIG_VARIABLE] !== undefined) {
      out.push({
        what: `tenant origin (S3 website endpoint) reachable from ${c.name}`,
        by: `local static origin on ${s.originNetwork}, added to ${EDGE_CONFIG_VARIABLE}.origins.allowNetworks`,
      });
    }
    for (const [name, value] of Object.entries(c.environment)) {
      if (s.acmeDirectories.some((d) => value.includes(d))) {
        out.push({ what: `ACME CA in ${c.name}.${name}`, by: `Pebble ${s.pebbleDirectoryUrl}` });
        out.push({
          what: `${c.name}: trust for the CA`,
          by: `NODE_EXTRA_CA_CERTS=${PEBBLE_TRUST_PATH} (Pebble's root, mounted read-only)`,
        });
      }
    }
  }
  return out;
}
