import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { EventPublisher } from '../core/bus/port.ts';
import { encodeEvent } from '../core/events/codec.ts';
import type { EdgeEvent } from '../core/events/schema.ts';

/**
 * Publishing to the SNS topic without a subscription of its own: the control plane only sends.
 * The `type` attribute is what the tasks' subscription filter policies match on (as SqsBus sets it).
 */
export class SnsPublisher implements EventPublisher {
  constructor(
    private readonly sns: SNSClient,
    private readonly topicArn: string,
  ) {}

  async publish(event: EdgeEvent): Promise<void> {
    await this.sns.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Message: encodeEvent(event),
        MessageAttributes: { type: { DataType: 'String', StringValue: event.type } },
      }),
    );
  }
}
