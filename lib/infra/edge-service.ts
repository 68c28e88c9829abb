import { Duration } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';
import { EDGE_PORTS, type EdgeLoadBalancer } from './edge-load-balancer.ts';

export interface EdgeServiceProps {
  readonly cluster: ecs.ICluster;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly loadBalancer: EdgeLoadBalancer;
  readonly vpcSubnets: ec2.SubnetSelection;
  readonly assignPublicIp: boolean;
  readonly minTasks: number;
  readonly maxTasks: number;
  /** Target average CPU utilisation, percent. */
  readonly cpuTargetPercent: number;
  /** Active connections per task above which the service adds tasks. */
  readonly connectionsPerTask: number;
}

/**
 * The Fargate service behind the NLB: rolling deployments guarded by a circuit breaker that
 * rolls back, and scaling on CPU (TLS handshakes are CPU-bound) and on connections per task
 * (idle keep-alive connections cost memory but no CPU).
 */
export class EdgeService extends Construct {
  readonly service: ecs.FargateService;
  readonly securityGroup: ec2.SecurityGroup;
  /** Active NLB flows per running task, the connection-scaling signal. */
  readonly connectionsPerTaskMetric: cloudwatch.MathExpression;

  constructor(scope: Construct, id: string, props: EdgeServiceProps) {
    super(scope, id);
    if (props.maxTasks < props.minTasks) {
      throw new Error(`maxTasks (${props.maxTasks}) must be at least minTasks (${props.minTasks})`);
    }
    const lb = props.loadBalancer;
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.cluster.vpc,
      description: 'Edge tasks: traffic from the NLB only',
      allowAllOutbound: true,
    });
    for (const port of Object.values(EDGE_PORTS)) {
      this.securityGroup.addIngressRule(lb.securityGroup, ec2.Port.tcp(port), `NLB to edge ${port}`);
      lb.securityGroup.addEgressRule(this.securityGroup, ec2.Port.tcp(port), `NLB to edge ${port}`);
    }

    this.service = new ecs.FargateService(this, 'Service', {
      cluster: props.cluster,
      taskDefinition: props.taskDefinition,
      desiredCount: props.minTasks,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      vpcSubnets: props.vpcSubnets,
      assignPublicIp: props.assignPublicIp,
      securityGroups: [this.securityGroup],
      // The sqs-listener bootstraps Redis before the edge starts; give it time before NLB checks count.
      healthCheckGracePeriod: Duration.seconds(180),
      propagateTags: ecs.PropagatedTagSource.SERVICE,
      platformVersion: ecs.FargatePlatformVersion.LATEST,
    });
    const attach = (tg: elbv2.NetworkTargetGroup, containerPort: number) =>
      tg.addTarget(this.service.loadBalancerTarget({ containerName: 'edge', containerPort }));
    attach(lb.targetGroups.http, EDGE_PORTS.http);
    attach(lb.targetGroups.https, EDGE_PORTS.https);

    const scaling = this.service.autoScaleTaskCount({
      minCapacity: props.minTasks,
      maxCapacity: props.maxTasks,
    });
    scaling.scaleOnCpuUtilization('Cpu', {
      targetUtilizationPercent: props.cpuTargetPercent,
      scaleOutCooldown: Duration.seconds(60),
      scaleInCooldown: Duration.minutes(5),
    });

    const flows = new cloudwatch.Metric({
      namespace: 'AWS/NetworkELB',
      metricName: 'ActiveFlowCount',
      dimensionsMap: {
        LoadBalancer: lb.loadBalancer.loadBalancerFullName,
        TargetGroup: lb.targetGroups.https.targetGroupFullName,
      },
      statistic: 'Average',
      period: Duration.minutes(1),
    });
    const tasks = new cloudwatch.Metric({
      namespace: 'ECS/ContainerInsights',
      metricName: 'RunningTaskCount',
      dimensionsMap: { ClusterName: props.cluster.clusterName, ServiceName: this.service.serviceName },
      statistic: 'Average',
      period: Duration.minutes(1),
    });
    this.connectionsPerTaskMetric = new cloudwatch.MathExpression({
      expression: 'flows / IF(tasks > 0, tasks, 1)',
      usingMetrics: { flows, tasks },
      label: 'Active connections per task',
      period: Duration.minutes(1),
    });
    const target = props.connectionsPerTask;
    scaling.scaleOnMetric('Connections', {
      metric: this.connectionsPerTaskMetric,
      adjustmentType: appscaling.AdjustmentType.PERCENT_CHANGE_IN_CAPACITY,
      minAdjustmentMagnitude: 1,
      scalingSteps: [
        { upper: Math.floor(target * 0.4), change: -10 },
        { lower: target, change: +25 },
        { lower: Math.floor(target * 1.5), change: +50 },
      ],
      cooldown: Duration.minutes(2),
      evaluationPeriods: 3,
    });
  }
}
