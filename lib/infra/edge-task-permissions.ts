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
  readonly topicArn: string;
  /** The topic's KMS key, matched by alias so no key id has to cross regions. */
  readonly keyAlias: string;
  readonly keyRegion: string;
  readonly tableName: string;
  /** Every region that holds a replica of the table (the home region included). */
  readonly tableRegions: readonly string[];
  readonly hostedZoneId: string;
  /** DNS-01 writes only `_acme-challenge.<platformDomain>` TXT records. */
  readonly platformDomain: string;
  readonly acmeAccountKey: secretsmanager.ISecret;
}

/** The task role's permissions, each one scoped to the single resource (or name prefix) it needs. */
export class EdgeTaskPermissions extends Construct {
  readonly policy: iam.Policy;

  constructor(scope: Construct, id: string, props: EdgeTaskPermissionsProps) {
    super(scope, id);
    const { account, region, partition } = Stack.of(this);
    const queueArn = `arn:${partition}:sqs:${region}:${account}:${props.queueNamePrefix}*`;
    const keyArn = `arn:${partition}:kms:${props.keyRegion}:${account}:key/*`;
    const tableArns = props.tableRegions.map(
      (r) => `arn:${partition}:dynamodb:${r}:${account}:table/${props.tableName}`,
    );
    const zoneArn = `arn:${partition}:route53:::hostedzone/${props.hostedZoneId}`;

    this.policy = new iam.Policy(this, 'Policy', {
      statements: [
        new iam.PolicyStatement({
          sid: 'OwnTaskQueues',
          actions: [
            'sqs:CreateQueue',
            'sqs:DeleteQueue',
            'sqs:GetQueueAttributes',
            'sqs:SetQueueAttributes',
            'sqs:GetQueueUrl',
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
          actions: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
          resources: [props.deadLetterQueueArn],
        }),
        new iam.PolicyStatement({
          sid: 'EventTopic',
          actions: ['sns:Publish', 'sns:Subscribe', 'sns:Unsubscribe', 'sns:ListSubscriptionsByTopic'],
          resources: [props.topicArn],
        }),
        new iam.PolicyStatement({
          sid: 'EventAndPrivateKeyEncryption',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [keyArn],
          conditions: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': props.keyAlias } },
        }),
        new iam.PolicyStatement({
          sid: 'StateTable',
          actions: [
            'dynamodb:GetItem',
            'dynamodb:BatchGetItem',
            'dynamodb:Query',
            'dynamodb:Scan',
            'dynamodb:PutItem',
            'dynamodb:UpdateItem',
            'dynamodb:DeleteItem',
            'dynamodb:BatchWriteItem',
            'dynamodb:ConditionCheckItem',
            'dynamodb:DescribeTable',
          ],
          resources: tableArns,
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
          'The key id is generated in the home region; the grant matches the one key by its alias (kms:ResourceAliases condition) so no id has to cross regions.',
        findings: [`Resource::arn:<AWS::Partition>:kms:${props.keyRegion}:${account}:key/*`],
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
