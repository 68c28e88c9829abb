import { BusError } from '../errors.ts';

/** SQS queue names: letters, digits, - and _, at most 80. */
export function queueName(prefix: string, taskId: string): string {
  const name = `${prefix}${taskId.replace(/[^A-Za-z0-9_-]/g, '-')}`;
  if (!/^[A-Za-z0-9_-]{1,80}$/.test(name)) throw new BusError(`queue name "${name}" is not a valid SQS name`);
  return name;
}

/** The queue's ARN: same partition and account as the topic, in the task's region. */
export function queueArn(topicArn: string, region: string, name: string): string {
  const parts = topicArn.split(':');
  if (parts.length < 6 || parts[0] !== 'arn' || parts[2] !== 'sns') {
    throw new BusError(`not an SNS topic ARN: "${topicArn}"`);
  }
  return `arn:${parts[1]}:sqs:${region}:${parts[4]}:${name}`;
}

/** Lets the topic, and only the topic, send to the queue. */
export function queuePolicy(queue: string, topicArn: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'TopicSends',
        Effect: 'Allow',
        Principal: { Service: 'sns.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Resource: queue,
        Condition: { ArnEquals: { 'aws:SourceArn': topicArn } },
      },
    ],
  });
}
