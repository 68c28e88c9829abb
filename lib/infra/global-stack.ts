import { Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { type DeploymentConfig, deploymentNames } from '../config/deployment-config.ts';
import { AcmeAccountKeyInit } from './acme-account-key-init.ts';
import { ControlApi } from './control-api.ts';
import { EventBus } from './event-bus.ts';
import { logRetention } from './log-retention.ts';
import { acknowledge } from './nag.ts';
import { OriginBucket } from './origin-bucket.ts';
import { PrivateKeyPrimary } from './private-key-encryption.ts';
import { delegationZone } from './regional-stack.ts';
import { StateTable } from './state-table.ts';

export interface GlobalStackProps extends StackProps {
  readonly config: DeploymentConfig;
}

/**
 * What the whole deployment shares, in the home region: the event topic and its key, the state
 * table (replicated to every edge region), the multi-region primary key of the private keys (its
 * ARN in an SSM parameter), the ACME account key (created at deploy time, replicated so each task
 * reads it in its own region), the platform wildcard record and, optionally, the origin bucket.
 * The regional stacks find these by their fixed names; nothing is exported across regions.
 */
export class GlobalStack extends Stack {
  readonly bus: EventBus;
  readonly table: StateTable;
  readonly acmeAccountKey: secretsmanager.Secret;
  readonly privateKeys: PrivateKeyPrimary;
  readonly originBucket?: OriginBucket;
  readonly controlApi: ControlApi;

  constructor(scope: Construct, id: string, props: GlobalStackProps) {
    super(scope, id, props);
    const c = props.config;
    if (props.env?.region !== c.homeRegion) {
      throw new Error(
        `the global stack must be pinned to the home region ${c.homeRegion}, got ${props.env?.region}`,
      );
    }
    const names = deploymentNames(c);
    const replicaRegions = c.regions.map((r) => r.region).filter((r) => r !== c.homeRegion);

    this.bus = new EventBus(this, 'Bus', { topicName: names.topic, keyAlias: names.topicKeyAlias });
    this.table = new StateTable(this, 'State', { tableName: names.table, replicaRegions });
    // The topic keeps its own single-region key (SNS and SQS use it in the home region only); the
    // private keys get a multi-region key so every region decrypts with its own replica.
    this.privateKeys = new PrivateKeyPrimary(this, 'PrivateKeys', {
      alias: names.privateKeyAlias,
      primaryArnParameterName: names.privateKeyPrimaryParameter,
    });

    this.acmeAccountKey = new secretsmanager.Secret(this, 'AcmeAccountKey', {
      secretName: names.acmeAccountSecret,
      description:
        'ACME account private key (PEM) shared by every task; created at deploy time by Custom::AcmeAccountKey',
      replicaRegions: replicaRegions.map((region) => ({ region })),
    });
    // The secret starts as a random placeholder (CloudFormation needs a value); this replaces it
    // with a real key once, and leaves a valid key alone on every later deploy.
    new AcmeAccountKeyInit(this, 'AcmeAccountKeyInit', {
      secret: this.acmeAccountKey,
      logRetention: logRetention(c.logRetentionDays),
    });
    // The control API (IAM/SigV4) and the deployment's one ownership re-check, in the home region.
    this.controlApi = new ControlApi(this, 'ControlApi', {
      table: this.table.table,
      topic: this.bus.topic,
      topicKey: this.bus.key,
      edgeHostname: names.edgeHostname,
      challengeZone: delegationZone(c.platformDomain),
      logRetention: logRetention(c.logRetentionDays),
      // The home region's alarm topic, by name: the home regional stack creates it (or the config
      // names an existing one), and an alarm action may name a topic that does not exist yet.
      alarmTopic: sns.Topic.fromTopicArn(
        this,
        'AlarmTopic',
        `arn:${this.partition}:sns:${c.homeRegion}:${this.account}:${names.alarmTopic}`,
      ),
    });

    acknowledge(this.acmeAccountKey, [
      {
        id: 'AwsSolutions-SMG4',
        reason:
          'An ACME account key is rotated by an ACME key-change request, not by replacing the secret; automatic rotation would orphan the account and its authorizations.',
      },
    ]);

    if (c.originBucket.enabled) {
      this.originBucket = new OriginBucket(this, 'Origin', { websiteHosting: c.originBucket.websiteHosting });
    }

    // Every tenant subdomain follows the geolocation answer of the edge hostname.
    const zone = route53.HostedZone.fromHostedZoneAttributes(this, 'Zone', {
      hostedZoneId: c.hostedZone.id,
      zoneName: c.hostedZone.name,
    });
    new route53.CnameRecord(this, 'PlatformWildcard', {
      zone,
      recordName: `*.${c.platformDomain}`,
      domainName: names.edgeHostname,
      ttl: Duration.minutes(5),
    });
  }
}
