import type { StackScope } from './intrinsics.ts';

export interface NlbTargets {
  readonly http: number;
  readonly https: number;
  /** The target groups send PROXY protocol v2 (the client address reaches nginx). */
  readonly proxyProtocol: boolean;
}

/** The ports the stack's NLB target groups forward to, and whether they add PROXY protocol v2. */
export function nlbTargets(scope: StackScope): NlbTargets {
  const groups = Object.values(scope.resources).filter(
    (r) => r.Type === 'AWS::ElasticLoadBalancingV2::TargetGroup',
  );
  const port = (p: number) => {
    const g = groups.find((x) => Number(x.Properties?.Port) === p);
    if (!g) throw new Error(`${scope.stackName} has no target group on port ${p}`);
    const attrs = (g.Properties?.TargetGroupAttributes ?? []) as { Key: string; Value: string }[];
    return { port: p, proxy: attrs.some((a) => a.Key === 'proxy_protocol_v2.enabled' && a.Value === 'true') };
  };
  const http = port(80);
  const https = port(443);
  if (http.proxy !== https.proxy)
    throw new Error('the HTTP and HTTPS target groups disagree on proxy protocol v2');
  return { http: http.port, https: https.port, proxyProtocol: https.proxy };
}
