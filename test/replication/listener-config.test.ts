import { describe, expect, it } from 'vitest';
import { ListenerConfigError } from '../../lib/sidecars/listener-runtime/config.ts';
import { loadRedisListenerConfig } from '../../lib/sidecars/redis-listener/config.ts';
import { loadSqsListenerConfig } from '../../lib/sidecars/sqs-listener/config.ts';

const base = {
  REGION: 'eu-west-1',
  TASK_ID: 'task-1',
  TABLE_NAME: 'edge',
  LOCAL_KEY_FILE: '/run/edge/master.key',
  EDGE_CONTROL_URL: 'http://127.0.0.1:9145',
  EDGE_CONTROL_TOKEN: 'x'.repeat(32),
  SQS_LISTENER_HEALTH_PORT: '9201',
  REDIS_LISTENER_HEALTH_PORT: '9202',
};

describe('listener config', () => {
  it('reads each sidecar its own prefixed settings and the shared ones, frozen', () => {
    const sqs = loadSqsListenerConfig(base);
    const redis = loadRedisListenerConfig(base);
    expect(sqs).toMatchObject({ region: 'eu-west-1', healthPort: 9201, bus: 'redis', bootstrapSegments: 8 });
    expect(redis.healthPort).toBe(9202);
    expect(Object.isFrozen(sqs)).toBe(true);
  });

  it('takes the control URL under the name the task definition uses', () => {
    const { EDGE_CONTROL_URL: _, ...rest } = base;
    expect(loadSqsListenerConfig({ ...rest, CONTROL_URL: 'http://127.0.0.1:9000' }).edgeControlUrl).toBe(
      'http://127.0.0.1:9000',
    );
  });

  it('says precisely what is wrong', () => {
    expect(() => loadSqsListenerConfig({ ...base, EDGE_CONTROL_TOKEN: 'short' })).toThrow(
      /edgeControlToken: Too small/,
    );
    expect(() => loadSqsListenerConfig({ ...base, BUS: 'aws' })).toThrow(
      new ListenerConfigError('SNS_TOPIC_ARN, DLQ_URL and DLQ_ARN are required with BUS=aws'),
    );
    expect(() => loadSqsListenerConfig({ ...base, KEY_SOURCE: 'kms' })).toThrow(
      'KMS_KEY_ID is required with KEY_SOURCE=kms',
    );
  });
});
