import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledge } from './nag.ts';

export interface EdgeTaskPermissionsProps {
  /** The task role shared by the task's containers. */
  readonly role: iam.IRole;
  /** Each sqs-listener creates `<queueNamePrefix><task id>` in this region. */
  readonly queueNamePrefix: string;
  readonly deadLetterQueueArn: string;
  /** The event topic (home region): the redis-listener publishes, each sqs-listener subscribes. */
  readonly topicArn: string;
  /** The topic's single-region KMS key in the home region, matched by alias: publishing encrypts with it. */
  readonly topicKeyAlias: string;
  /** This region's copy of the multi-region key that wraps the private keys' data keys. */
  readonly privateKeyArn: string;
  readonly tableName: string;
  /**
   * The state table is read and written in this region (listeners); the issuer's lease, issuance
   * and budget items are written in the home region only (one writer region for conditional writes).
   */
  readonly homeRegion: string;
  readonly hostedZoneId: string;
  /** DNS-01 writes only `_acme-challenge.<platformDomain>` TXT records. */
  readonly platformDomain: string;
  /**
   * Delegated DNS-01 also writes TXT records one label under this zone (`<id>.<zone>`, what
   * tenants CNAME `_acme-challenge.<domain>` to). Default: none.
   */
  readonly challengeZone?: string;
  readonly acmeAccountKey: secretsmanager.ISecret;
}

/** The task role's permissions, each one scoped to the single resource (or name prefix) it needs. */
export class EdgeTaskPermissions extends Construct {
  readonly policy: iam.Policy;

  constructor(scope: Construct, id: string, props: EdgeTaskPermissionsProps) {
    super(scope, id);
    const { account, region, partition } = Stack.of(this);
    const queueArn = `arn:${partition}:sqs:${region}:${account}:${props.queueNamePrefix}*`;
    const topicKeyArn = `arn:${partition}:kms:${props.homeRegion}:${account}:key/*`;
    const tableArn = (r: string) => `arn:${partition}:dynamodb:${r}:${account}:table/${props.tableName}`;
    const zoneArn = `arn:${partition}:route53:::hostedzone/${props.hostedZoneId}`;

    this.policy = new iam.Policy(this, 'Policy', {
      statements: [
        new iam.PolicyStatement({
          sid: 'OwnTaskQueues',
          actions: [
            'sqs:CreateQueue',
            'sqs:DeleteQueue',
            'sqs:ListQueueTags',
            'sqs:TagQueue',
            'sqs:ReceiveMessage',
            'sqs:DeleteMessage',
            'sqs:ChangeMessageVisibility',
          ],
          resources: [queueArn],
        }),
        new iam.PolicyStatement({
          // ListQueues has no resource-level permission; it only returns queue URLs.
          sid: 'FindOrphanedTaskQueues',
          actions: ['sqs:ListQueues'],
          resources: ['*'],
        }),
        new iam.PolicyStatement({
          sid: 'DeadLetterMalformedEvents',
          // The queue URL comes from the task's environment: no GetQueueUrl/GetQueueAttributes.
          actions: ['sqs:SendMessage'],
          resources: [props.deadLetterQueueArn],
        }),
        new iam.PolicyStatement({
          sid: 'EventTopic',
          actions: ['sns:Publish', 'sns:Subscribe', 'sns:Unsubscribe'],
          resources: [props.topicArn],
        }),
        new iam.PolicyStatement({
          // Publishing to the KMS-encrypted topic: only through SNS in the home region.
          sid: 'EventTopicEncryption',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [topicKeyArn],
          conditions: {
            'ForAnyValue:StringEquals': { 'kms:ResourceAliases': props.topicKeyAlias },
            StringEquals: { 'kms:ViaService': `sns.${props.homeRegion}.amazonaws.com` },
          },
        }),
        new iam.PolicyStatement({
          // Data keys of the private keys, always bound to the domain (lib/core/store/envelope.ts).
          sid: 'PrivateKeyEncryption',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [props.privateKeyArn],
          conditions: {
            'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['domain'] },
            Null: { 'kms:EncryptionContextKeys': 'false' },
          },
        }),
        new iam.PolicyStatement({
          // The listeners on this region's replica: bootstrap (Scan), records and certificates
          // (GetItem), a certificate issued here (PutItem, conditional on its version), its domain
          // marked active (UpdateItem: Store.setDomainStatus and the event version counter).
          sid: 'StateTable',
          actions: ['dynamodb:GetItem', 'dynamodb:Scan', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
          resources: [tableArn(region)],
        }),
        new iam.PolicyStatement({
          // The issuer's lease, issuance and budget items, written in the home region only.
          sid: 'StateTableIssuance',
          actions: [
            'dynamodb:GetItem',
            'dynamodb:BatchGetItem',
            'dynamodb:PutItem',
            'dynamodb:UpdateItem',
            'dynamodb:DeleteItem',
          ],
          resources: [tableArn(props.homeRegion)],
        }),
        new iam.PolicyStatement({
          sid: 'Dns01ChallengeRecords',
          actions: ['route53:ChangeResourceRecordSets'],
          resources: [zoneArn],
          conditions: {
            'ForAllValues:StringEquals': {
              'route53:ChangeResourceRecordSetsNormalizedRecordNames': [
                `_acme-challenge.${props.platformDomain}`,
              ],
              'route53:ChangeResourceRecordSetsRecordTypes': ['TXT'],
            },
          },
        }),
        ...(props.challengeZone
          ? [
              new iam.PolicyStatement({
                sid: 'Dns01DelegatedRecords',
                actions: ['route53:ChangeResourceRecordSets'],
                resources: [zoneArn],
                conditions: {
                  'ForAllValues:StringLike': {
                    'route53:ChangeResourceRecordSetsNormalizedRecordNames': [`*.${props.challengeZone}`],
                  },
                  'ForAllValues:StringEquals': {
                    'route53:ChangeResourceRecordSetsRecordTypes': ['TXT'],
                  },
                },
              }),
            ]
          : []),
        new iam.PolicyStatement({
          sid: 'Dns01ChangeStatus',
          actions: ['route53:GetChange'],
          resources: [`arn:${partition}:route53:::change/*`],
        }),
        new iam.PolicyStatement({
          sid: 'AcmeAccountKey',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [props.acmeAccountKey.secretFullArn ?? `${props.acmeAccountKey.secretArn}-??????`],
        }),
      ],
    });
    this.policy.attachToRole(props.role);

    acknowledge(this.policy, [
      {
        id: 'AwsSolutions-IAM5',
        reason:
          'Each sqs-listener creates and deletes its own queue at start and stop; the names are only known at run time, so the grant is scoped to the deployment prefix in this region.',
        findings: [`Resource::arn:<AWS::Partition>:sqs:${region}:${account}:${props.queueNamePrefix}*`],
      },
      {
        id: 'AwsSolutions-IAM5',
        reason:
          'The topic key id is generated in the home region; the grant matches the one key by its alias (kms:ResourceAliases) and only through SNS there (kms:ViaService), so no id has to cross regions.',
        findings: [`Resource::arn:<AWS::Partition>:kms:${props.homeRegion}:${account}:key/*`],
      },
      {
        id: 'AwsSolutions-IAM5',
        reason:
          'sqs:ListQueues supports no resource-level permission; the sqs-listener lists its prefix to remove queues of tasks that died without cleaning up.',
        findings: ['Resource::*'],
      },
      {
        id: 'AwsSolutions-IAM5',
        reason:
          'Route53 change ids are generated per ChangeResourceRecordSets call; GetChange only reads their status.',
        findings: ['Resource::arn:<AWS::Partition>:route53:::change/*'],
      },
    ]);
  }
}
