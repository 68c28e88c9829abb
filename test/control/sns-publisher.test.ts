import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { SnsPublisher } from '../../lib/control/sns-publisher.ts';
import { decodeEvent, makeEvent } from '../../lib/core/events/index.ts';

describe('SnsPublisher', () => {
  it('publishes the encoded event with the type attribute the subscriptions filter on', async () => {
    const sns = mockClient(SNSClient);
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    const topicArn = 'arn:aws:sns:eu-west-1:123456789012:edge-events';
    const event = makeEvent('domain.removed', 7, { domain: 'www.acme-shop.com' });
    await new SnsPublisher(new SNSClient({ region: 'eu-west-1' }), topicArn).publish(event);
    const calls = sns.commandCalls(PublishCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0]?.args[0].input;
    expect(input?.TopicArn).toBe(topicArn);
    expect(input?.MessageAttributes).toEqual({ type: { DataType: 'String', StringValue: 'domain.removed' } });
    expect(decodeEvent(input?.Message ?? '')).toEqual(event);
    sns.restore();
  });
});
