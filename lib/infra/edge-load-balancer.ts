import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';
import { acknowledge } from './nag.ts';

/** The two ports the NLB passes through; the edge listens on the same ports inside the task. */
export const EDGE_PORTS = { http: 80, https: 443 } as const;

export interface EdgeLoadBalancerProps {
  readonly vpc: ec2.IVpc;
  /** Dual-stack NLB (the VPC must be dual-stack). Default: false. */
  readonly dualStack?: boolean;
  /**
   * Fixed public addresses, one per public subnet: `create` allocates them here (retained on
   * delete), a list imports existing `eipalloc-` ids. Default: AWS-assigned addresses.
   */
  readonly elasticIps?: 'create' | readonly string[];
  /** How long a deregistering task keeps its connections. Default: 90 seconds. */
  readonly deregistrationDelay?: Duration;
}

/**
 * A Network Load Balancer passing TCP 80 and 443 straight through. TLS has to end inside the task
 * (certificates are issued there on demand), so an ALB or TLS listener is not an option; proxy
 * protocol v2 carries the client address to nginx instead.
 */
export class EdgeLoadBalancer extends Construct {
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly securityGroup: ec2.SecurityGroup;
  readonly targetGroups: Readonly<Record<keyof typeof EDGE_PORTS, elbv2.NetworkTargetGroup>>;

  constructor(scope: Construct, id: string, props: EdgeLoadBalancerProps) {
    super(scope, id);
    const publicSubnets = props.vpc.selectSubnets({ subnetType: ec2.SubnetType.PUBLIC }).subnets;

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Edge NLB: HTTP and HTTPS from anywhere',
      allowAllOutbound: false,
      allowAllIpv6Outbound: false,
    });
    for (const port of Object.values(EDGE_PORTS)) {
      this.securityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(port), `public TCP ${port}`);
      if (props.dualStack) {
        this.securityGroup.addIngressRule(
          ec2.Peer.anyIpv6(),
          ec2.Port.tcp(port),
          `public TCP ${port} (IPv6)`,
        );
      }
    }
    acknowledge(this.securityGroup, [
      {
        id: 'AwsSolutions-EC23',
        reason: 'A public CDN edge: ports 80 (ACME HTTP-01, redirects) and 443 must be open to every client.',
      },
    ]);

    let subnetMappings: elbv2.SubnetMapping[] | undefined;
    if (props.elasticIps !== undefined) {
      const ids =
        props.elasticIps === 'create'
          ? publicSubnets.map((_, i) => {
              const eip = new ec2.CfnEIP(this, `Eip${i}`, { domain: 'vpc' });
              // Customers' apex A records point at these; losing them with the stack would break sites.
              eip.applyRemovalPolicy(RemovalPolicy.RETAIN);
              return eip.attrAllocationId;
            })
          : props.elasticIps;
      if (ids.length !== publicSubnets.length) {
        throw new Error(
          `elasticIps needs one allocation per public subnet (${publicSubnets.length}), got ${ids.length}`,
        );
      }
      subnetMappings = publicSubnets.map((subnet, i) => ({ subnet, allocationId: ids[i] }));
    }

    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, 'Nlb', {
      vpc: props.vpc,
      internetFacing: true,
      crossZoneEnabled: true,
      securityGroups: [this.securityGroup],
      ipAddressType: props.dualStack ? elbv2.IpAddressType.DUAL_STACK : elbv2.IpAddressType.IPV4,
      ...(subnetMappings ? { subnetMappings } : { vpcSubnets: { subnets: publicSubnets } }),
    });
    acknowledge(this.loadBalancer, [
      {
        id: 'AwsSolutions-ELB2',
        reason:
          'NLB access logs are written only for TLS listeners; these are TCP pass-through, and nginx logs every request itself.',
      },
    ]);

    const targetGroup = (name: keyof typeof EDGE_PORTS) => {
      const port = EDGE_PORTS[name];
      const tg = new elbv2.NetworkTargetGroup(this, `${name === 'http' ? 'Http' : 'Https'}Targets`, {
        vpc: props.vpc,
        port,
        protocol: elbv2.Protocol.TCP,
        targetType: elbv2.TargetType.IP,
        proxyProtocolV2: true,
        // The client address travels in the proxy protocol header, so the tasks see the NLB as the
        // source and their security group can admit the NLB alone.
        preserveClientIp: false,
        connectionTermination: true,
        deregistrationDelay: props.deregistrationDelay ?? Duration.seconds(90),
        healthCheck: {
          protocol: elbv2.Protocol.TCP,
          port: String(port),
          interval: Duration.seconds(10),
          healthyThresholdCount: 2,
          unhealthyThresholdCount: 2,
        },
      });
      this.loadBalancer.addListener(`${name === 'http' ? 'Http' : 'Https'}Listener`, {
        port,
        protocol: elbv2.Protocol.TCP,
        defaultTargetGroups: [tg],
      });
      return tg;
    };
    this.targetGroups = { http: targetGroup('http'), https: targetGroup('https') };
  }
}
