import { Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import {
  type DeploymentConfig,
  deploymentNames,
  type RegionConfig,
  taskBounds,
} from '../config/deployment-config.ts';
import { DeadLetterQueue } from './dead-letter-queue.ts';
import { EdgeAlarms } from './edge-alarms.ts';
import { type EdgeImages, edgeImages } from './edge-images.ts';
import { EdgeLoadBalancer } from './edge-load-balancer.ts';
import { EdgeNetwork } from './edge-network.ts';
import { EdgeService } from './edge-service.ts';
import { EdgeTask } from './edge-task.ts';
import { EdgeTaskPermissions } from './edge-task-permissions.ts';
import { GeoDnsRecords } from './geo-dns-records.ts';
import { logRetention } from './log-retention.ts';
import { acknowledge } from './nag.ts';
import { PrivateKeyReplica } from './private-key-encryption.ts';
import { taskEdgeConfig } from './task-edge-config.ts';

export interface RegionalStackProps extends StackProps {
  readonly config: DeploymentConfig;
  readonly regionConfig: RegionConfig;
  /** Container images; default: built from `edge-image/` (or the URIs in `config.images`). */
  readonly images?: EdgeImages;
}

/**
 * One edge region: VPC, NLB, ECS cluster and the edge service, the regional DLQ, alarms, and this
 * region's geolocation records. Everything global is referenced by its fixed name, so the stack
 * has no cross-region references and deploys in any order after the global stack.
 */
export class RegionalStack extends Stack {
  readonly network: EdgeNetwork;
  readonly loadBalancer: EdgeLoadBalancer;
  readonly task: EdgeTask;
  readonly service: EdgeService;
  readonly alarms: EdgeAlarms;
  private readonly configuredAzs: string[];

  constructor(scope: Construct, id: string, props: RegionalStackProps) {
    super(scope, id, props);
    const { config: c, regionConfig: r } = props;
    if (props.env?.region !== r.region) {
      throw new Error(`the stack for ${r.region} must be pinned to it, got env.region ${props.env?.region}`);
    }
    this.configuredAzs = [...r.availabilityZones];
    const names = deploymentNames(c);
    const { account, partition } = this;
    const retention = logRetention(c.logRetentionDays);
    const dualStack = c.network.dualStack;

    this.network = new EdgeNetwork(this, 'Network', {
      cidr: c.network.vpcCidr,
      availabilityZones: r.availabilityZones,
      natGateways: r.natGateways ?? c.network.natGateways,
      dualStack,
      flowLogRetention: retention,
    });
    const cacheGiB = c.task.ephemeralStorageGiB - c.task.cacheHeadroomGiB;
    const edgeConfig = taskEdgeConfig({
      region: r.region,
      platformDomain: c.platformDomain,
      engine: c.tlsEngine,
      redisPrefix: c.redisPrefix,
      vpcCidr: c.network.vpcCidr,
      cacheMaxSizeGiB: cacheGiB,
      cpuUnits: c.task.cpu,
      connectionsPerTask: c.task.connectionsPerTask,
    });
    this.loadBalancer = new EdgeLoadBalancer(this, 'LoadBalancer', {
      vpc: this.network.vpc,
      dualStack,
      ...(r.elasticIps ? { elasticIps: r.elasticIps } : {}),
      // Longer than nginx keeps an idle connection: a stopping task's clients finish and leave
      // before the NLB cuts what is left and ECS sends the stop signal.
      deregistrationDelay: Duration.seconds(edgeConfig.timeouts.keepaliveSeconds + 25),
    });

    const dlq = new DeadLetterQueue(this, 'DeadLetters', { queueName: names.deadLetterQueue });
    const acmeAccountKey = secretsmanager.Secret.fromSecretNameV2(
      this,
      'AcmeAccountKey',
      names.acmeAccountSecret,
    );
    const controlToken = new secretsmanager.Secret(this, 'ControlToken', {
      description: 'Bearer token of the edge control listener (purge) in this region',
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
    });
    acknowledge(controlToken, [
      {
        id: 'AwsSolutions-SMG4',
        reason:
          'The token never leaves the task (loopback control listener); rotating it means a rolling restart, done by redeploying with a new secret version.',
      },
    ]);

    const topicArn = `arn:${partition}:sns:${c.homeRegion}:${account}:${names.topic}`;
    // This region's copy of the multi-region private-key key (the primary in the home region).
    const privateKeys = new PrivateKeyReplica(this, 'PrivateKeys', {
      homeRegion: c.homeRegion,
      alias: names.privateKeyAlias,
      primaryArnParameterName: names.privateKeyPrimaryParameter,
    });
    const images = props.images ?? edgeImages(c);
    this.task = new EdgeTask(this, 'Task', {
      edgeImage: images.edge,
      sidecarImage: images.sidecars,
      cpu: c.task.cpu,
      memoryMiB: c.task.memoryMiB,
      ephemeralStorageGiB: c.task.ephemeralStorageGiB,
      edgeConfig,
      listenerSettings: {
        region: r.region,
        logLevel: 'info',
        redisPrefix: c.redisPrefix,
        tableName: names.table,
        keySource: 'kms',
        kmsKeyId: privateKeys.keyArn,
        bus: 'aws',
        snsTopicArn: topicArn,
        queueNamePrefix: names.queuePrefix,
        dlqUrl: dlq.queue.queueUrl,
        dlqArn: dlq.queue.queueArn,
      },
      issuerSettings: {
        region: r.region,
        homeRegion: c.homeRegion,
        logLevel: 'info',
        platformDomain: c.platformDomain,
        redisPrefix: c.redisPrefix,
        tableName: names.table,
        acmeCas: JSON.stringify(c.acme.directories),
        ...(c.acme.email ? { acmeEmail: c.acme.email } : {}),
        acmeAccountSecretId: acmeAccountKey.secretName,
        dnsProvider: 'route53',
        route53HostedZoneId: c.hostedZone.id,
        challengeZone: delegationZone(c.platformDomain),
        wildcard: true,
      },
      acmeAccountKey,
      controlToken,
      logRetention: retention,
    });
    new EdgeTaskPermissions(this, 'TaskPermissions', {
      role: this.task.taskDefinition.taskRole,
      queueNamePrefix: names.queuePrefix,
      deadLetterQueueArn: dlq.queue.queueArn,
      topicArn,
      topicKeyAlias: names.topicKeyAlias,
      privateKeyArn: privateKeys.keyArn,
      tableName: names.table,
      homeRegion: c.homeRegion,
      hostedZoneId: c.hostedZone.id,
      platformDomain: c.platformDomain,
      challengeZone: delegationZone(c.platformDomain),
      acmeAccountKey,
    });

    const cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.network.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    const bounds = taskBounds(c, r);
    this.service = new EdgeService(this, 'Edge', {
      cluster,
      taskDefinition: this.task.taskDefinition,
      loadBalancer: this.loadBalancer,
      vpcSubnets: this.network.taskSubnets,
      assignPublicIp: this.network.assignPublicIp,
      minTasks: bounds.min,
      maxTasks: bounds.max,
      cpuTargetPercent: c.task.cpuTargetPercent,
      connectionsPerTask: c.task.connectionsPerTask,
    });

    const edgeLogs = this.task.logGroups.edge;
    if (!edgeLogs) throw new Error('the edge container has no log group');
    // Alarm notifications: the topic named in the config (same name in every region), else one here.
    const alarmTopic = c.alarms.topicName
      ? sns.Topic.fromTopicArn(
          this,
          'AlarmTopic',
          `arn:${partition}:sns:${r.region}:${account}:${c.alarms.topicName}`,
        )
      : new sns.Topic(this, 'AlarmTopic', {
          topicName: names.alarmTopic,
          displayName: `Edge ${c.name} alarms (${r.region})`,
          enforceSSL: true,
        });
    if (alarmTopic instanceof sns.Topic) {
      acknowledge(alarmTopic, [
        {
          id: 'AwsSolutions-SNS2',
          reason:
            'Alarm notifications carry alarm names and states only; CloudWatch cannot publish to a topic under the AWS-managed SNS key, and a customer key per region for this is not worth its cost.',
        },
      ]);
    }
    if (c.alarms.email) alarmTopic.addSubscription(new subscriptions.EmailSubscription(c.alarms.email));
    this.alarms = new EdgeAlarms(this, 'Alarms', {
      actionTopic: alarmTopic,
      region: r.region,
      loadBalancer: this.loadBalancer.loadBalancer,
      httpsTargetGroup: this.loadBalancer.targetGroups.https,
      service: this.service.service,
      deadLetterQueue: dlq.queue,
      edgeLogGroup: edgeLogs,
      issuerLogGroup: this.task.logGroups.issuer,
      sqsListenerLogGroup: this.task.logGroups['sqs-listener'],
      connectionsPerTask: this.service.connectionsPerTaskMetric,
      metricNamespace: `Edge/${c.name}`,
    });

    const geo = c.geolocation;
    new GeoDnsRecords(this, 'GeoDns', {
      zone: route53.HostedZone.fromHostedZoneAttributes(this, 'Zone', {
        hostedZoneId: c.hostedZone.id,
        zoneName: c.hostedZone.name,
      }),
      recordNames: [names.edgeHostname, c.platformDomain],
      loadBalancer: this.loadBalancer.loadBalancer,
      region: r.region,
      continents: Object.entries(geo.continents)
        .filter(([, region]) => region === r.region)
        .map(([code]) => code as route53.Continent),
      countries: Object.entries(geo.countries)
        .filter(([, region]) => region === r.region)
        .map(([code]) => code),
      isDefault: geo.default === r.region,
      ipv6: dualStack,
      anyRegionName: names.anyRegionHostname,
      regionName: names.regionHostname(r.region),
      healthCheckName: names.healthCheckHostname(r.region),
      healthCheckSearchString: `edge-health ok ${r.region}`,
    });

    acknowledge(this.task.taskDefinition, [
      {
        id: 'AwsSolutions-ECS2',
        reason:
          'Only non-secret settings (names, ARNs, ports) are environment variables; the control token and the ACME account key come from Secrets Manager through `secrets`.',
      },
      {
        id: 'AwsSolutions-IAM5',
        reason:
          'The execution role gets ecr:GetAuthorizationToken, which supports no resource-level permission (CDK default grant for image pulls).',
        findings: ['Resource::*'],
      },
    ]);
  }

  /** The configured AZ names: with an explicit account CDK would otherwise look them up at synth. */
  override get availabilityZones(): string[] {
    return this.configuredAzs;
  }
}

/** The zone tenants delegate `_acme-challenge.<domain>` into: inside the platform's hosted zone. */
export function delegationZone(platformDomain: string): string {
  return `acme-delegation.${platformDomain}`;
}
