import { Duration } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge } from './nag.ts';

export interface DeadLetterQueueProps {
  /** Fixed so the sqs-listeners can point their queues' redrive policy at it. */
  readonly queueName: string;
}

/** The regional dead-letter queue for the per-task event queues and for malformed events. */
export class DeadLetterQueue extends Construct {
  readonly queue: sqs.Queue;

  constructor(scope: Construct, id: string, props: DeadLetterQueueProps) {
    super(scope, id);
    this.queue = new sqs.Queue(this, 'Queue', {
      queueName: props.queueName,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(this.queue, [
      {
        id: 'AwsSolutions-SQS3',
        reason:
          'This is the dead-letter queue: the per-task queues created at run time redrive into it; a DLQ of its own would only move the problem.',
      },
    ]);
  }
}
