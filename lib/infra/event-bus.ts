import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';

export interface EventBusProps {
  /** Topic name; the regional stacks derive the ARN from it, so it is fixed rather than generated. */
  readonly topicName: string;
  /** Alias of the customer-managed key; the tasks' IAM policy matches the key by this alias. */
  readonly keyAlias: string;
}

/**
 * The control-event topic (SNS) and its customer-managed KMS key. SNS encrypts with the key on
 * publish and decrypts it when delivering to the per-task SQS queues, so the key policy lets both
 * services use it, limited to this account.
 */
export class EventBus extends Construct {
  readonly topic: sns.Topic;
  readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: EventBusProps) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      alias: props.keyAlias,
      description: 'Encrypts the edge control-event topic (SNS and its deliveries)',
      enableKeyRotation: true,
      pendingWindow: Duration.days(30),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowSnsAndSqsToUseTheKey',
        principals: [
          new iam.ServicePrincipal('sns.amazonaws.com'),
          new iam.ServicePrincipal('sqs.amazonaws.com'),
        ],
        actions: ['kms:GenerateDataKey*', 'kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    this.topic = new sns.Topic(this, 'Topic', {
      topicName: props.topicName,
      displayName: 'Edge control events',
      masterKey: this.key,
      enforceSSL: true,
    });
  }
}
