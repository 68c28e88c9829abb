import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge } from './nag.ts';

export interface EdgeNetworkProps {
  readonly cidr: string;
  /** At least two, named explicitly: with an explicit account CDK would otherwise look them up. */
  readonly availabilityZones: readonly string[];
  /**
   * NAT gateways. 0 (the default) puts the tasks in public subnets with public IPs: no NAT cost,
   * and the security group still admits traffic only from the load balancer.
   */
  readonly natGateways?: number;
  /** Dual-stack subnets (IPv6 for the NLB). Default: false, IPv4 only. */
  readonly dualStack?: boolean;
  readonly flowLogRetention: logs.RetentionDays;
}

/** The VPC of one edge region: public subnets for the NLB, gateway endpoints, flow logs. */
export class EdgeNetwork extends Construct {
  readonly vpc: ec2.Vpc;
  /** Where the Fargate tasks run. */
  readonly taskSubnets: ec2.SubnetSelection;
  /** Tasks need a public IP when there is no NAT to reach ECR, ACME CAs, SNS and SQS. */
  readonly assignPublicIp: boolean;

  constructor(scope: Construct, id: string, props: EdgeNetworkProps) {
    super(scope, id);
    if (props.availabilityZones.length < 2) {
      throw new Error(
        `an edge VPC needs at least 2 availability zones, got ${props.availabilityZones.length}`,
      );
    }
    const natGateways = props.natGateways ?? 0;
    const withNat = natGateways > 0;
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.cidr),
      ipProtocol: props.dualStack ? ec2.IpProtocol.DUAL_STACK : ec2.IpProtocol.IPV4_ONLY,
      availabilityZones: [...props.availabilityZones],
      natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 22, mapPublicIpOnLaunch: false },
        ...(withNat ? [{ name: 'tasks', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 }] : []),
      ],
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
      // Nothing uses the default security group; restricting it needs a custom-resource Lambda.
      restrictDefaultSecurityGroup: false,
    });
    acknowledge(this.vpc, [
      {
        id: 'CloudFormation-Validate::W3010',
        reason: 'The AZ names come from the deployment config so that synth needs no context lookup.',
      },
    ]);
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
      retention: props.flowLogRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: ec2.FlowLogTrafficType.REJECT,
    });
    this.assignPublicIp = !withNat;
    this.taskSubnets = { subnetType: withNat ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PUBLIC };
  }
}
